"""Final answers of math word problems, and the teacher's QA output parser."""

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmaug.data import load_examples
from llmaug.filters.answers import (
    REASON_CUT_OFF,
    REASON_EMPTY,
    REASON_NO_ANSWER,
    REASON_NO_FINAL,
    REASON_NO_QUESTION,
    REASON_NOT_NUMERIC,
    REASON_UNSUPPORTED,
    QAItem,
    answers_match,
    extract_answer,
    parse_qa_items,
    strip_calculator_annotations,
    to_number,
)

GSM8K_TRAIN = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k" / "train.jsonl"  # ../shared beside the repo


# ------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "text, value",
    [("72", 72), ("1,000", 1000), ("$1,234.50", Fraction("1234.5")), ("5.0", 5), ("-3", -3), (".5", Fraction(1, 2)),
     ("12%", 12), ("7.", 7), (" 42 ", 42), ("$ 5", 5)],
)
def test_to_number_reads_numbers_as_people_write_them(text, value):
    assert to_number(text) == value


@pytest.mark.parametrize("text", ["", "five", "5 apples", "1/2", "1,2", "3-4", "$", "1.2.3", None])
def test_to_number_refuses_what_is_not_one_number(text):
    assert to_number(text) is None


@pytest.mark.parametrize(
    "text, answer",
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", "72"),
        ("So the total is $1,000.\n#### $1,000 dollars", "$1,000"),
        ("first guess\n#### 5\n#### 9", "5"),  # the first final line: what a rambling model said first
        ("He has 3 apples, then 12 apples.", "12"),  # no ####: the last number
        ("The answer is 3.14.", "3.14"),
        ("numbers 1,2,3", "3"),
        ("5-3", "3"),
        ("#### seven", "seven"),
        ("no number here", None),
        ("####   ", None),
        ("", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_answers_match_compares_numbers_not_spelling():
    assert answers_match("so he pays $1,000.0\n#### 1,000", "Total: 1000\n#### 1000")
    assert answers_match("#### 0.50", "#### .5")
    assert not answers_match("#### 5", "#### 6")
    assert not answers_match("#### 5", "#### five")
    assert answers_match("#### Five", "#### five")  # non-numeric answers: case-insensitive text
    assert not answers_match(None, None) and not answers_match("no number", "no number")


@pytest.mark.skipif(not GSM8K_TRAIN.exists(), reason="shared data not mounted")
def test_every_gsm8k_training_answer_extracts_to_a_number():
    rows = load_examples(GSM8K_TRAIN)
    assert len(rows) == 7473
    assert all(to_number(extract_answer(row.answer)) is not None for row in rows)


def test_strip_calculator_annotations():
    assert strip_calculator_annotations("48/2 = <<48/2=24>>24 clips") == "48/2 = 24 clips"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789,.$-# \nabc%<>="), max_size=40),
       st.text(alphabet=st.sampled_from("0123456789,.$-# \nabc%<>="), max_size=40))
def test_answers_match_is_symmetric_and_extraction_never_raises(first, second):
    extract_answer(first)
    to_number(first)
    assert answers_match(first, second) == answers_match(second, first)
    if to_number(extract_answer(first) or "") is not None:
        assert answers_match(first, first)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-10**12, max_value=10**12), st.integers(min_value=0, max_value=99))
def test_thousands_separators_and_trailing_zeros_do_not_change_a_number(whole, cents):
    plain = f"{whole}.{cents:02d}"
    grouped = f"{whole:,}.{cents:02d}0"
    assert answers_match(f"#### {plain}", f"#### {grouped}")
    assert answers_match(f"#### {whole}", f"Total: ${whole:,}.0")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_qa_items_never_raises_and_gives_a_reason_for_every_rejection(text):
    items, rejected = parse_qa_items(text)
    assert all(isinstance(item, QAItem) and item.question and item.answer for item in items)
    assert all(rejected)
    assert items or rejected


# ------------------------------------------------------------------------------------------- QA parser


def test_parse_qa_items_reads_the_official_format_and_skips_chatter():
    text = ("Sure! Here is a new problem:\n1. Question: Tom wants a bike that costs $240. He has saved a third "
            "of it. How much more does he need?\nAnswer: Tom has 240 / 3 = $80. He needs 240 - 80 = $160 more.\n"
            "#### 160\nI hope this helps!")
    items, rejected = parse_qa_items(text)
    assert rejected == []
    assert items == [QAItem(
        question="Tom wants a bike that costs $240. He has saved a third of it. How much more does he need?",
        answer="Tom has 240 / 3 = $80. He needs 240 - 80 = $160 more.\n#### 160",
    )]


def test_parse_qa_items_normalises_the_final_number():
    items, _ = parse_qa_items("Question: How much is 500 and 500?\nAnswer: 500 + 500 = 1,000\n#### $1,000.00")
    assert items[0].answer.endswith("\n#### 1000")


def test_parse_qa_items_splits_several_items():
    text = ("1. Question: What is 2 + 3?\nAnswer: 2 + 3 = 5\n#### 5\n"
            "2. Question: What is 4 + 4?\nAnswer: 4 + 4 = 8\n#### 8")
    items, rejected = parse_qa_items(text)
    assert [item.question for item in items] == ["What is 2 + 3?", "What is 4 + 4?"] and rejected == []


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", REASON_EMPTY),
        ("1. Question: How many legs do 3 cats have?\nThe answer is 12 legs.\n#### 12", REASON_NO_ANSWER),
        ("1. Question:\nAnswer: 3 * 4 = 12\n#### 12", REASON_NO_QUESTION),
        ("1. Question: How many legs do 3 cats have?\nAnswer: 3 * 4 = 12 legs.", REASON_NO_FINAL),
        ("1. Question: How many legs do 3 cats have?\nAnswer: 3 * 4 = 12 legs.\n#### twelve", REASON_NOT_NUMERIC),
        ("1. Question: How many legs do 3 cats have?\nAnswer: 3 * 4 = 12.\n#### 12 legs", REASON_NOT_NUMERIC),
        ("1. Question: How many legs do 3 cats have?\nAnswer:\n#### 12", REASON_NO_ANSWER),
        ("1. Question: How many legs do 3 cats have?\nAnswer: Cats have 4 legs each.\n#### 7", REASON_UNSUPPORTED),
    ],
)
def test_parse_qa_items_rejects_with_a_reason(text, reason):
    items, rejected = parse_qa_items(text)
    assert items == [] and rejected == [reason]


def test_an_item_cut_off_at_the_token_limit_is_rejected_but_earlier_items_are_kept():
    text = ("1. Question: What is 2 + 3?\nAnswer: 2 + 3 = 5\n#### 5\n"
            "2. Question: What is 40 + 40?\nAnswer: 40 + 40 = 80\n#### 8")  # "80" cut short
    items, rejected = parse_qa_items(text, cut_off=True)
    assert [item.question for item in items] == ["What is 2 + 3?"]
    assert rejected == [REASON_CUT_OFF]


def test_a_real_weak_teacher_output_is_rejected_for_a_final_number_its_steps_never_reach():
    # SmolLM2-135M-Instruct, asked for a problem like a GSM8K seed the student answered "12" to.
    text = ("1. Question: The student was given a special meal at his restaurant that cost $5. His uncle gives him "
            "180 dollars for the meal, and a 20% of that is the meal itself. How much money does the student need "
            "to eat?\nAnswer: The meal was 20% of 180 dollars = 0.2 * 180 = $40. The student needs 20 / 2 = 10 "
            "dollars. He eats 10 * 1.4 = $16. The rest was left over for the dinner.\n#### 4")
    _, rejected = parse_qa_items(text)
    assert rejected == [REASON_UNSUPPORTED]
