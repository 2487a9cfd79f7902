"""The plots as drawn (each figure is inspected as it is saved): every plot titled, accuracy axes that keep a
small change small and show interval bands, counts from zero, and readable numbers on dark confusion cells."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from llmaug.report import plots
from llmaug.report.facts import ReportFacts
from llmaug.report.plots import MIN_ACCURACY_SPAN, accuracy_limits, make_plots

matplotlib.use("Agg")


@pytest.fixture
def drawn(monkeypatch) -> dict[str, Figure]:
    """Every figure make_plots saves, by the name of the file it goes to."""
    figures: dict[str, Figure] = {}
    targets: list[str] = []
    save, open_atomic = Figure.savefig, plots.atomic_path

    @contextmanager
    def tracked(target, mode="w"):
        targets.append(Path(target).stem)
        with open_atomic(target, mode) as file:
            yield file

    def record(fig, file, **options):
        figures[targets[-1]] = fig
        return save(fig, file, **options)

    monkeypatch.setattr(plots, "atomic_path", tracked)
    monkeypatch.setattr(Figure, "savefig", record)
    return figures


def facts(tmp_path, rounds: list[dict], test: dict | None = None, price_known: bool = False) -> ReportFacts:
    return ReportFacts(out=tmp_path, method="llm2llm", teacher="t", student="tfidf", student_options={}, settings={},
                       rounds=rounds, test=test, seeds=4, added=2, price_known=price_known)


def a_round(k: int, accuracy: float, **extra) -> dict:
    return {"round": k, "train_size": 50 + 10 * k, "pool_errors": 30 - k, "added": 10, "rejected": 3,
            "test_accuracy": accuracy, "test_macro_f1": accuracy - 0.1, "teacher_requests": 13, "prompt_tokens": 100,
            "completion_tokens": 20, "cost_usd": 0.001, **extra}


TEST = {"accuracy": 0.7, "macro_f1": 0.6, "n": 60, "labels": ["LOC", "NUM", "HUM"],
        "per_class": {label: {"precision": 0.7, "recall": 0.7, "f1": 0.7, "support": 20} for label in ("LOC", "NUM", "HUM")},
        "confusion": [[18, 1, 1], [2, 15, 3], [0, 9, 11]]}


def test_every_plot_has_a_title(tmp_path, drawn):
    made = make_plots(facts(tmp_path, [a_round(0, 0.70), a_round(1, 0.72)], TEST, price_known=True), tmp_path / "plots")
    assert set(made) == {"test_accuracy", "train_size", "seed_errors", "teacher_requests", "teacher_tokens", "cost",
                         "accepted_rejected", "per_class_accuracy", "confusion_matrix"}
    assert set(drawn) == set(made)
    for name, fig in drawn.items():
        assert fig.axes[0].get_title(), name


def test_a_change_of_under_one_point_does_not_fill_the_accuracy_axis(tmp_path, drawn):
    make_plots(facts(tmp_path, [a_round(0, 0.736), a_round(1, 0.744)]), tmp_path / "plots")
    low, high = drawn["test_accuracy"].axes[0].get_ylim()
    assert high - low >= MIN_ACCURACY_SPAN - 1e-9 and low <= 0.736 and high >= 0.744
    assert (0.744 - 0.736) / (high - low) < 0.05  # the 0.8-point change is under 5% of the axis height


@pytest.mark.parametrize("values", [[0.0, 0.01], [0.99, 1.0], [0.2, 0.9], [0.5, 0.5]])
def test_accuracy_limits_stay_within_zero_and_one_and_hold_the_values(values):
    low, high = accuracy_limits(values)
    assert 0.0 <= low <= min(values) and max(values) <= high <= 1.0
    assert high - low >= MIN_ACCURACY_SPAN - 1e-9


def test_intervals_are_drawn_as_bands_and_cv_accuracy_beside_test_accuracy(tmp_path, drawn):
    rounds = [a_round(k, 0.7 + 0.01 * k, test_accuracy_ci95=[0.65 + 0.01 * k, 0.75 + 0.01 * k], cv_accuracy=0.6,
                      cv_accuracy_ci95=[0.5, 0.7]) for k in range(3)]
    make_plots(facts(tmp_path, rounds), tmp_path / "plots")
    axes = drawn["test_accuracy"].axes[0]
    assert sum(isinstance(c, PolyCollection) for c in axes.collections) == 2
    assert [line.get_label() for line in axes.get_lines()] == ["test", "CV (held-out seeds)"]
    assert axes.get_ylim()[0] <= 0.5 and axes.get_ylim()[1] >= 0.77


def test_counts_start_at_zero(tmp_path, drawn):
    make_plots(facts(tmp_path, [a_round(0, 0.7), a_round(1, 0.7)]), tmp_path / "plots")
    for name in ("seed_errors", "train_size", "teacher_requests", "accepted_rejected"):
        assert drawn[name].axes[0].get_ylim()[0] == 0, name


def test_numbers_on_dark_confusion_cells_are_white(tmp_path, drawn):
    make_plots(facts(tmp_path, [a_round(0, 0.7)], TEST), tmp_path / "plots")
    colours = {text.get_text(): to_rgb(text.get_color()) for text in drawn["confusion_matrix"].axes[0].texts}
    assert colours["18"] == colours["15"] == colours["11"] == (1.0, 1.0, 1.0)
    assert colours["1"] == colours["0"] == colours["2"] == (0.0, 0.0, 0.0)
