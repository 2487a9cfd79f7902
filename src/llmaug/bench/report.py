"""BENCHMARKS.md, assembled from the results folder in one command:

    python -m llmaug.bench.report [--results bench/results] [--out BENCHMARKS.md]     (or: llmaug bench --report)

Sections, in this order: every bench grid (`bench_<name>.md`, rebuilt first from its CSV files and
`bench_<name>.json`), every HTTP throughput benchmark (`throughput_<name>.md`, rebuilt from its CSV), then every
other `<topic>.md` in the folder, by file name, as written by whoever dropped it there. Headings are shifted under
the page title, and relative links and images are rewritten to work from BENCHMARKS.md's folder.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from llmaug.atomic import write_text_atomic

TITLE = "# Benchmarks"
_LINK = re.compile(r"(!?\[[^\]]*\]\()(?!https?://|#|/|mailto:)([^)\s]+)(\))")
_HEADING = re.compile(r"^(#{1,6})(\s)")


def build_report(results: str | Path = "bench/results", out: str | Path = "BENCHMARKS.md") -> Path:
    results, out = Path(results), Path(out)
    rebuild_pages(results)
    pages = ordered_pages(results)
    link_base = Path(os.path.relpath(results.resolve(), out.resolve().parent))
    body = [TITLE, "", _preamble(results, out), ""]
    body += ["Contents:", ""] + [f"- {_first_heading(page) or page.stem}" for page in pages] + [""]
    for page in pages:
        body += [_section(page.read_text(encoding="utf-8"), link_base), ""]
    write_text_atomic(out, "\n".join(body).rstrip() + "\n")
    return out


def rebuild_pages(results: Path) -> None:
    """Regenerate each bench grid's and throughput benchmark's page from its CSV files."""
    from llmaug.bench.run import BenchPaths, render
    from llmaug.bench.throughput import render_throughput

    for meta in sorted(results.glob("bench_*.json")):
        name = meta.stem.removeprefix("bench_")
        paths = BenchPaths(results, results / f"work-{name}", name)
        if paths.csv.is_file():
            render(paths)
    for meta in sorted(results.glob("throughput_*.json")):
        if meta.with_suffix(".csv").is_file():
            render_throughput(meta.with_suffix(".csv"))


def ordered_pages(results: Path) -> list[Path]:
    """Bench grids, then throughput benchmarks, then everything else; by file name within each group."""
    def group(path: Path) -> int:
        return 0 if path.name.startswith("bench_") else 1 if path.name.startswith("throughput_") else 2

    return sorted((path for path in results.glob("*.md") if path.is_file()), key=lambda path: (group(path), path.name))


def _preamble(results: Path, out: Path) -> str:
    return (f"Generated from `{results.as_posix()}/` by `python -m llmaug.bench.report --results {results.as_posix()} "
            f"--out {out.as_posix()}`; do not edit by hand. Each section gives the exact command that produced it and "
            "the machine it ran on. Oracle results are labelled as such in every table.")


def _section(text: str, link_base: Path) -> str:
    return _rewrite_links(_shift_headings(text), link_base).rstrip()


def _shift_headings(text: str) -> str:
    """Headings moved so the page's top level becomes `##`, under the report's title; code blocks untouched."""
    lines = text.splitlines()
    levels = [len(m.group(1)) for m in (_HEADING.match(line) for line in _outside_code(lines)) if m]
    shift = 2 - min(levels) if levels else 0
    shifted, fenced = [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match and shift:
            level = max(1, min(6, len(match.group(1)) + shift))
            line = "#" * level + line[len(match.group(1)):]
        shifted.append(line)
    return "\n".join(shifted)


def _outside_code(lines: list[str]) -> list[str]:
    kept, fenced = [], False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return kept


def _rewrite_links(text: str, base: Path) -> str:
    return _LINK.sub(lambda m: f"{m.group(1)}{(base / m.group(2)).as_posix()}{m.group(3)}", text)


def _first_heading(page: Path) -> str | None:
    for line in _outside_code(page.read_text(encoding="utf-8").splitlines()):
        match = _HEADING.match(line)
        if match:
            return line[len(match.group(0)):].strip()
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Assemble BENCHMARKS.md from a results folder.")
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    print(f"wrote {build_report(args.results, args.out)}")


if __name__ == "__main__":
    main()
