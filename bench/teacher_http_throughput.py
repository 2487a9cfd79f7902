"""Teacher throughput over HTTP: llmaug's Teacher against a bare asyncio client and a peer tool, same server, same run.

    .venv/bin/python bench/teacher_http_throughput.py --n 2000 --repeats 3 --concurrency 1 8 64 256 \
        --peer-python /tmp/peer-venv/bin/python

The loopback OpenAI-compatible server (`python -m llmaug.testing.fake_openai`) runs in its own process, so it never
shares a GIL with the client; every client run is a fresh process too, timed from its start to its exit. At each
concurrency C every client does the same job: min(N, per_slot·C) distinct chat requests, K completion tokens each.

Clients: `bare-aiohttp` (C asyncio workers on one aiohttp session: the practical limit), `bare-openai` (the same with
AsyncOpenAI), `llmaug` (Teacher over OpenAICompatibleBackend with concurrency C, response cache on but cold, retries
on), `llmaug-cached` (the same job again on the now-warm cache: no request reaches the server), and `curator`
(bespokelabs-curator's online OpenAI processor) run by the peer venv's Python. The peer venv is kept out of the
project's dependencies; make it with

    python3 -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install bespokelabs-curator

Results: bench/results/throughput_http.csv (one row per run), .json (setup and machine) and .md (rebuilt by
`python -m llmaug.bench.report`). This file imports only the standard library at the top: the peer worker runs it
under the peer venv's Python, where llmaug is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = "fake-model"
CLIENTS = ("bare-aiohttp", "bare-openai", "llmaug", "curator")


# ------------------------------------------------------------------------------------------------ workers


def prompts(n: int, words: int) -> list[str]:
    filler = " ".join(f"w{i}" for i in range(max(0, words - 6)))
    return [f"Write a new question like number {i}: {filler}" for i in range(n)]


def body(prompt: str, tokens: int) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": tokens, "temperature": 0.8}


async def _workers(n: int, concurrency: int, send) -> int:
    """`concurrency` workers take request indexes in turn until `n` are done; returns how many succeeded."""
    next_index, ok = 0, 0

    async def worker() -> None:
        nonlocal next_index, ok
        while next_index < n:
            index = next_index
            next_index += 1
            succeeded = await send(index)  # (`ok += await ...` would read `ok` before the await and lose counts)
            ok += succeeded

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


def run_bare_aiohttp(args) -> dict:
    import aiohttp

    texts = prompts(args.n, args.prompt_words)

    async def main() -> int:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def send(i: int) -> int:
                async with session.post(f"{args.url}/chat/completions", json=body(texts[i], args.completion_tokens)) as response:
                    data = await response.json()
                    return int(response.status == 200 and bool(data["choices"][0]["message"]["content"]))

            return await _workers(args.n, args.concurrency, send)

    return {"ok": asyncio.run(main())}


def run_bare_openai(args) -> dict:
    import httpx
    from openai import AsyncOpenAI

    texts = prompts(args.n, args.prompt_words)

    async def main() -> int:
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        client = AsyncOpenAI(base_url=args.url, api_key="unused", max_retries=0,
                             http_client=httpx.AsyncClient(limits=limits, timeout=60))

        async def send(i: int) -> int:
            request = body(texts[i], args.completion_tokens)
            completion = await client.chat.completions.create(**request)
            return int(bool(completion.choices[0].message.content))

        try:
            return await _workers(args.n, args.concurrency, send)
        finally:
            await client.close()

    return {"ok": asyncio.run(main())}


def run_llmaug(args) -> dict:
    from llmaug.teachers import GenerationParams, Teacher, TeacherRequest
    from llmaug.teachers.openai_compat import OpenAICompatibleBackend

    params = GenerationParams(max_tokens=args.completion_tokens, temperature=0.8)
    requests = [TeacherRequest.chat([{"role": "user", "content": text}], params=params)
                for text in prompts(args.n, args.prompt_words)]
    backend = OpenAICompatibleBackend(args.url, MODEL, concurrency=args.concurrency, api_key_env="LLMAUG_BENCH_NO_KEY")
    started = time.perf_counter()
    with Teacher(backend, cache=args.cache) as teacher:
        responses = teacher.generate(requests)
        seconds = time.perf_counter() - started
        usage = teacher.usage
    ok = sum(r.finish_reason != "error" and bool(r.text) for r in responses)
    return {"ok": ok, "generate_seconds": seconds, "calls": usage.calls, "cached": usage.cached, "retries": usage.retries}


def run_curator(args) -> dict:
    """bespokelabs-curator's online OpenAI processor, offline: telemetry and its cache off, rate limits lifted,
    tiktoken's cl100k file from the copy litellm ships (curator loads it even when no token limit is set)."""
    import importlib.util

    litellm = importlib.util.find_spec("litellm")
    if litellm is not None and litellm.submodule_search_locations:
        tokenizers = Path(next(iter(litellm.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tokenizers))
    os.environ.update(TELEMETRY_ENABLED="false", CURATOR_DISABLE_CACHE="true", CURATOR_DISABLE_RICH_DISPLAY="1",
                      CURATOR_CACHE_DIR=tempfile.mkdtemp(prefix="curator-"))
    from bespokelabs import curator

    llm = curator.LLM(
        model_name=MODEL, backend="openai",
        generation_params={"max_tokens": args.completion_tokens, "temperature": 0.8},
        backend_params={"model": MODEL, "base_url": args.url, "api_key": "unused", "max_requests_per_minute": 10_000_000,
                        "max_tokens_per_minute": 10_000_000_000, "max_concurrent_requests": args.concurrency,
                        "max_retries": 3, "require_all_responses": False},
    )
    result = llm(prompts(args.n, args.prompt_words))
    dataset = getattr(result, "dataset", result)
    return {"ok": sum(1 for row in dataset if row.get("response"))}


WORKERS = {"bare-aiohttp": run_bare_aiohttp, "bare-openai": run_bare_openai, "llmaug": run_llmaug,
           "llmaug-cached": run_llmaug, "curator": run_curator}


def worker_main(args) -> None:
    import logging

    logging.disable(logging.WARNING)
    args.concurrency = args.concurrency[0]
    result = WORKERS[args.worker](args)
    Path(args.report).write_text(json.dumps(result))


# --------------------------------------------------------------------------------------------- orchestration


class Server:
    """The fake server in its own process; `timing()` reads its log, `reset()` clears it."""

    def __init__(self, python: str, latency: float, latency_max: float | None, completion_tokens: int):
        self.port = _free_port()
        command = [python, "-m", "llmaug.testing.fake_openai", "--port", str(self.port), "--latency", str(latency),
                   "--completion-tokens", str(completion_tokens)]
        if latency_max is not None:
            command += ["--latency-max", str(latency_max)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_loopback_env())
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.timing()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the fake server exited: {self.process.stderr.read().decode()[-500:]}")
                time.sleep(0.1)
        raise RuntimeError("the fake server did not start within 60 s")

    def timing(self) -> dict:
        with _opener.open(f"http://127.0.0.1:{self.port}/_bench/stats", timeout=10) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/_bench/reset", data=b"", method="POST")
        _opener.open(request, timeout=10).read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _loopback_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(NO_PROXY="127.0.0.1,localhost", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def one_run(args, server: Server, client: str, concurrency: int, n: int, cache: Path | None) -> dict:
    """Run one client process against the server; the row of measurements."""
    python = args.peer_python if client == "curator" else sys.executable
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [python, str(Path(__file__).resolve()), "--worker", client, "--url", server.url, "--n", str(n),
                   "--concurrency", str(concurrency), "--completion-tokens", str(args.completion_tokens),
                   "--prompt-words", str(args.prompt_words), "--report", str(report)]
        if cache is not None:
            command += ["--cache", str(cache)]
        server.reset()
        load = os.getloadavg()[0]
        started = time.monotonic()
        done = subprocess.run(command, env=_loopback_env(), capture_output=True, text=True, cwd=scratch, timeout=1800,
                              check=False)
        ended = time.monotonic()
        timing = server.timing()
        result = json.loads(report.read_text()) if report.is_file() else {}
    if done.returncode != 0 or not result:
        raise RuntimeError(f"{client} at C={concurrency} failed (exit {done.returncode}): {done.stderr[-800:]}")
    return _row(client, concurrency, n, started, ended, timing, result, load, args)


def _row(client, concurrency, n, started, ended, timing, result, load, args) -> dict:
    first, last = timing["first_arrival"], timing["last_finished"]
    span = (last - first) if first is not None and last is not None else None
    steady = timing["completed"] / span if span else None
    return {
        "client": client, "concurrency": concurrency, "requests": n, "ok": result.get("ok", ""),
        "server_requests": timing["requests"], "max_in_flight": timing["max_in_flight"],
        "steady_seconds": _fmt(span), "steady_rps": _fmt(steady),
        "steady_tokens_per_s": _fmt(steady * args.completion_tokens if steady else None),
        "e2e_seconds": _fmt(ended - started), "e2e_rps": _fmt(n / (ended - started)),
        "startup_seconds": _fmt(first - started if first is not None else None),
        "generate_seconds": _fmt(result.get("generate_seconds")), "load_1m": f"{load:.2f}",
    }


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4f}"


FIELDS = ["repeat", "client", "concurrency", "requests", "ok", "server_requests", "max_in_flight", "steady_seconds",
          "steady_rps", "steady_tokens_per_s", "e2e_seconds", "e2e_rps", "startup_seconds", "generate_seconds", "load_1m"]


def orchestrate(args) -> None:
    from llmaug.bench.machine import machine_facts
    from llmaug.bench.results import write_rows
    from llmaug.bench.throughput import render_throughput

    clients = [c for c in args.clients if c != "curator" or _peer_ready(args)]
    notes = list(args.note)
    if "curator" in args.clients and "curator" not in clients:
        notes.append(f"curator was not run: {args.peer_python} cannot import bespokelabs.curator")
    csv_path = args.results / f"{args.name}.csv"
    meta = _meta(args, machine_facts(), notes)
    server = Server(sys.executable, args.latency, args.latency_max, args.completion_tokens)
    rows: list[dict] = []
    try:
        for repeat in range(args.repeats):
            for concurrency in args.concurrency:
                n = min(args.n, args.per_slot * concurrency)
                order = clients[repeat % len(clients):] + clients[:repeat % len(clients)]
                for client in order:
                    rows += _client_runs(args, server, client, concurrency, n, repeat, notes)
                    write_rows(csv_path, rows, FIELDS)
    finally:
        server.stop()
    meta.update(finished=_now(), notes=notes)
    csv_path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    print(render_throughput(csv_path).read_text())


def _client_runs(args, server: Server, client: str, concurrency: int, n: int, repeat: int, notes: list[str]) -> list[dict]:
    try:
        if client != "llmaug":
            row = one_run(args, server, client, concurrency, n, None)
            print(_progress_line(repeat, row), flush=True)
            return [{"repeat": repeat, **row}]
        with tempfile.TemporaryDirectory() as scratch:
            cache = Path(scratch) / "cache.sqlite"
            cold = {"repeat": repeat, **one_run(args, server, "llmaug", concurrency, n, cache)}
            warm = {"repeat": repeat, **one_run(args, server, "llmaug-cached", concurrency, n, cache)}
        print(_progress_line(repeat, cold), _progress_line(repeat, warm), sep="\n", flush=True)
        return [cold, warm]
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        notes.append(f"repeat {repeat}: {err}".replace("\n", " ")[:400])
        print(f"FAILED {client} C={concurrency}: {err}", file=sys.stderr, flush=True)
        return []


def _progress_line(repeat: int, row: dict) -> str:
    return (f"repeat {repeat} C={row['concurrency']:>3} {row['client']:<14} steady {row['steady_rps'] or '-':>10} req/s  "
            f"e2e {row['e2e_seconds']:>8} s  start-up {row['startup_seconds'] or '-':>7} s  load {row['load_1m']}")


def _peer_ready(args) -> bool:
    if not args.peer_python or not Path(args.peer_python).exists():
        return False
    check = subprocess.run([args.peer_python, "-c", "import bespokelabs.curator"], capture_output=True,
                           env={**_loopback_env(), "TELEMETRY_ENABLED": "false"}, timeout=300, check=False)
    return check.returncode == 0


def _meta(args, machine: dict, notes: list[str]) -> dict:
    mean_latency = args.latency if args.latency_max is None else (args.latency + args.latency_max) / 2
    latency_text = f"{args.latency * 1000:g} ms" if args.latency_max is None else \
        f"uniform {args.latency * 1000:g}–{args.latency_max * 1000:g} ms"
    peer = _peer_version(args) if "curator" in args.clients else None
    if peer:
        machine = {**machine, "bespokelabs-curator": peer}
    return {
        "title": "Teacher throughput over HTTP: llmaug vs a bare client vs curator",
        "command": " ".join(["python bench/teacher_http_throughput.py", *_without_notes(sys.argv[1:])]),
        "machine": machine, "mean_latency": mean_latency, "latency_text": latency_text,
        "completion_tokens": args.completion_tokens, "prompt_words": args.prompt_words, "n": args.n,
        "per_slot": args.per_slot, "repeats": args.repeats, "started": _now(), "notes": notes,
    }


def _without_notes(argv: list[str]) -> list[str]:
    """The command line less its --note texts, which the page shows as notes."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--note":
            skip = True
        elif not arg.startswith("--note="):
            kept.append(arg)
    return kept


def _peer_version(args) -> str | None:
    try:
        done = subprocess.run([args.peer_python, "-c", "from importlib.metadata import version; print(version('bespokelabs-curator'))"],
                              capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="requests per run at most")
    parser.add_argument("--per-slot", type=int, default=25, help="requests per slot: a run sends min(N, per_slot·C)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--latency", type=float, default=0.1, help="server latency in seconds (minimum with --latency-max)")
    parser.add_argument("--latency-max", type=float, default=None, help="draw latency uniformly up to this")
    parser.add_argument("--completion-tokens", type=int, default=32)
    parser.add_argument("--prompt-words", type=int, default=40)
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS), choices=CLIENTS)
    parser.add_argument("--peer-python", default="/tmp/peer-venv/bin/python")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="throughput_http")
    parser.add_argument("--note", action="append", default=[], help="a note for the page (repeatable)")
    # worker mode (internal)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.worker:
        worker_main(arguments)
    else:
        orchestrate(arguments)
