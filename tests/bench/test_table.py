"""The bench tables' Δ columns: a point difference in means, with an interval paired over seeds and eval rows."""

from __future__ import annotations

from llmaug.bench.table import Summary, column, gain, paired_differences, percent, whole_mean


def summary(arm: str, accuracy: list[float], correct: dict[str, str]) -> Summary:
    return Summary(dataset="d", setting="1%", arm=arm, method="llm2llm", oracle=False, teacher="t", seeds=len(accuracy),
                   accuracy=accuracy, macro_f1=[], calls=0, tokens=0, added=0, wall=0, correct=correct)


def test_the_interval_pairs_rows_of_the_same_seed_and_skips_seeds_without_both():
    arm = summary("x", [0.75, 0.5], {"0": "1101", "1": "1100", "2": "11"})
    base = summary("none", [0.5, 0.25], {"0": "1100", "1": "0100"})
    assert paired_differences(arm, base) == [[0, 0, 0, 1], [1, 0, 0, 0]]
    text = gain(arm, base)
    point, interval = text.split(" [")
    assert point == "+25.0" and interval.endswith("]")
    low, high = (float(value) for value in interval.rstrip("]").split(", "))
    assert 0 <= low <= 25 <= high <= 100


def test_without_row_records_only_the_point_difference_is_shown():
    arm, base = summary("x", [0.8], {"0": ""}), summary("none", [0.7], {"0": ""})
    assert gain(arm, base) == "+10.0" and gain(arm, arm) == "–" and gain(arm, None) == "–"


def test_column_skips_blanks_and_the_cells_format_mean_and_spread():
    rows = [{"accuracy": "0.5", "size": "10"}, {"accuracy": "", "size": "11"}, {"accuracy": "0.7", "size": None}]
    assert column(rows, "accuracy") == [0.5, 0.7]
    assert percent(column(rows, "accuracy")) == "60.0 ± 14.1"
    assert percent([0.25]) == "25.0" and percent([]) == "–"
    assert whole_mean(column(rows, "size")) == "10" and whole_mean([]) == "–"
