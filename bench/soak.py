"""Reliability soak: the CI fault and crash suites (tests/reliability), longer, with several seeds, and a table.

    python bench/soak.py                                  # 3 fault seeds, 60 kill points: about 10 minutes
    python bench/soak.py --fault-seeds 1 --kills 20       # a quick look
    python bench/soak.py --out bench/results/soak.md      # also write the table

Every run is the real CLI in a subprocess against the scripted loopback teacher (llmaug.testing). Per fault seed:
a transport-fault run that must equal the fault-free run file for file, and a full-mix run (transport + content
faults) that must lose and duplicate nothing. Then kill -9 chains (llmaug.testing.crash) at seeded points over
generation, filtering, training, file writes and the report; every chain must finish equal to the uninterrupted
run without asking the teacher again for any answer it had cached. The script exits 1 if anything was lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from llmaug.testing.crash import (
    KillSwitch, kill_plan, partial_files, repeated_calls, run_until_killed, temporary_files,
)
from llmaug.testing.fake_openai import FakeOpenAIServer, FaultPlan
from llmaug.testing.scripted import (
    completed_content_faults, question_responder, read_jsonl, request_rates_around_rate_limits, run_cli,
    run_fingerprint, run_settings, write_settings,
)

RETRY_AFTER = 0.3
TRANSPORT = dict(
    server_error=0.10, rate_limit_retry_after=0.03, rate_limit=0.02, connection_reset=0.05, slow=0.05,
    truncated_json=0.03, empty_choices=0.02, retry_after=RETRY_AFTER, slow_seconds=3.0,
)
CONTENT = dict(garbage=0.04, off_label=0.02, empty_content=0.02, prompt_injection=0.02)
SETTINGS = dict(rounds=3, per_error=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault-seeds", type=int, default=3)
    parser.add_argument("--kills", type=int, default=60, help="kill -9 points, in chains of 4")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the Markdown table here too")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows: list[tuple[str, int, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="llmaug-soak-") as tmp:
        folder = Path(tmp)
        ok = soak_faults(folder, args.fault_seeds, rows) & soak_crashes(folder, args.kills, args.seed, rows)
    table = render(rows, time.monotonic() - started)
    print(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")
    return 0 if ok else 1


# ------------------------------------------------------------------------------------------------ faults


def soak_faults(folder: Path, seeds: int, rows: list) -> bool:
    switch = KillSwitch(question_responder)
    ok = True
    with FakeOpenAIServer(switch, latency=(0.0, 0.02)) as server:
        clean = one_run(folder / "clean", server, FaultPlan())
        assert clean.returncode == 0, clean.stderr
        outcomes, retries, reasons, spoiled, rejected_spoiled, lost, differing = Counter(), 0, Counter(), 0, 0, 0, 0
        rates = []
        for seed in range(seeds):
            server.seed = seed
            transport = one_run(folder / f"transport-{seed}", server, FaultPlan(**TRANSPORT))
            outcomes.update(server.outcomes)
            differing += transport.returncode != 0 or run_fingerprint(folder / f"transport-{seed}") != run_fingerprint(folder / "clean")
            usage = json.loads((folder / f"transport-{seed}" / "usage.json").read_text())
            retries += usage["retries"]
            reasons.update(usage["retry_reasons"])
            rates.append(request_rates_around_rate_limits(server.log, RETRY_AFTER))

            mixed = one_run(folder / f"mixed-{seed}", server, FaultPlan(**TRANSPORT, **CONTENT))
            outcomes.update(server.outcomes)
            found = check_mixed_run(folder / f"mixed-{seed}", server)
            spoiled += found["spoiled"]
            rejected_spoiled += found["rejected_spoiled"]
            lost += found["lost"] + (mixed.returncode != 0)
        ok &= differing == 0 and lost == 0 and spoiled == rejected_spoiled
    runs = 2 * seeds
    for outcome, what in (("rate_limited", "429 (with and without Retry-After)"), ("server_error", "500 / 502 / 503"),
                          ("reset", "connection reset mid-response"), ("client_gone", "answer slower than the client timeout"),
                          ("truncated_json", "truncated JSON body"), ("empty_choices", "empty `choices`")):
        rows.append((what, outcomes[outcome], f"retried; {runs} runs finished", "nothing"))
    rows.append(("content: garbage, off-set label, empty, prompt injection", spoiled,
                 f"{rejected_spoiled} rejected, each with its reason", f"{spoiled - rejected_spoiled} kept (goal 0)"))
    during = sum(r[0] for r in rates) / len(rates)
    outside = sum(r[1] for r in rates) / len(rates)
    rows.append(("request rate in the 0.3 s after a 429", len(rates),
                 f"{during:.1f} req/s vs {outside:.1f} req/s otherwise", "-"))
    rows.append((f"transport faults: data vs fault-free run ({retries} retries: "
                 f"{', '.join(f'{k} {v}' for k, v in reasons.most_common())})", seeds,
                 f"{seeds - differing} of {seeds} identical file for file", f"{differing} runs differ (goal 0)"))
    return ok


def one_run(out: Path, server: FakeOpenAIServer, faults: FaultPlan):
    server.faults = faults
    server.reset_log()
    config = write_settings(out.with_suffix(".yaml"), run_settings(server, **SETTINGS))
    return run_cli("run", "--config", str(config), "--out", str(out))


def check_mixed_run(out: Path, server: FakeOpenAIServer) -> dict[str, int]:
    rounds = sorted((out / "rounds").iterdir())
    data = read_jsonl(out / "data.jsonl")
    added = [row for folder in rounds for row in read_jsonl(folder / "added.jsonl")]
    rejected = [row for folder in rounds for row in read_jsonl(folder / "rejected.jsonl")]
    answered = {question_responder(r.body) for r in server.log if r.outcome == "completed" and r.fault == "ok"}
    synthetic = [row for row in data if row["provenance"]["origin"] == "synthetic"]
    requests = sum(json.loads((folder / "metrics.json").read_text())["teacher_requests"] for folder in rounds)
    lost = (requests != len(added) + len(rejected)) + (synthetic != added) + (len({r["id"] for r in data}) != len(data))
    lost += sum(row["provenance"]["raw_output"] not in answered for row in added)
    return {"spoiled": len(completed_content_faults(server.log)), "lost": lost,
            "rejected_spoiled": sum(row["raw_output"] not in answered and bool(row["reason"]) for row in rejected)}


# ----------------------------------------------------------------------------------------------- crashes


def soak_crashes(folder: Path, kills: int, seed: int, rows: list) -> bool:
    switch = KillSwitch(question_responder)
    with FakeOpenAIServer(switch, latency=(0.0, 0.01)) as server:
        config = write_settings(folder / "crash.yaml", run_settings(server, **SETTINGS))
        reference = folder / "crash-reference"
        assert run_cli("run", "--config", str(config), "--out", str(reference)).returncode == 0
        total = server.requests
        report = ((reference / "summary.json").stat().st_mtime_ns - (reference / "usage.json").stat().st_mtime_ns) / 1e9
        expected = run_fingerprint(reference)
        chains = kill_plan(seed, max(1, kills // 4), 4, total, SETTINGS["rounds"], report)
        reached, torn, differing, repeats = Counter(), 0, 0, 0
        for c, chain in enumerate(chains):
            out = folder / f"chain-{c}"
            server.reset_log()
            switch.reset()
            outcomes = []
            for i, point in enumerate(chain):
                args = ["run", "--config", str(config), "--out", str(out)] if i == 0 else ["run", "--resume", str(out)]
                outcome = run_until_killed(args, point, out, server, switch)
                reached[point.stage] += outcome.reached
                torn += len(outcome.partial_files)
                outcomes.append(outcome)
                if not outcome.reached:
                    break
            final = run_cli("run", "--resume", str(out))
            differing += final.returncode != 0 or run_fingerprint(out) != expected or bool(temporary_files(out))
            torn += len(partial_files(out))
            repeats += len(repeated_calls(outcomes, server))
    for stage, how in (("generation", "server kills the client as it answers request n"),
                       ("filtering", "LLMAUG_CRASH_AT=filter:n"), ("training", "LLMAUG_CRASH_AT=train:n"),
                       ("writing", "LLMAUG_CRASH_AT=write/FILE:n, between fsync and rename"),
                       ("report", "usage.json written + delay, or write/report.md etc.")):
        rows.append((f"kill -9 in {stage} ({how})", reached[stage], "resumed with --resume", "-"))
    rows.append((f"kill -9 chains, {sum(reached.values())} kills", len(chains),
                 f"{len(chains) - differing} of {len(chains)} finished identical to the uninterrupted run",
                 f"{differing} differ, {torn} torn files, {repeats} repeated teacher calls (goal 0)"))
    return differing == 0 and torn == 0 and repeats == 0


def render(rows: list, seconds: float) -> str:
    lines = ["| fault | tried | what happened | lost |", "|---|---|---|---|"]
    lines += [f"| {what} | {tried} | {happened} | {lost} |" for what, tried, happened, lost in rows]
    return "\n".join(lines) + f"\n\n({seconds / 60:.1f} minutes)\n"


if __name__ == "__main__":
    sys.exit(main())
