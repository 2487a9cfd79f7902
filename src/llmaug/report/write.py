"""report.md and report.html for a run directory, with PNG plots (embedded in the HTML)."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from llmaug.atomic import atomic_path, write_text_atomic
from llmaug.filters.answers import extract_answer


def write_report(result, method, teacher_identity: str) -> None:
    out: Path = result.out
    plots = _plots(result, out / "plots")
    markdown = _markdown(result, method, teacher_identity, plots)
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "report.html", _html(markdown, plots))


def _cost(cost: float | None) -> str:
    return "n/a" if cost is None else f"{cost:.4f}"


def _markdown(result, method, teacher_identity: str, plots: dict[str, Path]) -> str:
    lines = [
        f"# llmaug run: {method.name}",
        "",
        f"- teacher: `{teacher_identity}`",
        f"- student: `{result.student.kind}` ({', '.join(f'{k}={v}' for k, v in result.student.options.items()) or 'defaults'})",
        f"- settings: {', '.join(f'{k}={v}' for k, v in method.options().items())}",
        f"- filters: {', '.join(f'{k}={v}' for k, v in result.quality.items())}",
        f"- seed examples: {sum(e.is_seed for e in result.data)}, synthetic added: {len(result.added)}",
        f"- wall time: {result.seconds:.1f} s",
        *(["", f"> stopped: {result.stopped['reason']} ({result.stopped['detail']})"] if getattr(result, "stopped", None) else []),
        "",
        "## Rounds",
        "",
        "| round | train size | seed errors | added | rejected | test accuracy | test macro-F1 | teacher requests | tokens (prompt/completion) | cost (USD) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result.rounds:
        acc = f"{r.test_accuracy:.4f}" if r.test_accuracy is not None else "-"
        f1 = f"{r.test_macro_f1:.4f}" if r.test_macro_f1 is not None else "-"
        lines.append(
            f"| {r.round} | {r.train_size} | {r.pool_errors} | {r.added} | {r.rejected} | {acc} | {f1} | "
            f"{r.teacher_requests} | {r.prompt_tokens}/{r.completion_tokens} | {_cost(r.cost_usd)} |"
        )
    reasons: dict[str, int] = {}
    for r in result.rounds:
        for reason, count in r.rejection_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    if reasons:
        lines += ["", "## Rejected teacher outputs", "", "| reason | count |", "|---|---|"]
        lines += [f"| {reason} | {count} |" for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])]
        lines += ["", "A sample (raw teacher output → reason):", ""]
        lines += [f"- `{_short(text)}` → {reason}" for text, reason in _rejected_sample(result.out, 8)]
    if result.test is not None and result.test.macro_f1 is None:  # QA: answers are judged, not classes
        lines += ["", "## Final student on the test set", "",
                  f"accuracy {result.test.accuracy:.4f} (answers judged by the student's `is_correct`) on "
                  f"{result.test.n} examples"]
    elif result.test is not None:
        lines += ["", "## Final student on the test set", "", f"accuracy {result.test.accuracy:.4f}, macro-F1 "
                  f"{result.test.macro_f1:.4f} on {result.test.n} examples", "",
                  "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for label, s in result.test.per_class.items():
            lines.append(f"| {_cell(label)} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.support} |")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}](plots/{path.name})" for name, path in plots.items()]
    samples = result.added[:5]
    if samples:
        lines += ["", "## Sample of added examples", "", "| label | text | parent round |", "|---|---|---|"]
        lines += [f"| {e.label if e.label is not None else f'#### {extract_answer(e.answer)}'} | {_short(e.text)} | "
                  f"{e.provenance.round} |" for e in samples]
    return "\n".join(lines) + "\n"


def _rejected_sample(out: Path, limit: int) -> list[tuple[str, str]]:
    sample = []
    for path in sorted((out / "rounds").glob("*/rejected.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            sample.append((row.get("raw_output") or row.get("text") or "", row["reason"]))
            if len(sample) >= limit:
                return sample
    return sample


def _short(text: str, width: int = 90) -> str:
    text = _cell(text).replace("`", "'")
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(text: str) -> str:
    """`text` on one line, safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _plots(result, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    rounds = [r.round for r in result.rounds]
    made: dict[str, Path] = {}

    def save(name: str, fig) -> None:
        path = folder / f"{name}.png"
        with atomic_path(path, "wb") as file:  # a tight bounding box fits labels of any length
            fig.savefig(file, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        made[name] = path

    series = {
        "test_accuracy": ([r.test_accuracy for r in result.rounds], "test accuracy"),
        "train_size": ([r.train_size for r in result.rounds], "training examples"),
        "seed_errors": ([r.pool_errors for r in result.rounds], "seed errors"),
        "teacher_requests": ([r.teacher_requests for r in result.rounds], "teacher requests"),
        "teacher_tokens": ([r.prompt_tokens + r.completion_tokens for r in result.rounds], "teacher tokens"),
    }
    for name, (values, label) in series.items():
        if not rounds or any(v is None for v in values):
            continue
        fig, ax = plt.subplots(figsize=(4.5, 3))
        ax.plot(rounds, values, marker="o")
        ax.set_xlabel("round")
        ax.set_ylabel(label)
        ax.set_xticks(rounds)
        save(name, fig)
    if result.test is not None and result.test.per_class:
        labels = list(result.test.per_class)
        many = len(labels) > 20  # e.g. Banking77: grow the figures, shrink the ticks, drop the cell numbers
        tick_size = 5 if many else None
        fig, ax = plt.subplots(figsize=(max(4.5, 0.15 * len(labels) + 1.5), 3))
        ax.bar(labels, [result.test.per_class[l].recall for l in labels])
        ax.set_ylabel("per-class accuracy (recall)")
        ax.tick_params(axis="x", rotation=90 if many else 45, labelsize=tick_size)
        save("per_class_accuracy", fig)
        side = max(4.5, 0.15 * len(labels) + 2)
        fig, ax = plt.subplots(figsize=(side, side * (1 if many else 0.9)))
        ax.imshow(result.test.confusion, cmap="Blues")
        ax.set_xticks(range(len(result.test.labels)), result.test.labels, rotation=90 if many else 45, fontsize=tick_size)
        ax.set_yticks(range(len(result.test.labels)), result.test.labels, fontsize=tick_size)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        if not many:
            for i, row in enumerate(result.test.confusion):
                for j, value in enumerate(row):
                    ax.text(j, i, str(value), ha="center", va="center", fontsize=7)
        save("confusion_matrix", fig)
    return made


def _html(markdown: str, plots: dict[str, Path]) -> str:
    body = []
    in_table = False
    for line in markdown.splitlines():
        if line.startswith("|"):
            # Cells split at the pipes Markdown reads as separators, not at those escaped inside text (`\|`).
            cells = [html.escape(c.strip().replace("\\|", "|")) for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            if set("".join(cells)) <= {"-"}:
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("!["):
            name = line[2 : line.index("]")]
            data = base64.b64encode(plots[name].read_bytes()).decode()
            body.append(f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        body.append("</table>")
    style = "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:32%}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>llmaug report</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
