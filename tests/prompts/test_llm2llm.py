"""LLM2LLM prompts the method tests do not reach: the sentence-pair template and the QA template's fixed wording,
which the QA copy filter (`QA_PROMPT_PHRASES`) must keep matching."""

from __future__ import annotations

import pytest

from llmaug.prompts.llm2llm import PAIR, QA, QA_PROMPT_PHRASES


def pair_prompt(**values) -> str:
    settings = dict(task="natural language inference", text="A man plays a guitar.", text_pair="A man is making music.",
                    label="entailment", description=None, wrong_prediction=None, count=1) | values
    [message] = PAIR.render(**settings)
    return message.content


def test_pair_prompt_shows_both_texts_and_the_relation():
    prompt = pair_prompt()
    assert "First text: A man plays a guitar.\nSecond text: A man is making music.\n" in prompt
    assert 'The relation between the two texts is "entailment".\n' in prompt
    assert prompt.endswith('whose relation is also "entailment", as two lines: "First text: ..." and "Second text: ...".')


@pytest.mark.parametrize("wrong", [None, "contradiction"])
def test_pair_prompt_shows_the_wrong_answer_only_when_given(wrong):
    prompt = pair_prompt(wrong_prediction=wrong)
    assert ('A student model got it wrong: it answered "contradiction".' in prompt) is (wrong is not None)
    assert "\n\n" not in prompt  # the optional line leaves no blank line behind


def test_pair_prompt_adds_the_label_description_in_brackets():
    assert 'is "entailment" (the second text follows from the first).' in pair_prompt(
        description="the second text follows from the first")


def qa_prompt(**values) -> str:
    settings = dict(text="Tom has 3 apples and buys 4 more. How many apples does he have?",
                    answer="3 + 4 = 7\n#### 7", wrong_prediction="3 + 4 = 8\n#### 8", count=1) | values
    return QA.render(**settings)[-1].content


def test_every_phrase_the_copy_filter_looks_for_is_in_the_qa_prompt():
    prompt = qa_prompt().lower()
    missing = [phrase for phrase in QA_PROMPT_PHRASES if phrase not in prompt]
    assert missing == [], "the QA wording changed: update QA_PROMPT_PHRASES, or copies of the prompt get through"


def test_qa_prompt_without_a_wrong_answer_drops_that_line_and_asks_in_the_plural_for_several():
    prompt = qa_prompt(wrong_prediction=None, count=3)
    assert "The student answered" not in prompt
    assert prompt.endswith("Please generate 3 similar questions, along with the correct calculations and rationale.")
    assert qa_prompt(count=1).endswith("Please generate 1 similar question, along with the correct calculations and rationale.")
