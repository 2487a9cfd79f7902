"""MSP's prompt texts: the instruction soft prompt's initial wording, the attribute texts and the hard prompt."""

from __future__ import annotations

import pytest

from llmaug.prompts.msp import CONTEXT, attribute_text, instruction_text


@pytest.mark.parametrize("exemplars, count", [(0, "one"), (2, "three"), (9, "ten"), (10, "11"), (14, "15")])
def test_instruction_asks_for_one_more_text_than_the_exemplars_shown(exemplars, count):
    assert instruction_text("utterance", exemplars) == f"Show me {count} distinct utterances that all express the "


def test_attribute_text_is_the_name_with_its_description_when_there_is_one():
    assert attribute_text("LOC", "asks about a location") == "LOC: asks about a location"
    assert attribute_text("LOC", None) == attribute_text("LOC", "") == "LOC"


def context(metadata: bool) -> str:
    return CONTEXT.render(metadata=metadata, task="question classification",
                          attributes=[{"name": "LOC", "description": "asks about a location"},
                                      {"name": "NUM", "description": "asks for a number"}],
                          exemplars=["Where is Lima ?", "How far is Lima from Quito ?"])[-1].content


def test_context_lists_task_attributes_and_numbered_exemplars_then_leaves_the_next_number_open():
    assert context(metadata=True) == (
        "Task: question classification.\nLOC: asks about a location.\nNUM: asks for a number.\n"
        "1) Where is Lima ?\n2) How far is Lima from Quito ?\n3)"
    )


def test_context_without_metadata_keeps_only_the_numbered_exemplars():
    assert context(metadata=False) == "1) Where is Lima ?\n2) How far is Lima from Quito ?\n3)"
