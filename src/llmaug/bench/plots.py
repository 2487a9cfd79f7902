"""One plot per dataset: test accuracy against teacher calls, one line per arm, one panel per low-data setting.

A point is a round's student (mean over seeds) at the teacher calls spent on the data it trained on, so an
iterative method draws its learning curve and a one-pass method a single point. Arms that made no teacher call
(no augmentation, full data) are horizontal reference lines; oracle arms are dashed and say "oracle".
"""

from __future__ import annotations

import statistics
from pathlib import Path

from llmaug.bench.grid import Grid


def plot_dataset(grid: Grid, dataset: str, round_rows: list[dict], path: Path) -> bool:
    """Write the dataset's plot to `path`; False when it has no round with a test score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = [s.name for s in grid.settings if any(r["dataset"] == dataset and r["setting"] == s.name for r in round_rows)]
    if not settings:
        return False
    figure, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4.2), squeeze=False)
    drawn = False
    for axis, setting in zip(axes[0], settings):
        for arm in grid.arms:
            rows = [r for r in round_rows if (r["dataset"], r["setting"], r["arm"]) == (dataset, setting, arm.name)
                    and r["test_accuracy"] != ""]
            if rows:
                _draw_arm(axis, arm.name, arm.is_oracle, rows)
                drawn = True
        axis.set_title(f"{dataset} · {setting}")
        axis.set_xlabel("teacher calls")
        axis.set_ylabel("test accuracy")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    if drawn:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110)
    plt.close(figure)
    return drawn


def _draw_arm(axis, arm: str, oracle: bool, rows: list[dict]) -> None:
    label = arm if not oracle or "oracle" in arm else f"oracle: {arm}"
    style = "--" if oracle else "-"
    points = _mean_curve(rows)
    if all(x == 0 for x, _ in points):
        axis.axhline(points[-1][1], linestyle="--" if oracle else ":", linewidth=1, color="black" if oracle else "grey",
                     label=f"{label} (no teacher calls)")
        return
    xs, ys = zip(*points)
    axis.plot(xs, ys, style, marker="o", markersize=3, label=label)


def _mean_curve(rows: list[dict]) -> list[tuple[float, float]]:
    """(mean calls, mean accuracy) per round index, over the seeds that reached that round."""
    by_round: dict[int, list[dict]] = {}
    for row in rows:
        by_round.setdefault(int(row["round"]), []).append(row)
    return [
        (statistics.mean(float(r["calls_before"]) for r in group), statistics.mean(float(r["test_accuracy"]) for r in group))
        for _, group in sorted(by_round.items())
    ]
