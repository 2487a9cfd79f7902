"""The report's Markdown, from its facts, and the HTML made from that Markdown (plots embedded, self-contained).

The Markdown uses a small subset (headings, `-` lists, `>` notes, tables, images, `code` spans) that the HTML
converter here renders fully: no Markdown syntax is left showing in the HTML.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from llmaug.report.facts import ReportFacts, cost_text

_CODE_SPAN = re.compile(r"`([^`]+)`")
_TABLE_SEPARATOR = re.compile(r"(?<!\\)\|")


def markdown(facts: ReportFacts, plots: dict[str, Path]) -> str:
    lines = [f"# llmaug run: {facts.method}", ""]
    if facts.stopped:
        detail = f" ({facts.stopped['detail']})" if facts.stopped.get("detail") else ""
        lines += [f"> stopped: {facts.stopped['reason']}{detail}", ""]
    if facts.selection:
        reason = f": {facts.selection['reason']}" if facts.selection.get("reason") else ""
        lines += [f"> kept round {facts.selection['chosen_round']} ({facts.selection['rule']}){reason}", ""]
    lines += [
        f"- teacher: `{facts.teacher}`",
        f"- student: `{facts.student}` ({', '.join(f'{k}={v}' for k, v in facts.student_options.items()) or 'defaults'})",
        f"- settings: {', '.join(f'{k}={v}' for k, v in facts.settings.items())}",
    ]
    if facts.filters:
        lines.append(f"- filters: {', '.join(f'{k}={v}' for k, v in facts.filters.items())}")
    lines.append(f"- seed examples: {facts.seeds}, synthetic added: {facts.added}")
    if facts.seconds is not None:
        lines.append(f"- wall time: {facts.seconds:.1f} s")
    lines += _verdict(facts.verdict)
    lines += _rounds(facts)
    lines += _rejections(facts)
    lines += _test(facts.test)
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}](plots/{path.name})" for name, path in plots.items()]
    if facts.added_sample:
        lines += ["", "## Sample of added examples", "", "| label | text | parent (the row it was made from) | round |",
                  "|---|---|---|---|"]
        lines += [f"| {_cell(row.label)} | {_short(row.text)} | {_short(row.parent) or '-'} | "
                  f"{row.round if row.round is not None else '-'} |" for row in facts.added_sample]
    lines += review_lines(facts.review)
    return "\n".join(lines) + "\n"


def _verdict(verdict: dict | None) -> list[str]:
    if not verdict:
        return []
    where = "the eval set" if verdict.get("on") == "eval" else "held-out seed predictions"
    lines = ["", "## Verdict against no augmentation", "",
             f"> {verdict['outcome']}: round {verdict.get('baseline_round', 0)} → round {verdict.get('final_round')} on {where}",
             "", "| measure | change | 95% interval |", "|---|---|---|",
             f"| accuracy | {_signed(verdict.get('delta_accuracy'))} | {_interval(verdict.get('ci95'))} |"]
    if verdict.get("delta_macro_f1") is not None:
        lines.append(f"| macro-F1 | {_signed(verdict['delta_macro_f1'])} | {_interval(verdict.get('ci95_macro_f1'))} |")
    if verdict.get("mcnemar_p") is not None:
        lines += ["", f"McNemar p = {verdict['mcnemar_p']:.3f}"]
    per_class = verdict.get("per_class_f1") or {}
    if per_class:
        lines += ["", "| label | F1 before | F1 after | change |", "|---|---|---|---|"]
        lines += [f"| {_cell(label)} | {s['before']:.3f} | {s['after']:.3f} | {_signed(s['delta'])} |"
                  for label, s in per_class.items()]
    return lines


def _rounds(facts: ReportFacts) -> list[str]:
    cv = facts.has_cv
    header = ("| round | train size | seed errors | added | rejected | test accuracy |" + (" CV accuracy |" if cv else "")
              + " test macro-F1 | teacher requests | tokens (prompt/completion) | cost (USD) |")
    lines = ["", "## Rounds", "", header, "|" + "---|" * header.count(" |")]
    for r in facts.rounds:
        cells = [r["round"], r.get("train_size"), r.get("pool_errors"), r.get("added"), r.get("rejected"),
                 _with_interval(r.get("test_accuracy"), r.get("test_accuracy_ci95"))]
        if cv:
            cells.append(_with_interval(r.get("cv_accuracy"), r.get("cv_accuracy_ci95")))
        cells += [_number(r.get("test_macro_f1")), r.get("teacher_requests"),
                  f"{r.get('prompt_tokens')}/{r.get('completion_tokens')}", cost_text(r.get("cost_usd"), facts.price_known)]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return lines


def _rejections(facts: ReportFacts) -> list[str]:
    reasons: dict[str, int] = {}
    for r in facts.rounds:
        for reason, count in (r.get("rejection_reasons") or {}).items():
            reasons[reason] = reasons.get(reason, 0) + count
    if not reasons:
        return []
    lines = ["", "## Rejected teacher outputs", "", "| reason | count |", "|---|---|"]
    lines += [f"| {_cell(reason)} | {count} |" for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])]
    if facts.rejected_sample:
        lines += ["", "A sample, one per reason first: the teacher's raw output, the text the parser made of it (what the "
                  "reason is about) and the reason.", "", "| raw teacher output | parsed text | reason |", "|---|---|---|"]
        lines += [f"| {_short(row.raw_output) or '-'} | {_short(row.text) or '(nothing parsed)'} | {_cell(row.reason)} |"
                  for row in facts.rejected_sample]
    return lines


def _test(test: dict | None) -> list[str]:
    if not test:
        return []
    if test.get("macro_f1") is None:  # QA: answers are judged, not classes
        return ["", "## Final student on the test set", "",
                f"accuracy {test['accuracy']:.4f} (answers judged by the student's `is_correct`) on {test['n']} examples"]
    lines = ["", "## Final student on the test set", "",
             f"accuracy {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f} on {test['n']} examples", "",
             "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    lines += [f"| {_cell(label)} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |"
              for label, s in test["per_class"].items()]
    return lines


def review_lines(review: dict | None) -> list[str]:
    """Before/after review: the run's final student against the one `llmaug retrain` trained on the curated data."""
    if not review:
        return []
    before = review.get("before") or {}
    lines = ["", "## After review", "",
             f"{review.get('reviewed_out', 0)} rows reviewed out and {review.get('relabelled', 0)} relabelled "
             f"({review.get('decisions', 0)} decisions in review.jsonl); the student retrained on the curated data is in "
             "reviewed/student.", "", "| measure | run | after review | change |", "|---|---|---|---|"]
    for key, name in (("accuracy", "test accuracy"), ("macro_f1", "test macro-F1")):
        old, new = before.get(key), review.get(key)
        change = _signed(new - old) if old is not None and new is not None else "-"
        lines.append(f"| {name} | {_number(old)} | {_number(new)} | {change} |")
    lines.append(f"| training examples | {before.get('train_size', '-')} | {review.get('train_size', '-')} | |")
    return lines


# --------------------------------------------------------------------------------------------------- HTML


def to_html(markdown_text: str, plots: dict[str, Path]) -> str:
    body: list[str] = []
    block: str | None = None  # "table" or "ul" while one is open
    header_row = False
    for line in markdown_text.splitlines():
        kind = "table" if line.startswith("|") else "ul" if line.startswith("- ") else None
        if block != kind and block is not None:
            body.append(f"</{block}>")
            block = None
        if kind == "table":
            cells = [c.strip().replace("\\|", "|") for c in _TABLE_SEPARATOR.split(line.strip().strip("|"))]
            if set("".join(cells)) <= {"-"}:
                continue
            if block is None:
                body.append("<table>")
                block, header_row = "table", True
            tag = "th" if header_row else "td"
            header_row = False
            body.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells) + "</tr>")
        elif kind == "ul":
            if block is None:
                body.append("<ul>")
                block = "ul"
            body.append(f"<li>{_inline(line[2:])}</li>")
        elif line.startswith("!["):
            name = line[2:line.index("]")]
            data = base64.b64encode(plots[name].read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></figure>')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("> "):
            body.append(f'<p class="note">{_inline(line[2:])}</p>')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    if block is not None:
        body.append(f"</{block}>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>llmaug report</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#1d2330;line-height:1.45}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d5d9e0;padding:3px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f5f8}code{background:#f0f2f5;padding:0 4px;border-radius:3px;font-size:90%}"
    "p.note{background:#fff3d6;color:#6b4700;padding:6px 10px;border-radius:5px;font-weight:600}"
    "figure{display:inline-block;margin:0 .5em .5em 0;vertical-align:top}figure img{max-width:100%}"
)


def _inline(text: str) -> str:
    """Escaped text with `code` spans as <code> (data put in cells never holds a backtick: see _short)."""
    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(text))


def _short(text: str, width: int = 90) -> str:
    text = _cell(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(text) -> str:
    """`text` on one line, safe inside a Markdown table cell: pipes escaped, backticks (which would open a code
    span) made quotes."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("`", "'")


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _signed(value) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _interval(bounds) -> str:
    if not bounds or len(bounds) != 2 or None in bounds:
        return "-"
    return f"[{bounds[0]:.4f}, {bounds[1]:.4f}]"


def _with_interval(value, bounds) -> str:
    if value is None:
        return "-"
    interval = _interval(bounds)
    return f"{value:.4f}" + (f" {interval}" if interval != "-" else "")
