"""The one place where a teacher's answer becomes candidate examples with provenance, or a rejection with its reason.

A method describes each request as an `Ask`: the request, the label its examples get, the examples it was made
from (its parents), its prompt's `name@version`, and how to read the answer (a `Reader`). `candidates` then turns
answers into `Example`s carrying full provenance, in the spirit of distilabel's per-row metadata; the shared
filters decide which of them join the data. Answers that carry no output (the budget skipped the request, or it
failed) make no candidate and no rejection: the runner counts them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llmaug.data.example import Example, Provenance
from llmaug.filters.answers import parse_qa_items
from llmaug.filters.parsing import parse_items, parse_pair
from llmaug.filters.quality import Rejected, rejection
from llmaug.teachers.base import TeacherRequest, TeacherResponse
from llmaug.teachers.structured import json_items

NO_OUTPUT = ("budget", "error")  # finish reasons of responses that carry no teacher output

Fields = dict[str, str]  # "text", and "text_pair" or "answer" where the task has them
Reader = Callable[[TeacherResponse], "list[Fields] | str"]  # the fields of each example, or why there is none


def read_first_item(response: TeacherResponse) -> list[Fields] | str:
    """The first item of a list-like answer (numbered, bulleted, JSON, one per line), cleaned."""
    items = parse_items(response.text, max_items=1)
    return [{"text": items[0]}] if items else "unparseable"


def read_items(limit: int) -> Reader:
    """Up to `limit` distinct items of a list-like answer."""

    def read(response: TeacherResponse) -> list[Fields] | str:
        items = list(dict.fromkeys(parse_items(response.text, max_items=limit)))
        return [{"text": item} for item in items] or "unparseable"

    return read


def read_json_items(limit: int) -> Reader:
    """Up to `limit` distinct examples of a JSON answer (`{"examples": [...]}` or a bare array; each a string, or
    an object with text / text_pair / answer); an answer that is not JSON is read as a list (`read_items`)."""

    def read(response: TeacherResponse) -> list[Fields] | str:
        items = json_items(response.text)
        if items is None:
            return read_items(limit)(response)
        fields = [_item_fields(item) for item in items]
        distinct = {f["text"] + "\x00" + f.get("text_pair", ""): f for f in fields if f is not None and f["text"]}
        return list(distinct.values())[:limit] or "no usable item in the JSON answer"

    return read


def _item_fields(item: object) -> Fields | None:
    if isinstance(item, str):
        return {"text": item.strip()}
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return {key: str(item[key]).strip() for key in ("text", "text_pair", "answer") if item.get(key) is not None}
    return None


def read_pair(response: TeacherResponse) -> list[Fields] | str:
    """A sentence pair written as "First text: ..." and "Second text: ..." lines."""
    pair = parse_pair(response.text)
    if pair is None:
        return "unparseable pair (need 'First text:' and 'Second text:' lines)"
    return [{"text": pair[0], "text_pair": pair[1]}]


def read_qa(response: TeacherResponse) -> list[Fields] | str:
    """The first problem and its worked solution ("Question: ... Answer: ... #### n"), or why there is none."""
    items, reasons = parse_qa_items(response.text, cut_off=response.finish_reason == "length")
    if not items:
        return reasons[0] if reasons else "unparseable"
    return [{"text": items[0].question, "answer": items[0].answer}]


@dataclass(frozen=True)
class Ask:
    """One teacher request meant to yield examples, and what those examples are."""

    request: TeacherRequest
    label: str | None
    parents: tuple[Example, ...] = ()  # the examples the prompt shows and the new ones derive from
    prompt: str = ""  # the template's name@version
    read: Reader = read_first_item
    keep_first: str | None = None  # a real first text: the answer is the second text of a pair on it
    instructions: str | None = None  # what the echo check compares with (default: the prompt less its quotes)
    count: int = 1  # examples the request asks for (several: each gets its own item_index)

    def echo_reference(self) -> str:
        """The prompt without the texts it quotes: an output that repeats this parrots the instructions."""
        if self.instructions is not None:
            return self.instructions
        prompt = self.request.messages[-1].content
        for text in [self.keep_first, *(t for parent in self.parents for t in (parent.text, parent.text_pair))]:
            if text:
                prompt = prompt.replace(text, " ")
        return prompt


def candidates(
    asks: list[Ask], responses: list[TeacherResponse], *, method: str, round: int, teacher: str
) -> tuple[list[Example], list[Rejected], dict[str, str]]:
    """Candidates from every answer (not yet filtered), the rejections of unreadable answers, and for each
    candidate id the instructions its echo check compares with."""
    made: list[Example] = []
    rejected: list[Rejected] = []
    instructions: dict[str, str] = {}
    for ask, response in zip(asks, responses, strict=True):
        if response.finish_reason in NO_OUTPUT:
            continue
        examples, reason = _examples(ask, response, method, round, teacher)
        if reason is not None:
            rejected.append(reason)
        for example in examples:
            made.append(example)
            instructions[example.id] = ask.echo_reference()
    return made, rejected, instructions


def _examples(ask: Ask, response: TeacherResponse, method: str, round: int, teacher: str) -> tuple[list[Example], Rejected | None]:
    provenance = Provenance(
        origin="synthetic", method=method, round=round, parent_ids=[parent.id for parent in ask.parents],
        teacher=teacher, prompt=ask.prompt, sample_index=ask.request.sample_index, raw_output=response.text,
    )
    read = ask.read(response)
    if isinstance(read, str):
        return [], rejection(Example.create("", ask.label, provenance=provenance), read)
    examples = []
    for index, fields in enumerate(read):
        text, pair = fields["text"], fields.get("text_pair")
        if ask.keep_first is not None and pair is None:
            text, pair = ask.keep_first, text
        item = provenance.model_copy(update={"item_index": index}) if len(read) > 1 else provenance
        examples.append(Example.create(text, ask.label, text_pair=pair, answer=fields.get("answer"), provenance=item))
    return examples, None
