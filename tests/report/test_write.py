"""report.md and report.html of a run directory, with the real runner, the tfidf student and a scripted teacher."""

from __future__ import annotations

import base64
import io
import itertools
import re
import warnings

import pytest
from rich.console import Console

from llmaug.data import Example
from llmaug.methods.baselines import NoAugmentation, Paraphrase
from llmaug.runner import run
from llmaug.teachers import Teacher
from llmaug.teachers.function import FunctionBackend

SEEDS = [
    ("What city hosts the Eiffel Tower ?", "LOC"), ("Where is Mount Kilimanjaro ?", "LOC"),
    ("In which country is Kyoto ?", "LOC"), ("How many legs does a spider have ?", "NUM"),
    ("What year did the Berlin Wall fall ?", "NUM"), ("How far is the Moon from Earth ?", "NUM"),
]
ROUND_PLOTS = {"train_size", "seed_errors", "teacher_requests", "teacher_tokens"}
TEST_PLOTS = {"test_accuracy", "per_class_accuracy", "confusion_matrix"}
# Banking77 intents, the longest (48 characters) included: the case the label-count sizing of the plots is for.
BANKING_LABELS = [
    "activate_my_card", "age_limit", "apple_pay_or_google_pay", "atm_support", "automatic_top_up",
    "balance_not_updated_after_bank_transfer", "balance_not_updated_after_cheque_or_cash_deposit",
    "beneficiary_not_allowed", "cancel_transfer", "card_about_to_expire", "card_acceptance", "card_arrival",
    "card_delivery_estimate", "card_linking", "card_not_working", "card_payment_fee_charged",
    "card_payment_not_recognised", "card_payment_wrong_exchange_rate", "card_swallowed", "cash_withdrawal_charge",
    "cash_withdrawal_not_recognised", "change_pin", "compromised_card", "contactless_not_working", "country_support",
    "declined_card_payment", "declined_cash_withdrawal", "declined_transfer", "direct_debit_payment_not_recognised",
    "disposable_card_limits",
]


def seed_set() -> list[Example]:
    return [Example.create(text, label) for text, label in SEEDS]


def piped_teacher() -> Teacher:
    """Questions with a `|` in them; every second answer repeats the one before, so it is rejected as a duplicate."""
    counter = itertools.count()
    return Teacher(FunctionBackend(lambda request: f"Which pipe | number {next(counter) // 2} leads to the harbour ?"))


def quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture(scope="module")
def report_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    run(Paraphrase(per_example=2), seed_set(), teacher=piped_teacher(), student="tfidf", eval=seed_set(), out=out, select="last",
        console=quiet())
    return out


def plot_names(out) -> set[str]:
    return {path.stem for path in (out / "plots").glob("*.png")}


def embedded_images(html: str) -> dict[str, bytes]:
    found = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)">', html)
    return {alt: base64.b64decode(data) for alt, data in found}


def cells(row: str) -> list[str]:
    """A Markdown table row's cells, split at the pipes that are not escaped."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def test_a_run_with_a_test_set_writes_both_reports_and_every_plot(report_run):
    assert (report_run / "report.md").is_file() and (report_run / "report.html").is_file()
    assert plot_names(report_run) == ROUND_PLOTS | TEST_PLOTS
    for path in (report_run / "plots").glob("*.png"):
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), path.name
    markdown = (report_run / "report.md").read_text()
    for name in ROUND_PLOTS | TEST_PLOTS:
        assert f"![{name}](plots/{name}.png)" in markdown
    assert "## Final student on the test set" in markdown and "| LOC | " in markdown and "| NUM | " in markdown


def test_the_html_is_self_contained_with_each_plot_embedded_byte_for_byte(report_run):
    html = (report_run / "report.html").read_text()
    images = embedded_images(html)
    assert set(images) == ROUND_PLOTS | TEST_PLOTS
    for name, data in images.items():
        assert data == (report_run / "plots" / f"{name}.png").read_bytes(), name
    assert "plots/" not in html and "![" not in html


def test_pipes_in_example_text_are_escaped_in_markdown_tables_and_kept_as_text_in_html(report_run):
    markdown = (report_run / "report.md").read_text()
    sample = markdown.split("## Sample of added examples")[1].strip().splitlines()
    assert cells(sample[0]) == ["label", "text", "parent round"]
    rows = [cells(line) for line in sample[2:]]
    assert rows == [[label, f"Which pipe \\| number {n} leads to the harbour ?", "0"]  # the first 5 of 6 added
                    for label, n in zip(["LOC"] * 3 + ["NUM"] * 2, range(5))]
    rejected = markdown.split("A sample (raw teacher output → reason):")[1].split("##")[0]
    assert "- `Which pipe \\| number 0 leads to the harbour ?` → exact duplicate" in rejected

    html = (report_run / "report.html").read_text()
    html_rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", html) if "pipe" in row]
    assert html_rows == [[label, f"Which pipe | number {n} leads to the harbour ?", "0"]
                         for label, n in zip(["LOC"] * 3 + ["NUM"] * 2, range(5))]


def test_without_a_test_set_there_are_no_test_plots_and_no_test_section(tmp_path):
    out = tmp_path / "run"
    run(Paraphrase(), seed_set(), teacher=piped_teacher(), student="tfidf", out=out, console=quiet())
    assert plot_names(out) == ROUND_PLOTS
    markdown = (out / "report.md").read_text()
    assert "## Final student on the test set" not in markdown and "test_accuracy" not in markdown
    assert set(embedded_images((out / "report.html").read_text())) == ROUND_PLOTS


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[16:24]  # IHDR: width and height, big-endian
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")


def labelled_run(labels: list[str], out):
    """No augmentation, two rows per label, scored on its own rows: a test set with every label."""
    rows = [Example.create(f"please help me with {label.replace('_', ' ')} case {j}", label)
            for label in labels for j in range(2)]
    return run(NoAugmentation(), rows, teacher=Teacher(FunctionBackend(lambda request: "unused")), student="tfidf",
               eval=rows, out=out, console=quiet())


BANKING77_SIZED = [f"{label}_{i}" for i in range(3) for label in BANKING_LABELS][:77]


@pytest.mark.parametrize("labels", [BANKING_LABELS, BANKING77_SIZED], ids=["30 labels", "77 labels"])
def test_many_long_labels_are_plotted_without_matplotlib_giving_up_on_the_layout(labels, tmp_path):
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = labelled_run(labels, out)
    assert len(result.test.per_class) == len(labels)
    assert [str(w.message) for w in caught if "Tight layout not applied" in str(w.message)] == []
    assert TEST_PLOTS <= plot_names(out)
    assert set(embedded_images((out / "report.html").read_text())) == ROUND_PLOTS | TEST_PLOTS


def test_the_plots_grow_with_the_number_of_labels(report_run, tmp_path):
    labelled_run(BANKING_LABELS, tmp_path / "run")
    for name in ("per_class_accuracy", "confusion_matrix"):
        few = png_size(report_run / "plots" / f"{name}.png")
        many = png_size(tmp_path / "run" / "plots" / f"{name}.png")
        assert many[0] > few[0], name


def test_long_label_names_grow_the_image_instead_of_being_cut_off(tmp_path):
    short = [f"c{i}" for i in range(6)]
    long = [f"{label}_{'x' * 40}" for label in short]  # few labels, 43 characters each
    labelled_run(short, tmp_path / "short")
    labelled_run(long, tmp_path / "long")
    for name in ("per_class_accuracy", "confusion_matrix"):
        cut = png_size(tmp_path / "short" / "plots" / f"{name}.png")
        grown = png_size(tmp_path / "long" / "plots" / f"{name}.png")
        assert grown[1] > cut[1], name  # the rotated names hang below the axes: the saved image is taller
