"""Turn what a (possibly tiny) teacher wrote into clean items and labels.

Weak teachers echo the prompt, open with "Sure! Here are...", number or bullet their lists, wrap JSON in code
fences (and cut it off mid-way), prefix items with "Question:" or "Example 1:", quote them, and append a label or
an explanation. These pure functions undo that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby

# ------------------------------------------------------------------------------------------- patterns

# An item marker at the start of a line: "1." "1)" "1:" "(1)" "[1]", bullets, "Example 1:", "Question 2:", "Q3.",
# optionally after markdown heading marks. "(?!\d)" keeps "3.14" and "10:30" from counting as item numbers.
_MARKER = re.compile(
    r"""^\s*(?:\#{1,6}\s*)?(?:
        \(\d{1,3}\)\s*
      | \[\d{1,3}\]\s*
      | \d{1,3}[.):](?!\d)\s*
      | [-*•◦‣·–—]\s+
      | (?:example|question|item|sentence|utterance|text|query|review|sample|output|q)
        \s*\#?\s*\d{1,3}\s*(?:[:.)\-]\s*|$)
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# A field name the teacher put before the item itself: "Question: ...", "Text: ...".
_FIELD_PREFIX = re.compile(
    r"^(?:new\s+|generated\s+)?(?:question|text|utterance|sentence|example|input|query|review|statement|tweet|sample|output|q)\s*[:：]\s*",
    re.IGNORECASE,
)
_LABEL_WORDS = r"(?:label|category|class|intent|sentiment|answer)"
# A line that only gives the label: "Label: LOC", "Answer: positive", "Category = HUM".
_LABEL_LINE = re.compile(rf"^\s*[(\[]?\s*{_LABEL_WORDS}\s*[:=]", re.IGNORECASE)
# A label given inside an item: "... Label: LOC", "... (category: HUM)", "The answer is NUM".
_LABEL_CUE = re.compile(
    rf"(?:^|(?<=[\s(\[|,;]))(?:the\s+{_LABEL_WORDS}\s+is\b|{_LABEL_WORDS}\s*[:=])\s*", re.IGNORECASE
)
# A short label annotation closing an item, which clean_item drops: "(label: X)", or "Label: X" after the end of
# a sentence, a dash or bar, or capitalised. "I took a yoga class: loved it" keeps its words; "answer" is left
# alone everywhere, as it can be content.
_TRAILING_LABEL = re.compile(
    r"""(?:
        \s*[(\[]\s*(?i:label|category|class|intent|sentiment)\s*[:=][^()\[\]]{1,40}[)\]]
      | (?:(?<=[.?!"'”’)])|\s+[-|–—]|\s+(?=[A-Z]))\s*(?i:label|category|class|intent|sentiment)
        \s*[:=]\s*[^\s?()\[\]]+(?:\s+[^\s?()\[\]]+){0,3}
    )\s*$""",
    re.VERBOSE,
)
_TRAILING_NOTE = re.compile(r"\s*[(\[]\s*(?:note|explanation)\b[^()\[\]]*[)\]]\s*$", re.IGNORECASE)
# Chat filler around the items; only ever applied to lines that carry no item marker.
_CHATTER = re.compile(
    r"""^(?:
        (?:sure|certainly|of\s+course|absolutely|okay|ok|alright|great)\b[\s,.!:]*(?:$|here|below|the\s+following)
      | (?:here|below)\s*(?:is|are|'s|’s)\b
      | (?:the\s+following|as\s+requested)\b
      | (?:i\s+hope|hope\s+(?:this|these|that)|let\s+me\s+know|feel\s+free|note\s*:|please\s+note)\b
      | these\s+(?:questions|examples|sentences|utterances|reviews|items)\b
      | (?:explanation|reason|reasoning|rationale)\s*:
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# "Sure!" or "Certainly," opening the item itself; plain "Okay," is left alone: it can start a real sentence.
_INTERJECTION = re.compile(r"^(?:(?:sure|certainly|of\s+course)[!.,]|(?:absolutely|okay|ok|alright|great)!)\s*", re.IGNORECASE)
_HEADING = re.compile(r"^\#{1,6}\s")  # a markdown heading; "#blessed" is a hashtag, not a heading
_FENCE_LINE = re.compile(r"^\s*```")
_FENCED_BLOCK = re.compile(r"^\s*```[^\n]*\n(.*?)(?:^\s*```|\Z)", re.MULTILINE | re.DOTALL)
_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "„": "“", "`": "`"}
_TERMINAL = tuple('.?!"\'”’)…')

TEXT_KEYS = ("text", "question", "sentence", "utterance", "example", "input", "query", "review", "content", "statement")
LABEL_KEYS = ("label", "category", "class", "intent", "sentiment", "answer")
CONTAINER_KEYS = ("examples", "items", "questions", "sentences", "data", "results", "outputs", "texts", "utterances")


# ------------------------------------------------------------------------------------------- items


def clean_item(text: str) -> str:
    """One item without its list marker, field name ("Question:"), wrapping quotes, bold marks, trailing label
    annotation or parenthesised note; whitespace (newlines included) collapsed to single spaces."""
    text = " ".join(text.replace("**", "").split())
    previous = None
    while text != previous:
        previous = text
        text = _MARKER.sub("", text, count=1)
        text = _FIELD_PREFIX.sub("", text, count=1)
        text = _TRAILING_LABEL.sub("", text, count=1)
        text = _TRAILING_NOTE.sub("", text, count=1)
        text = _strip_wrapping_quotes(text.strip())
    return text


def _strip_wrapping_quotes(text: str) -> str:
    if len(text) >= 2 and text[0] in _QUOTE_PAIRS and text[-1] == _QUOTE_PAIRS[text[0]]:
        inner = text[1:-1]
        if text[0] not in inner and text[-1] not in inner:  # '"a" and "b"' is two quotes, not one wrapped item
            return inner.strip()
    return text


def parse_items(text: str, max_items: int | None = None, *, prompt: str | None = None) -> list[str]:
    """The items of a teacher's answer, cleaned: a JSON list, a numbered or bulleted list, or one item a line.

    With `prompt`, items that repeat a line of the prompt (instructions or the seed examples) are dropped.
    """
    echo = _EchoCheck(prompt)
    items = []
    for block in _blocks(text):
        item = clean_item(block.item_text())
        if item and not echo(item):
            items.append(item)
    return items if max_items is None else items[: max(0, max_items)]


# ------------------------------------------------------------------------------------------- labels


def extract_label(text: str, labels: list[str]) -> str | None:
    """The one label of `labels` that `text` names, or None when it names none or several.

    Tries, in order, stopping at the first step that finds anything: the exact label; the label after a cue
    ("Label: X", "The answer is X."), then the whole text, compared ignoring case, spaces and punctuation, then
    as a prefix ("pos" → "positive") or abbreviation ("Location" → "LOC"); then a label named anywhere in the
    text as a whole word ("not_entailment" hides the "entailment" inside it; "not positive" names nothing);
    last, in a text of a few words, a word that spells out a label ("a number question" → "NUM").
    """
    matches = _label_matches(text, labels)
    return matches[0] if len(matches) == 1 else None


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


def _label_matches(text: str, labels: list[str]) -> list[str]:
    """The labels the first conclusive step matches (empty when none does); more than one means ambiguous."""
    labels = _distinct_labels(labels)
    if not text.strip() or not labels:
        return []
    return _direct_label_matches(text, labels) or _labels_named_in(text, labels) or _labels_abbreviated_in(text, labels)


def _distinct_labels(labels: list[str]) -> list[str]:
    return list(dict.fromkeys(label for label in labels if isinstance(label, str)))


def _direct_label_matches(text: str, labels: list[str]) -> list[str]:
    """Labels that the text (or what follows a cue in it) is, rather than merely mentions."""
    if text.strip() in labels:
        return [text.strip()]
    for fragment in _label_fragments(text):
        for rule in (_same_label, _label_prefix, _label_abbreviation):
            found = [label for label in labels if rule(fragment, label)]
            if found:
                return found
    return []


def _label_fragments(text: str, max_cues: int = 10, max_chars: int = 200) -> Iterator[str]:
    """Where a label is likely to be: after the last few cues (last first), then the whole text."""
    cues = list(_LABEL_CUE.finditer(text))[-max_cues:]
    for cue in reversed(cues):
        line_end = text.find("\n", cue.end())
        end = min(cue.end() + max_chars, len(text) if line_end == -1 else line_end)
        yield _trim_fragment(text[cue.end() : end])
    yield _trim_fragment(text)


def _trim_fragment(fragment: str) -> str:
    fragment = re.split(r"[.;!?,()\[\]\n]|\s+(?:because|since|as)\b", fragment.strip(), maxsplit=1)[0]
    return fragment.strip(" \t\"'“”‘’`*:-")


def _same_label(fragment: str, label: str) -> bool:
    return bool(_norm(label)) and _norm(fragment) == _norm(label)


def _label_prefix(fragment: str, label: str) -> bool:
    """'pos' for 'positive': a start of the label at least three characters long."""
    short, full = _norm(fragment), _norm(label)
    return len(short) >= 3 and full.startswith(short) and short != full


def _label_abbreviation(fragment: str, label: str) -> bool:
    """'Location' for 'LOC', 'entity' for 'ENTY': the label's letters in order inside one word, same first letter."""
    word, short = _norm(fragment), _norm(label)
    if not short or " " in word or " " in short or len(short) >= len(word) or word[0] != short[0]:
        return False
    letters = iter(word)
    return all(letter in letters for letter in short)


_NEGATIONS = {"not", "no", "non", "never", "neither", "nor", "t"}  # "t": what is left of "isn't" after _norm


def _labels_named_in(text: str, labels: list[str]) -> list[str]:
    normalized = _norm(text)
    spans: list[tuple[int, int, str]] = []
    for label in labels:
        name = _norm(label)
        if not name:
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", normalized):
            before = normalized[max(0, match.start() - 12) : match.start()].split()  # negations are short words
            if not before or before[-1] not in _NEGATIONS:
                spans.append((match.start(), match.end(), label))
    return list(dict.fromkeys(label for start, end, label in _outermost(spans)))


def _outermost(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """The spans not inside a different, larger span; equal spans (twin labels) all stay."""
    kept = []
    furthest_end = -1  # over the spans that start earlier, or at the same place and end later
    for (start, end), group in groupby(sorted(spans, key=lambda span: (span[0], -span[1])), key=lambda span: span[:2]):
        if end > furthest_end:
            kept.extend(group)
        furthest_end = max(furthest_end, end)
    return kept


def _labels_abbreviated_in(text: str, labels: list[str], max_words: int = 6) -> list[str]:
    """'a number question' → NUM: a word of a short text that spells out a label. Long texts are left alone:
    some word of a sentence would match something by chance."""
    words = _norm(text).split()
    if len(words) > max_words:
        return []
    return [label for label in labels if any(_label_abbreviation(word, label) for word in words)]


# ------------------------------------------------------------------------------------------- pairs

_PAIR_FIRST = ("first text", "premise", "text 1", "sentence 1")
_PAIR_SECOND = ("second text", "hypothesis", "text 2", "sentence 2")
_PAIR_KEY_MARKER = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*•])\s*")  # "1. Premise:", "- Hypothesis:"


def parse_pair(text: str) -> tuple[str, str] | None:
    """The (first, second) texts of a sentence pair written as "First text: ..." and "Second text: ..." lines
    ("Premise:"/"Hypothesis:" too), cleaned; None when either is missing."""
    first = second = None
    for line in text.splitlines():
        head, _, value = line.replace("**", "").partition(":")
        key = _PAIR_KEY_MARKER.sub("", head).strip().lower()
        value = clean_item(value)
        if key in _PAIR_FIRST and value and first is None:
            first = value
        elif key in _PAIR_SECOND and value and second is None:
            second = value
    return (first, second) if first and second else None


# ------------------------------------------------------------------------------------------- blocks


@dataclass
class _Block:
    """The lines of one item as the teacher wrote them, or one JSON element."""

    lines: list[str] = field(default_factory=list)
    marked: bool = False  # began with an item marker
    after_blank: bool = False  # a blank line came before it
    label: str | None = None  # from a JSON object's label field
    source: str | None = None  # the JSON element, for the rejection log

    # label_line() and has_text() are kept up to date by add(), so that growing a block line by line stays linear.
    def __post_init__(self) -> None:
        self._label_line: str | None = None
        self._text_seen = False
        lines, self.lines = self.lines, []
        for line in lines:
            self.add(line)

    def add(self, line: str) -> None:
        self.lines.append(line)
        if _LABEL_LINE.match(line):
            self._label_line = self._label_line if self._label_line is not None else line
        elif not self._text_seen:
            self._text_seen = bool(clean_item(line))

    def has_text(self) -> bool:
        return self._text_seen

    def raw(self) -> str:
        return "\n".join(self.lines).strip()

    def label_line(self) -> str | None:
        return self._label_line

    def item_text(self) -> str:
        """The item without its "Label:"/"Answer:" line: the lines before that line, or after it when the
        label came first. Lines after a label line are its explanation (or a QA answer's working)."""
        lines = [line for line in self.lines if line.strip()]
        if not lines:
            return ""
        if _LABEL_LINE.match(lines[0]):
            return "\n".join(line for line in lines[1:] if not _LABEL_LINE.match(line))
        before_label = []
        for line in lines:
            if _LABEL_LINE.match(line):
                break
            before_label.append(line)
        return "\n".join(before_label)


def _blocks(text: str) -> list[_Block]:
    json_blocks = _json_blocks(text)
    return json_blocks if json_blocks else _line_blocks(text)


def _line_blocks(text: str) -> list[_Block]:
    lines = [line.replace("**", "").rstrip() for line in text.splitlines() if not _FENCE_LINE.match(line)]
    if any(_MARKER.match(line) for line in lines):
        return _marked_blocks(lines)
    return _unmarked_blocks(lines)


def _unmarked_blocks(lines: list[str]) -> list[_Block]:
    """One item a line; a "Label: X" line joins the item it belongs to (written before or after it)."""
    blocks: list[_Block] = []
    for line in lines:
        if not line.strip():
            continue
        current = blocks[-1] if blocks else None
        if _LABEL_LINE.match(line):
            if current is not None and current.label_line() is None:
                current.add(line)
            else:
                blocks.append(_Block([line]))
        elif current is not None and not current.has_text() and current.label_line() is not None:
            current.add(line)  # the text of a label-first record
        elif content := _without_chatter(line):
            blocks.append(_Block([content]))
    return [block for block in blocks if block.has_text()]


def _marked_blocks(lines: list[str]) -> list[_Block]:
    """Items start at markers. An unmarked line continues the item while the item is empty, reads unfinished or
    has had its label line; otherwise it is an item of its own, unless it is chatter or follows the list after a
    blank line."""
    blocks: list[_Block] = []
    blank_before = False
    for line in lines:
        if not line.strip():
            blank_before = True
            continue
        current = blocks[-1] if blocks else None
        if _MARKER.match(line):
            blocks.append(_Block([line], marked=True, after_blank=blank_before))
        elif current is not None and _continues(current, line, blank_before):
            current.add(line)
        elif content := _without_chatter(line):
            blocks.append(_Block([content], after_blank=blank_before))
        blank_before = False
    marked = [index for index, block in enumerate(blocks) if block.marked]
    kept = blocks[marked[0] : marked[-1] + 1]  # what comes before the first marker is a preamble
    for block in blocks[marked[-1] + 1 :]:  # after the list: keep only what runs on without a break
        if block.after_blank:
            break
        kept.append(block)
    return [block for block in kept if block.has_text()]


def _continues(block: _Block, line: str, blank_before: bool) -> bool:
    if _LABEL_LINE.match(line):
        return block.label_line() is None
    if not block.has_text():
        return True
    if blank_before:
        return False
    return block.label_line() is not None or not clean_item(block.lines[-1]).endswith(_TERMINAL)


def _without_chatter(line: str) -> str:
    """The line, less a chat preamble ("Here is a new question: ...", "Sure! ..."); empty when it is all chatter
    (a preamble, a closing remark, a heading)."""
    stripped = _INTERJECTION.sub("", line.strip())
    if _CHATTER.match(stripped) or _HEADING.match(stripped):
        before, colon, after = stripped.partition(": ")
        return after.strip() if colon and not _CHATTER.match(after) else ""
    return "" if stripped.endswith(":") else stripped


# ------------------------------------------------------------------------------------------- JSON


def _json_blocks(text: str) -> list[_Block]:
    """Blocks from JSON the teacher wrote (fenced or not, complete or cut off); [] when there is none."""
    for candidate in _json_candidates(text):
        blocks = [block for element in _json_elements(candidate) if (block := _block_from_json(element))]
        if blocks:
            return blocks
    return []


def _json_candidates(text: str) -> Iterator[str]:
    for fenced in _FENCED_BLOCK.finditer(text):
        body = fenced.group(1).strip()
        if body.startswith(("[", "{")):
            yield body
    if start := re.search(r"^\s*[\[{]", text, re.MULTILINE):
        yield text[start.start() :].strip()


def _json_elements(candidate: str) -> list:
    """The items of a JSON list or of the objects written one after another; from a cut-off list, its complete items."""
    values = _json_values(candidate, 0)
    if not values:
        opening = candidate.find("[")
        values = _json_values(candidate, opening + 1) if opening >= 0 else []
    elements = []
    for value in values:
        if isinstance(value, dict) and not _has_text_key(value):
            value = next((value[key] for key in CONTAINER_KEYS if isinstance(value.get(key), list)), value)
        elements.extend(value if isinstance(value, list) else [value])
    if not elements:
        elements = _salvage_text_fields(candidate)
    return elements


def _json_values(text: str, position: int) -> list:
    decoder = json.JSONDecoder()
    values = []
    while True:
        while position < len(text) and (text[position].isspace() or text[position] == ","):
            position += 1
        if position >= len(text):
            return values
        try:
            value, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            return values
        values.append(value)


def _salvage_text_fields(candidate: str) -> list[dict]:
    """'"text": "..."' pairs out of JSON too broken to decode, e.g. cut off inside its first object."""
    keys = "|".join(TEXT_KEYS)
    elements = []
    for match in re.finditer(rf'"(?:{keys})"\s*:\s*("(?:[^"\\\n]|\\.)*")', candidate):
        try:
            elements.append({"text": json.loads(match.group(1))})
        except ValueError:
            continue
    return elements


def _has_text_key(value: dict) -> bool:
    return any(isinstance(value.get(key), str) for key in TEXT_KEYS)


def _block_from_json(element) -> _Block | None:
    """A block for a string or an object; an object with no text gives an empty block, rejected as 'empty'."""
    if isinstance(element, str):
        return _Block(element.splitlines()) if element.strip() else None
    if not isinstance(element, dict):
        return None
    source = json.dumps(element, ensure_ascii=False)
    text = next((element[key] for key in TEXT_KEYS if isinstance(element.get(key), str)), None)
    if text is None:
        strings = [value for key, value in element.items() if isinstance(value, str) and key not in LABEL_KEYS]
        text = strings[0] if len(strings) == 1 else ""
    label = next((element[key] for key in LABEL_KEYS if _is_label_value(element.get(key))), None)
    return _Block(text.splitlines(), label=None if label is None else str(label), source=source)


def _is_label_value(value) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


# ------------------------------------------------------------------------------------------- echo


class _EchoCheck:
    """Is an item a repeat of a line of the prompt (its instructions or the seed examples in it)?"""

    def __init__(self, prompt: str | None):
        self.prompt_lines = {_norm(clean_item(line)) for line in (prompt or "").splitlines()} - {""}

    def __call__(self, item: str) -> bool:
        return bool(self.prompt_lines) and _norm(item) in self.prompt_lines
