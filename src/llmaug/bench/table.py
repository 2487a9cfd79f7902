"""The bench's Markdown: per dataset, mean ± std over seeds of every arm, oracle arms in their own table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from llmaug.bench.grid import Grid
from llmaug.evaluation.verdict import grouped_interval

ORACLE_NOTE = (
    "Oracle rows are not methods: their \"teacher\" hands out real, unused training rows of the requested label "
    "(`pool:similar`: the row most like the example in the request; `pool:random`: a random one), or the student "
    "trains on the whole train split (full data). They bound what a selection strategy could gain with a perfect "
    "teacher."
)


@dataclass
class Summary:
    """One arm on one dataset and setting, over its seeds."""

    dataset: str
    setting: str
    arm: str
    method: str
    oracle: bool
    teacher: str
    seeds: int
    accuracy: list[float]
    macro_f1: list[float]
    calls: float
    tokens: float
    added: float
    wall: float
    correct: dict[str, str]  # seed -> which eval rows the reported student got right ("0110...")


def summarise(grid: Grid, rows: list[dict]) -> list[Summary]:
    """Rows grouped by dataset, setting and arm, in the grid's order."""
    summaries = []
    for dataset in grid.datasets:
        for setting in grid.settings:
            for arm in grid.arms:
                group = [r for r in rows if (r["dataset"], r["setting"], r["arm"]) == (dataset.name, setting.name, arm.name)]
                if group:
                    summaries.append(_summary(group, arm.is_oracle))
    return summaries


def _summary(group: list[dict], oracle: bool) -> Summary:
    first = group[0]

    def mean(key: str) -> float:
        return statistics.mean(float(r[key]) for r in group)

    return Summary(
        dataset=first["dataset"], setting=first["setting"], arm=first["arm"], method=first["method"], oracle=oracle,
        teacher=first["teacher"], seeds=len(group),
        accuracy=[float(r["test_accuracy"]) for r in group if r["test_accuracy"] != ""],
        macro_f1=[float(r["test_macro_f1"]) for r in group if r["test_macro_f1"] != ""],
        calls=mean("teacher_calls"), tokens=statistics.mean(int(r["prompt_tokens"]) + int(r["completion_tokens"]) for r in group),
        added=mean("added"), wall=mean("wall_seconds"),
        correct={str(r["seed"]): r.get("test_correct") or "" for r in group},
    )


FIRST_FACTS = ("cpu", "cores", "memory", "os", "python", "llmaug", "load average")


def machine_line(facts: dict[str, str]) -> str:
    """The machine facts, hardware first, then package versions by name."""
    ordered = [key for key in FIRST_FACTS if key in facts] + sorted(key for key in facts if key not in FIRST_FACTS)
    return "; ".join(f"{key} {facts[key]}" for key in ordered)


def arm_label(summary: Summary) -> str:
    """Every oracle row says so in its label."""
    return summary.arm if not summary.oracle or "oracle" in summary.arm else f"oracle: {summary.arm}"


def column(rows: list[dict], key: str) -> list[float]:
    """A CSV column's numbers, blanks left out."""
    return [float(row[key]) for row in rows if row[key] not in ("", None)]


def whole_mean(values: list[float]) -> str:
    return f"{statistics.mean(values):.0f}" if values else "–"


def percent(values: list[float]) -> str:
    if not values:
        return "–"
    mean = 100 * statistics.mean(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}"


def markdown(grid: Grid, rows: list[dict], meta: dict, plots: dict[str, str]) -> str:
    """The whole results page of one grid. `plots`: dataset name → image file (relative to the page)."""
    title = grid.title or f"Benchmark grid `{grid.name}`"
    lines = [f"## {title}", ""]
    if grid.description:
        lines += [grid.description.strip(), ""]
    lines += _provenance(meta, rows)
    summaries = summarise(grid, rows)
    for dataset in grid.datasets:
        mine = [s for s in summaries if s.dataset == dataset.name]
        if not mine:
            continue
        lines += [f"### {dataset.name}", ""]
        methods = [s for s in mine if not s.oracle]
        oracles = [s for s in mine if s.oracle]
        baselines = {arm: {s.setting: s for s in mine if s.arm == arm} for arm in grid.compare_to}
        if methods:
            lines += _table(grid, methods, baselines) + [""]
        if oracles:
            lines += ["Oracle results (real training rows as a perfect teacher; upper bounds, not methods):", ""]
            lines += _table(grid, oracles, baselines) + [""]
        if dataset.name in plots:
            lines += [f"![{dataset.name}: test accuracy against teacher calls]({plots[dataset.name]})", ""]
    if any(s.oracle for s in summaries):
        lines += [ORACLE_NOTE, ""]
    lines += _column_notes()
    if grid.notes:
        lines += ["Notes:", ""] + [f"- {note}" for note in grid.notes] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _provenance(meta: dict, rows: list[dict]) -> list[str]:
    lines = []
    if meta.get("command"):
        lines += [f"Command: `{meta['command']}`", ""]
    if meta.get("machine"):
        lines += [f"Machine: {machine_line(meta['machine'])}.", ""]
    when = ", ".join(f"{key} {meta[key]}" for key in ("started", "finished") if meta.get(key))
    if meta.get("started") and not meta.get("finished"):
        when += " (not finished: interrupted or still running)"
    resumed = sum(str(r.get("resumed")) == "True" for r in rows)
    resumed_note = f" ({resumed} resumed after an interruption)" if resumed else ""
    lines += [f"Cells: {len(rows)} finished{resumed_note}{f'; {when}' if when else ''}.", ""]
    if meta.get("failed"):
        lines += [f"Failed cells (rerun the command to retry them): {'; '.join(meta['failed'])}.", ""]
    return lines


def _table(grid: Grid, summaries: list[Summary], baselines: dict[str, dict[str, Summary]]) -> list[str]:
    gains = [f"Δ vs {arm} [95% CI]" for arm in baselines]
    lines = [
        f"| setting | arm | method | teacher | seeds | test accuracy % | {' | '.join(gains)} | test macro-F1 % | "
        "teacher calls | tokens | added | wall s | paper (accuracy %) |",
        "|---|---|---|---|---:|---:|" + "---:|" * len(gains) + "---:|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        reported = "; ".join(
            f"{r.accuracy:g} ({r.source})" if r.accuracy is not None else f"macro-F1 {r.macro_f1:g} ({r.source})"
            for r in grid.reported_for(s.dataset, s.setting, s.arm)
        )
        deltas = " | ".join(gain(s, by_setting.get(s.setting)) for by_setting in baselines.values())
        lines.append(
            f"| {s.setting} | {arm_label(s)} | {s.method} | {s.teacher} | {s.seeds} | {percent(s.accuracy)} | "
            f"{deltas} | {percent(s.macro_f1)} | {s.calls:.0f} | {s.tokens:.0f} | "
            f"{s.added:.0f} | {s.wall:.1f} | {reported} |"
        )
    return lines


def gain(summary: Summary, baseline: Summary | None) -> str:
    """Mean test accuracy minus a baseline arm's on the same dataset and setting, in points, with a bootstrap 95%
    interval paired over seeds and eval rows (where both arms recorded which rows they got right)."""
    if baseline is None or baseline is summary or not summary.accuracy or not baseline.accuracy:
        return "–"
    point = f"{100 * (statistics.mean(summary.accuracy) - statistics.mean(baseline.accuracy)):+.1f}"
    differences = paired_differences(summary, baseline)
    if not differences:
        return point
    low, high = grouped_interval(differences)
    return f"{point} [{100 * low:+.1f}, {100 * high:+.1f}]"


def paired_differences(summary: Summary, baseline: Summary) -> list[list[int]]:
    """Per seed both arms ran, the row-by-row difference in correctness on the same eval rows."""
    pairs = []
    for seed, mine in summary.correct.items():
        theirs = baseline.correct.get(seed, "")
        if mine and len(mine) == len(theirs):
            pairs.append([int(a) - int(b) for a, b in zip(mine, theirs)])
    return pairs


def _column_notes() -> list[str]:
    columns = (
        "Columns: mean ± sample standard deviation over seeds; Δ vs ARM: points of mean test accuracy over that arm "
        "on the same dataset and setting, with a bootstrap 95% interval resampling seeds and, within each, eval rows "
        "(paired: both arms' students judged on the same rows); test accuracy is the student each run returned (the "
        "round its selection kept); teacher calls and tokens count every request a run "
        "made (answered from its cache or not), averaged over seeds; added = synthetic rows in the final data; wall s = "
        "seconds of the bench process that finished the cell (a resumed cell's excludes the time before the "
        "interruption). The paper column shows a paper's number only where the dataset, low-data setting and method "
        "match; its student and teacher are the paper's (see the source), not ours."
    )
    return [columns, ""]
