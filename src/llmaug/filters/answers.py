"""Answers of math word problems (GSM8K's convention: a worked solution that ends in `#### <number>`).

`extract_answer` finds the final answer of a solution, `answers_match` compares two solutions' answers as
numbers ("$1,000" equals "1000.0"), and `parse_qa_items` turns a teacher's "1. Question: … Answer: … #### n"
output into (question, solution) pairs, rejecting with a reason what cannot be used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from llmaug.filters.parsing import clean_item

FINAL_MARK = "####"

REASON_EMPTY = "empty"
REASON_NO_QUESTION = "no question"
REASON_NO_ANSWER = "no answer"
REASON_NO_FINAL = "no final answer (#### line)"
REASON_NOT_NUMERIC = "answer not numeric"
REASON_CUT_OFF = "cut off at the token limit"
REASON_UNSUPPORTED = "final answer not in the solution"

# A number as people write it: "-3", "1,234.5" (commas only as thousands separators), ".5", "$40", "12%".
_NUMBER = re.compile(r"(?<![\w.])-?[$€£]?\s?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?![\d])")
_WHOLE_NUMBER = re.compile(
    r"^\s*-?[$€£]?\s?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)\s*%?\s*\.?\s*$"  # the number, then "%" or "."
)
_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations: "48/2 = <<48/2=24>>24"
# Where a teacher's item starts, and where its solution starts: "1. Question:", "**Question 2:**", "Answer:".
_QUESTION_START = re.compile(
    r"^[ \t]*(?:\#{1,6}\s*)?(?:\d{1,3}[.):]\s*)?(?:\*\*)?question\s*\d{0,3}\s*(?:\*\*)?\s*[:：]", re.I | re.M
)
_SOLUTION_START = re.compile(r"(?:^|(?<=\s))(?:\*\*)?(?:answer|solution)\s*(?:\*\*)?\s*[:：]", re.I)


def to_number(text: str | None) -> Fraction | None:
    """The exact value of a text that is one number ("1,000", "$5", "5.0", "-0.5", "12%", "7."), else None."""
    if text is None or not _WHOLE_NUMBER.match(text):
        return None
    digits = re.sub(r"[\s$€£,%]", "", text).rstrip(".")
    try:
        return Fraction(digits)
    except (ValueError, ZeroDivisionError):
        return None


def _numbers_in(text: str) -> list[str]:
    return [m.group(0).strip() for m in _NUMBER.finditer(text) if any(c.isdigit() for c in m.group(0))]


def extract_answer(text: str | None) -> str | None:
    """The final answer of a solution: what follows the first `####` (its first number, else the rest of that
    line), or without a `####` the last number in the text; None when there is none."""
    if not text:
        return None
    head, mark, tail = text.partition(FINAL_MARK)
    if mark:
        line = tail.strip().split("\n", 1)[0].strip() if tail.strip() else ""
        numbers = _numbers_in(line)
        return numbers[0] if numbers else (line or None)
    numbers = _numbers_in(head)
    return numbers[-1] if numbers else None


def answers_match(first: str | None, second: str | None) -> bool:
    """Whether two solutions (or bare answers) give the same final answer: numerically when both are numbers,
    else as case- and space-insensitive text without commas. Two missing answers do not match."""
    a, b = extract_answer(first), extract_answer(second)
    if a is None or b is None:
        return False
    number_a, number_b = to_number(a), to_number(b)
    if number_a is not None or number_b is not None:
        return number_a == number_b
    return _plain(a) == _plain(b)


def _plain(text: str) -> str:
    return " ".join(text.replace(",", "").casefold().split())


def strip_calculator_annotations(solution: str) -> str:
    """GSM8K's solution without its `<<48/2=24>>` calculator annotations, which no prompt asks a model to write."""
    return _CALCULATOR.sub("", solution)


def final_number_text(number: Fraction) -> str:
    """A number the way GSM8K writes final answers: "72", "0.5", "-3"."""
    if number.denominator == 1:
        return str(number.numerator)
    # Numbers come from decimal text, so the denominator divides a power of ten and the quotient is exact.
    return format((Decimal(number.numerator) / Decimal(number.denominator)).normalize(), "f")


@dataclass(frozen=True)
class QAItem:
    question: str
    answer: str  # the worked solution, ending in "#### <number>"


def parse_qa_items(text: str, *, cut_off: bool = False) -> tuple[list[QAItem], list[str]]:
    """(question, solution) items of a teacher's "1. Question: … / Answer: … / #### n" output, and the reason
    each unusable item was dropped.

    An item needs a question, a solution and a `####` line whose answer is a plain number (commas, a currency
    sign, a percent sign and a trailing ".0" are tolerated; units and words are not) that the solution's steps
    arrive at: 7,456 of GSM8K's 7,473 training solutions state their final number in the steps, while a weak
    teacher often puts an unrelated number (or the student's wrong one) after "####". With `cut_off` (the teacher
    hit its token limit) the last item is rejected, as its final number may be cut short. The solution comes
    back normalised to "<steps>\\n#### <number>".
    """
    if not text.strip():
        return [], [REASON_EMPTY]
    blocks = _item_blocks(text)
    items: list[QAItem] = []
    rejected: list[str] = []
    for position, block in enumerate(blocks):
        if cut_off and position == len(blocks) - 1:
            rejected.append(REASON_CUT_OFF)
            continue
        parsed = _qa_item(block)
        if isinstance(parsed, QAItem):
            items.append(parsed)
        else:
            rejected.append(parsed)
    return items, rejected


def _item_blocks(text: str) -> list[str]:
    """The text split at each "Question:" marker; a text without one is a single item."""
    starts = [m.start() for m in _QUESTION_START.finditer(text)]
    if not starts:
        return [text.strip()]
    bounds = starts + [len(text)]
    return [text[bounds[i] : bounds[i + 1]].strip() for i in range(len(starts))]


def _qa_item(block: str) -> QAItem | str:
    solution_start = _SOLUTION_START.search(block)
    if solution_start is None:
        return REASON_NO_ANSWER if clean_item(block) else REASON_EMPTY
    question = clean_item(block[: solution_start.start()])
    if not question:
        return REASON_NO_QUESTION
    steps, mark, tail = block[solution_start.end() :].partition(FINAL_MARK)
    if not mark:
        return REASON_NO_FINAL
    final_line = tail.strip().split("\n", 1)[0].replace("**", "").strip()
    number = to_number(final_line)
    if number is None:
        return REASON_NOT_NUMERIC
    steps = "\n".join(line.strip() for line in steps.strip().splitlines() if line.strip())
    if not steps:
        return REASON_NO_ANSWER
    if number not in {to_number(n) for n in _numbers_in(strip_calculator_annotations(steps))}:
        return REASON_UNSUPPORTED
    return QAItem(question, f"{steps}\n{FINAL_MARK} {final_number_text(number)}")
