"""The report's PNG plots, each titled, from the report's facts (summary.json's per-round fields).

Accuracy axes span at least `MIN_ACCURACY_SPAN` (20 points) so that a change within seed noise does not fill the
plot like a cliff, and show the 95% interval as a band where the run recorded one.
"""

from __future__ import annotations

from pathlib import Path

from llmaug.atomic import atomic_path
from llmaug.report.facts import ReportFacts

MIN_ACCURACY_SPAN = 0.2
MANY_LABELS = 20  # above this (e.g. Banking77): grow the figures, shrink the ticks, drop the cell numbers


def make_plots(facts: ReportFacts, folder: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}

    def save(name: str, fig) -> None:
        path = folder / f"{name}.png"
        with atomic_path(path, "wb") as file:  # a tight bounding box fits labels of any length
            fig.savefig(file, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        made[name] = path

    rounds = [r["round"] for r in facts.rounds]
    if rounds and all(r.get("test_accuracy") is not None for r in facts.rounds):
        save("test_accuracy", _accuracy_plot(plt, facts))
    series = {
        "train_size": ([r.get("train_size") for r in facts.rounds], "training examples", "Training set size per round"),
        "seed_errors": ([r.get("pool_errors") for r in facts.rounds], "seed errors", "Seed rows the student got wrong"),
        "teacher_requests": ([r.get("teacher_requests") for r in facts.rounds], "teacher requests", "Teacher requests per round"),
        "teacher_tokens": ([_tokens(r) for r in facts.rounds], "teacher tokens", "Teacher tokens per round (prompt + completion)"),
    }
    if facts.price_known:
        series["cost"] = ([r.get("cost_usd") for r in facts.rounds], "US dollars", "Teacher cost per round")
    for name, (values, label, title) in series.items():
        if rounds and all(v is not None for v in values):
            fig, ax = plt.subplots(figsize=(4.5, 3))
            ax.plot(rounds, values, marker="o")
            _count_axis(ax, max(values), integer=name != "cost")
            _round_axis(ax, rounds, label, title)
            save(name, fig)
    if rounds and any(r.get("added") or r.get("rejected") for r in facts.rounds):
        save("accepted_rejected", _accepted_rejected_plot(plt, facts, rounds))
    test = facts.test
    if test and test.get("per_class"):
        labels = list(test["per_class"])
        save("per_class_accuracy", _per_class_plot(plt, test, labels))
        save("confusion_matrix", _confusion_plot(plt, test))
    return made


def accuracy_limits(values: list[float]) -> tuple[float, float]:
    """Y limits around `values` (and their intervals) at least MIN_ACCURACY_SPAN wide, within [0, 1]."""
    low, high = min(values), max(values)
    middle = (low + high) / 2
    span = max(high - low + 0.04, MIN_ACCURACY_SPAN)
    bottom = min(max(0.0, middle - span / 2), 1.0 - span)
    return max(0.0, bottom), min(1.0, max(0.0, bottom) + span)


def _accuracy_plot(plt, facts: ReportFacts):
    fig, ax = plt.subplots(figsize=(4.5, 3))
    rounds = [r["round"] for r in facts.rounds]
    shown: list[float] = []
    for key, name in (("test_accuracy", "test"), ("cv_accuracy", "CV (held-out seeds)")):
        values = [r.get(key) for r in facts.rounds]
        if any(v is None for v in values):
            continue
        line = ax.plot(rounds, values, marker="o", label=name)[0]
        shown += values
        bands = [r.get(f"{key}_ci95") for r in facts.rounds]
        if all(b and len(b) == 2 and None not in b for b in bands):
            ax.fill_between(rounds, [b[0] for b in bands], [b[1] for b in bands], color=line.get_color(), alpha=0.15,
                            label=f"{name} 95% interval")
            shown += [b[0] for b in bands] + [b[1] for b in bands]
    ax.set_ylim(*accuracy_limits(shown))
    _round_axis(ax, rounds, "accuracy", "Accuracy per round")
    if facts.has_cv or any(r.get("test_accuracy_ci95") for r in facts.rounds):
        ax.legend(fontsize=7, loc="best")
    return fig


def _accepted_rejected_plot(plt, facts: ReportFacts, rounds: list[int]):
    fig, ax = plt.subplots(figsize=(4.5, 3))
    added = [r.get("added") or 0 for r in facts.rounds]
    rejected = [r.get("rejected") or 0 for r in facts.rounds]
    ax.bar(rounds, added, label="accepted", color="#2a9d5c")
    ax.bar(rounds, rejected, bottom=added, label="rejected by the filters", color="#c9ccd3")
    ax.legend(fontsize=7, loc="upper right", ncols=2)
    _count_axis(ax, max(a + r for a, r in zip(added, rejected)), integer=True, headroom=1.3)  # room for the legend
    _round_axis(ax, rounds, "teacher outputs", "Teacher outputs accepted and rejected")
    return fig


def _per_class_plot(plt, test: dict, labels: list[str]):
    many = len(labels) > MANY_LABELS
    fig, ax = plt.subplots(figsize=(max(4.5, 0.15 * len(labels) + 1.5), 3))
    ax.bar(labels, [test["per_class"][label]["recall"] for label in labels])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (recall)")
    ax.set_title("Per-class accuracy of the final student", fontsize=10)
    ax.tick_params(axis="x", rotation=90 if many else 45, labelsize=5 if many else None)
    return fig


def _confusion_plot(plt, test: dict):
    labels, matrix = test["labels"], test["confusion"]
    many = len(labels) > MANY_LABELS
    tick_size = 5 if many else None
    side = max(4.5, 0.15 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(side, side * (1 if many else 0.9)))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90 if many else 45, fontsize=tick_size)
    ax.set_yticks(range(len(labels)), labels, fontsize=tick_size)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Confusion matrix of the final student", fontsize=10)
    if not many:
        threshold = (image.norm.vmin + image.norm.vmax) / 2  # white numbers on the dark half of the colour scale
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                        color="white" if value > threshold else "black")
    return fig


def _round_axis(ax, rounds: list[int], label: str, title: str) -> None:
    ax.set_xlabel("round")
    ax.set_ylabel(label)
    ax.set_xticks(rounds)
    ax.set_title(title, fontsize=10)


def _count_axis(ax, highest: float, integer: bool, headroom: float = 1.1) -> None:
    """Counts (and costs) start at 0, counts on whole-number ticks: 30 → 29 seed errors is not drawn as a fall to
    the floor."""
    from matplotlib.ticker import MaxNLocator

    ax.set_ylim(0, highest * headroom or (1 if integer else 0.01))
    if integer:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _tokens(round: dict) -> int | None:
    if round.get("prompt_tokens") is None or round.get("completion_tokens") is None:
        return None
    return round["prompt_tokens"] + round["completion_tokens"]
