"""`llmaug review` latency on a run of 100k synthetic rows: start-up, first page load, filtered pages, free-text
search, sorting and a bulk decision, over real HTTP on 127.0.0.1, side by side. Goal: < 300 ms per filtered page.

Each request kind is timed `--repeats` times (median and slowest reported); the first load of a sort order, which
builds it, is reported apart from later ones. The load average is recorded before and after: the machine is shared.

    flock /work/bench.lock .venv/bin/python bench/review_latency.py --rows 100000 --repeats 7
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from llmaug.bench.machine import facts_line, machine_facts
from llmaug.bench.results import write_page
from llmaug.review.sample_run import write_sample_run
from llmaug.review.server import TOKEN_HEADER, BackgroundServer

RESULTS = Path(__file__).parent / "results" / "review_latency.md"
GOAL_MS = 300
PARTIAL = {"HX-Request": "true"}  # what htmx sends: the server answers with the table only


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


class Client:
    def __init__(self, url: str, token: str):
        parts = urlsplit(url)
        self.host, self.port, self.token = parts.hostname, parts.port, token

    def json(self, path: str) -> dict:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            connection.request("GET", path)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def timed(self, method: str, path: str, headers: dict | None = None, form: dict | None = None) -> tuple[float, int, int]:
        """Seconds from sending the request to the last byte of the answer, its status and size."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        body = urlencode(form) if form is not None else None
        sent = dict(headers or {})
        if form is not None:
            sent |= {"Content-Type": "application/x-www-form-urlencoded", TOKEN_HEADER: self.token}
        try:
            started = time.perf_counter()
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            size = len(response.read())
            return time.perf_counter() - started, response.status, size
        finally:
            connection.close()


def measure(client: Client, base: str, repeats: int) -> list[tuple[str, str, list[float], int]]:
    """(what, request, seconds of each repeat, answer bytes) per request kind."""
    first = client.timed("GET", base + "rows")
    kinds = [
        ("full page load (50 rows)", "GET", base + "rows", {}),
        ("overview page", "GET", base, {}),
        ("filtered page: round and label", "GET", base + "rows?round=2&label=LOC", PARTIAL),
        ("filtered page: status and rejection reason", "GET", base + "rows?status=rejected&reason=not+a+question", PARTIAL),
        ("free-text search (substring over 100k texts)", "GET", base + "rows?q=violin+of+the", PARTIAL),
        ("free-text search with no match", "GET", base + "rows?q=no-such-words", PARTIAL),
        ("page 1,500 of 2,000", "GET", base + "rows?page=1500", PARTIAL),
        ("JSON API, 500 rows", "GET", base + "api/rows?per_page=500&label=HUM", {}),
    ]
    results = [("first page load after start (full page, 50 rows)", "rows", [first[0]], first[2])]
    for what, method, path, headers in kinds:
        seconds, size = [], 0
        for _ in range(repeats):
            elapsed, status, size = client.timed(method, path, headers)
            assert status == 200, (path, status)
            seconds.append(elapsed)
        results.append((what, path.removeprefix(base) or "./", seconds, size))
    first_sort = client.timed("GET", base + "rows?sort=text", PARTIAL)[0]
    later = [client.timed("GET", base + "rows?sort=-text&round=3", PARTIAL)[0] for _ in range(repeats)]
    results.insert(4, ("sorted by text, first time (builds the order)", "rows?sort=text", [first_sort], 0))
    results.insert(5, ("sorted by text, later (filtered, descending)", "rows?sort=-text&round=3", later, 0))
    bulk = {"action": "reject", "scope": "filter", "round": "4", "label": "NUM"}
    rows = client.json(base + "api/rows?per_page=1&status=accepted&round=4&label=NUM")["total"]
    bulk_seconds = client.timed("POST", base + "decide", PARTIAL, bulk)[0]
    undo_seconds = client.timed("POST", base + "undo", PARTIAL, {"round": "4"})[0]
    results.append((f"bulk reject over a filter (round 4, NUM: {rows:,} rows), appended to review.jsonl", "POST decide",
                    [bulk_seconds], 0))
    results.append(("undo of that bulk reject", "POST undo", [undo_seconds], 0))
    return results


def table(results, start_seconds: float) -> str:
    lines = ["| request | median | slowest | repeats |", "| --- | ---: | ---: | ---: |",
             f"| server start: read the run and build the index | {start_seconds * 1000:,.0f} ms | | 1 |"]
    for what, path, seconds, _ in results:
        lines.append(f"| {what} (`{path}`) | {statistics.median(seconds) * 1000:,.0f} ms | "
                     f"{max(seconds) * 1000:,.0f} ms | {len(seconds)} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    machine = facts_line(machine_facts(("aiohttp", "jinja2", "numpy")))  # its load average is the one before the run
    with tempfile.TemporaryDirectory() as folder:
        run_dir = write_sample_run(Path(folder) / "sample", rows=args.rows)
        started = time.perf_counter()
        with BackgroundServer(run_dir) as server:  # reads the run and builds the index, as `llmaug review` does
            start_seconds = time.perf_counter() - started
            base = f"/runs/{next(iter(server.review.keys))}/"
            results = measure(Client(server.url, server.review.token), base, args.repeats)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    filtered = [statistics.median(s) for what, _, s, _ in results if what.startswith(("filtered", "free-text"))]
    verdict = "met" if max(filtered) * 1000 < GOAL_MS else "missed"
    generated = "\n\n".join([
        f"Command: `python bench/review_latency.py --rows {args.rows} --repeats {args.repeats}` "
        f"(under `flock /work/bench.lock`)",
        f"Machine: {machine}; load average after the run {load_after}.",
        f"A synthetic finished run (`llmaug.review.sample_run`) of {args.rows:,} teacher outputs over 5 rounds "
        f"(about 80% accepted), served by `llmaug review` on 127.0.0.1 in this process's thread and asked over HTTP "
        f"(time to the last byte). htmx requests (`HX-Request: true`) get the table only, as in the browser.",
        table(results, start_seconds),
        f"Goal < {GOAL_MS} ms per filtered page: **{verdict}** (slowest filtered or search median "
        f"{max(filtered) * 1000:,.0f} ms).",
    ])
    write_page(args.output, generated, "Review app latency on 100k rows")
    print(generated)


if __name__ == "__main__":
    main()
