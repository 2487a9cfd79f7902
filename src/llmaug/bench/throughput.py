"""The HTTP teacher-throughput page, rebuilt from its CSV (`bench/teacher_http_throughput.py` measures).

Each CSV row is one client run against the loopback server: `steady_rps` is requests over the span from the
server's first arrival to its last reply; `e2e_seconds` is the whole client process, start to exit; `startup_seconds`
is process start to the server's first arrival. The page reports medians over the repeats, next to the anchors
measured on this kind of machine, and checks the goals.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from llmaug.bench.results import read_rows
from llmaug.bench.table import machine_line

# Measured on this kind of machine (2 cores, server on the same machine, 100 ms latency, N = 2000, median of 3).
ANCHORS = {
    "limit C/latency": {8: 80, 64: 640, 256: 2560},
    "bare-aiohttp": {8: 79, 64: 606, 256: 2230},
    "bare-openai": {8: 77, 64: 564, 256: 510},
    "curator": {8: 78, 64: 576, 256: 816},
    "distilabel": {8: 47, 64: 216, 256: 365},
}
ANCHOR_STARTUP = {"curator": 2.4, "distilabel": 3.7}
CLIENT_NAMES = {
    "bare-aiohttp": "bare asyncio + aiohttp (the practical limit)",
    "bare-openai": "bare asyncio + AsyncOpenAI",
    "llmaug": "llmaug Teacher (cache on, cold; retries on)",
    "llmaug-cached": "llmaug Teacher, cached rerun (0 calls)",
    "curator": "bespokelabs-curator",
    "distilabel": "distilabel",
}


def render_throughput(csv_path: Path) -> Path:
    """Write `<name>.md` beside `<name>.csv` from it and `<name>.json`; returns the page's path."""
    meta = json.loads(csv_path.with_suffix(".json").read_text(encoding="utf-8"))
    rows = read_rows(csv_path)
    page = csv_path.with_suffix(".md")
    page.write_text(throughput_markdown(rows, meta), encoding="utf-8")
    return page


def throughput_markdown(rows: list[dict], meta: dict) -> str:
    latency = float(meta["mean_latency"])
    levels = sorted({int(r["concurrency"]) for r in rows})
    clients = [c for c in CLIENT_NAMES if any(r["client"] == c for r in rows)]
    tokens = int(meta["completion_tokens"])
    lines = [f"## {meta.get('title', 'Teacher throughput over HTTP')}", ""]
    lines += [f"Command: `{meta['command']}`", ""]
    machine = machine_line(meta.get("machine", {}))
    lines += [f"Machine: {machine}.", ""] if machine else []
    lines += [_setup(meta), ""]
    lines += _steady_table(rows, levels, clients, latency, tokens) + [""]
    lines += _process_table(rows, levels, clients) + [""]
    lines += _goals(rows, levels, latency) + [""]
    if meta.get("notes"):
        lines += ["Notes:", ""] + [f"- {note}" for note in meta["notes"]] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _setup(meta: dict) -> str:
    return (
        f"Setup: `python -m llmaug.testing.fake_openai` in its own process on 127.0.0.1, latency {meta['latency_text']}, "
        f"{meta['completion_tokens']} completion tokens per reply, prompts of {meta['prompt_words']} words, all distinct. "
        f"At concurrency C each client sends min({meta['n']}, {meta['per_slot']}·C) requests, each run in a fresh "
        f"process; {meta['repeats']} repeats in rotating client order, medians shown (min–max in brackets). "
        "Steady req/s: requests over the span from the server's first arrival to its last reply; tokens/s: completion "
        "tokens over the same span; end-to-end: the whole client process, start to exit. Started "
        f"{meta.get('started', '?')}, finished {meta.get('finished', '?')}."
    )


def _steady_table(rows: list[dict], levels: list[int], clients: list[str], latency: float, tokens: int) -> list[str]:
    header = "| client | " + " | ".join(f"C={c} req/s" for c in levels) + " | " + " | ".join(f"C={c} tokens/s" for c in levels) + " |"
    lines = ["Steady throughput (anchors measured on this kind of machine in brackets):", "", header,
             "|---|" + "---:|" * (2 * len(levels))]
    limit = [f"{c / latency:.0f}{_anchor('limit C/latency', c)}" for c in levels]
    limit_tokens = [f"{tokens * c / latency:.0f}" for c in levels]
    lines.append("| limit C/latency | " + " | ".join(limit) + " | " + " | ".join(limit_tokens) + " |")
    for client in clients:
        if client == "llmaug-cached":
            continue
        rps = [_median_cell(rows, client, c, "steady_rps") + _anchor(client, c) for c in levels]
        tokens = [_median_cell(rows, client, c, "steady_tokens_per_s") for c in levels]
        lines.append(f"| {CLIENT_NAMES[client]} | " + " | ".join(rps) + " | " + " | ".join(tokens) + " |")
    return lines


def _process_table(rows: list[dict], levels: list[int], clients: list[str]) -> list[str]:
    lines = ["Whole process: end-to-end req/s (start to exit), and start-up (process start to the first request):", "",
             "| client | " + " | ".join(f"C={c} end-to-end req/s" for c in levels) + " | start-up s (median, all runs) |",
             "|---|" + "---:|" * (len(levels) + 1)]
    for client in clients:
        if client == "llmaug-cached":
            continue
        e2e = [_median_cell(rows, client, c, "e2e_rps") for c in levels]
        startups = [float(r["startup_seconds"]) for r in rows if r["client"] == client and r["startup_seconds"] != ""]
        startup = f"{statistics.median(startups):.2f}" if startups else "–"
        anchor = f" ({ANCHOR_STARTUP[client]})" if client in ANCHOR_STARTUP else ""
        lines.append(f"| {CLIENT_NAMES[client]} | " + " | ".join(e2e) + f" | {startup}{anchor} |")
    cached = [r for r in rows if r["client"] == "llmaug-cached"]
    if cached:
        lines += ["", "Cached rerun of the llmaug job (same cache file, every answer cached):", "",
                  "| C | requests | server requests | in-process generate s | whole process s |", "|---:|---:|---:|---:|---:|"]
        for c in levels:
            mine = [r for r in cached if int(r["concurrency"]) == c]
            if mine:
                lines.append(f"| {c} | {mine[0]['requests']} | {max(int(r['server_requests']) for r in mine)} | "
                             f"{_median(mine, 'generate_seconds'):.3f} | {_median(mine, 'e2e_seconds'):.2f} |")
    return lines


def _goals(rows: list[dict], levels: list[int], latency: float) -> list[str]:
    lines = ["Goals:", "", "| goal | measured | met |", "|---|---|---|"]
    for c in [c for c in levels if c <= 64]:
        mine = _median_value(rows, "llmaug", c, "steady_rps")
        bare = _median_value(rows, "bare-aiohttp", c, "steady_rps")
        if mine is None:
            continue
        share = mine / (c / latency)
        practical = f"; {100 * mine / bare:.0f}% of bare aiohttp" if bare else ""
        lines.append(f"| llmaug ≥ 90% of the limit at C={c} | {mine:.0f} req/s = {100 * share:.0f}% of {c / latency:.0f}{practical} | "
                     f"{'yes' if share >= 0.9 else 'no'} |")
    mine, peer = _median_value(rows, "llmaug", 256, "steady_rps"), _median_value(rows, "curator", 256, "steady_rps")
    if mine is not None and peer:
        lines.append(f"| llmaug ≥ 1.5× curator at C=256 | {mine:.0f} vs {peer:.0f} req/s = {mine / peer:.2f}× | "
                     f"{'yes' if mine >= 1.5 * peer else 'no'} |")
    if mine is not None:
        bare = _median_value(rows, "bare-aiohttp", 256, "steady_rps")
        practical = f" ({100 * mine / bare:.0f}% of bare aiohttp's {bare:.0f} here)" if bare else ""
        lines.append(f"| llmaug ≥ 1225 req/s at C=256 | {mine:.0f} req/s{practical} | {'yes' if mine >= 1225 else 'no'} |")
    startups = [float(r["startup_seconds"]) for r in rows if r["client"] == "llmaug" and r["startup_seconds"] != ""]
    if startups:
        median = statistics.median(startups)
        lines.append(f"| llmaug process start to first request < 1 s | {median:.2f} s (median) | {'yes' if median < 1 else 'no'} |")
    return lines


def _median_cell(rows: list[dict], client: str, concurrency: int, key: str) -> str:
    values = _values(rows, client, concurrency, key)
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.0f}"
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def _median_value(rows: list[dict], client: str, concurrency: int | None, key: str) -> float | None:
    values = _values(rows, client, concurrency, key)
    return statistics.median(values) if values else None


def _values(rows: list[dict], client: str, concurrency: int | None, key: str) -> list[float]:
    return [float(r[key]) for r in rows if r["client"] == client and int(r["concurrency"]) == concurrency and r[key] != ""]


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(float(r[key]) for r in rows)


def _anchor(client: str, concurrency: int) -> str:
    value = ANCHORS.get(client, {}).get(concurrency)
    return f" [{value}]" if value is not None else ""
