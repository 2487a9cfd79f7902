"""Parsing what weak teachers (SmolLM2-135M and friends) actually write."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmaug.filters.parsing import clean_item, extract_label, parse_items

TREC = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
SENTIMENT = ["negative", "positive"]
NLI = ["entailment", "not_entailment"]


# ------------------------------------------------------------------------------------------- parse_items


@pytest.mark.parametrize(
    "output, expected",
    [
        pytest.param(
            "Sure! Here are 3 questions about locations:\n\n1. What is the capital of France?\n\n"
            "2. Where is Mount Everest?\n\n3. Which river flows through Cairo?\n\nI hope these help!",
            ["What is the capital of France?", "Where is Mount Everest?", "Which river flows through Cairo?"],
            id="preamble-numbered-blank-lines-outro",
        ),
        pytest.param(
            "1) How tall is the Eiffel Tower?\n2) Who wrote Hamlet?\n(3) What does NASA stand for?",
            ["How tall is the Eiffel Tower?", "Who wrote Hamlet?", "What does NASA stand for?"],
            id="paren-numbers",
        ),
        pytest.param(
            "- What is a prism?\n* Who was Galileo?\n• Where is Tibet?",
            ["What is a prism?", "Who was Galileo?", "Where is Tibet?"],
            id="mixed-bullets",
        ),
        pytest.param(
            '```json\n["What is the tallest building?", "Where do penguins live?"]\n```',
            ["What is the tallest building?", "Where do penguins live?"],
            id="fenced-json-strings",
        ),
        pytest.param(
            'Here you go:\n```json\n[{"question": "Who invented radio?"}, {"question": "What is DNA?"}]\n```\n'
            "These cover two categories.",
            ["Who invented radio?", "What is DNA?"],
            id="fenced-json-objects-with-outro",
        ),
        pytest.param(
            '[{"text": "What is a comet?"}, {"text": "How far is the Moon?"}, {"text": "Who discov',
            ["What is a comet?", "How far is the Moon?"],
            id="truncated-json-objects",
        ),
        pytest.param('["What is X?", "Who is Y?", "Where is', ["What is X?", "Who is Y?"], id="truncated-json-strings"),
        pytest.param('{"examples": [{"sentence": "A gripping film."}]}', ["A gripping film."], id="json-wrapper-object"),
        pytest.param(
            "Example 1:\nWhat is the boiling point of water?\n\nExample 2:\nWho invented the telephone?",
            ["What is the boiling point of water?", "Who invented the telephone?"],
            id="example-n-headers",
        ),
        pytest.param(
            "Question 1: What is the population of Tokyo?\nQuestion 2: Who painted the Mona Lisa?",
            ["What is the population of Tokyo?", "Who painted the Mona Lisa?"],
            id="question-n-prefix",
        ),
        pytest.param(
            "### Example 1:\n**What is an atom?**\n### Example 2:\n**Who was Gandhi?**",
            ["What is an atom?", "Who was Gandhi?"],
            id="markdown-headings-and-bold",
        ),
        pytest.param(
            '1. Question: "What is the speed of light?"\n2. Text: \'Who discovered penicillin?\'\n3. Utterance: “Where is Peru?”',
            ["What is the speed of light?", "Who discovered penicillin?", "Where is Peru?"],
            id="field-prefixes-and-quotes",
        ),
        pytest.param(
            "1. What is the speed of\nlight in a vacuum?\n2. Who discovered\npenicillin?",
            ["What is the speed of light in a vacuum?", "Who discovered penicillin?"],
            id="wrapped-multi-line-items",
        ),
        pytest.param(
            "What is a cat?\nWho is Obama?\n\nLet me know if you need more!",
            ["What is a cat?", "Who is Obama?"],
            id="plain-lines-with-outro",
        ),
        pytest.param("Sure! Here's a new question: What is the capital of Spain?", ["What is the capital of Spain?"], id="inline-preamble"),
        pytest.param("Sure! What is the capital of Spain?", ["What is the capital of Spain?"], id="interjection"),
        pytest.param(
            "1. What is X? (Label: LOC)\n2. Who is Y?\nCategory: HUM\nThis one asks about a person.",
            ["What is X?", "Who is Y?"],
            id="label-annotations-and-explanation-dropped",
        ),
        pytest.param(
            "1. A gripping, moving film.\n2. Dull and far too long.\n\nThese sentences are positive and negative.",
            ["A gripping, moving film.", "Dull and far too long."],
            id="trailing-explanation-after-blank",
        ),
        pytest.param("1. 3.14 is pi, right?\n2. 10:30 is too early.", ["3.14 is pi, right?", "10:30 is too early."], id="numbers-not-markers"),
        pytest.param("#blessed what a great day", ["#blessed what a great day"], id="hashtag-is-not-a-heading"),
        pytest.param("[1] What is X?\n[2] Who is Y?", ["What is X?", "Who is Y?"], id="bracket-numbers"),
        pytest.param(
            "I took a yoga class: loved it\nI loved it (this is the best film)",
            ["I took a yoga class: loved it", "I loved it (this is the best film)"],
            id="label-words-inside-ordinary-text-kept",
        ),
        pytest.param('"Hello", she said. "Bye," he said.', ['"Hello", she said. "Bye," he said.'], id="inner-quotes-kept"),
        pytest.param(
            "1. Question: Tom has 3 apples. How many?\nAnswer: He has 3.\n#### 3",
            ["Tom has 3 apples. How many?"],
            id="qa-item-keeps-only-the-question",
        ),
        pytest.param("", [], id="empty"),
        pytest.param("Sure! Here are the questions:\n\n", [], id="only-preamble"),
        pytest.param("```\n```", [], id="empty-fence"),
    ],
)
def test_parse_items(output, expected):
    assert parse_items(output) == expected


def test_max_items_keeps_the_first():
    output = "1. What is A?\n2. What is B?\n3. What is C?"
    assert parse_items(output, max_items=2) == ["What is A?", "What is B?"]
    assert parse_items(output, max_items=0) == []


def test_echoed_prompt_lines_are_dropped():
    prompt = "Task: question type\nExample: What is the capital of France?\nWrite 1 new question that also belongs to LOC."
    output = (
        "Task: question type\nExample: What is the capital of France?\n"
        "Write 1 new question that also belongs to LOC.\nWhere is the Nile?"
    )
    assert parse_items(output, prompt=prompt) == ["Where is the Nile?"]
    assert len(parse_items(output)) == 4


def test_clean_item_strips_wrappers_and_collapses_whitespace():
    assert clean_item('  2. Question: "What is\n  an atom?"  ') == "What is an atom?"
    assert clean_item("- **Text:** ‘Great film’ (category: positive)") == "Great film"
    assert clean_item("Example 3: Where is Rome? (Note: this is a location)") == "Where is Rome?"
    assert clean_item("It's great") == "It's great"
    assert clean_item("   ") == ""


# ------------------------------------------------------------------------------------------- extract_label


@pytest.mark.parametrize(
    "text, expected",
    [
        ("LOC", "LOC"),
        ("loc", "LOC"),
        ("  num  ", "NUM"),
        ("**NUM**", "NUM"),
        ("Label: LOC", "LOC"),
        ("label = hum", "HUM"),
        ("The answer is Location.", "LOC"),
        ("location", "LOC"),
        ("Human", "HUM"),
        ("entity", "ENTY"),
        ("abbreviation", "ABBR"),
        ("desc.", "DESC"),
        ("The label is: DESC (description)", "DESC"),
        ("Category: NUM because it asks for a count", "NUM"),
        ("It's a number question", "NUM"),
        ("L", None),
        ("LOC or HUM", None),
        ("foo", None),
        ("", None),
    ],
)
def test_extract_trec_label(text, expected):
    assert extract_label(text, TREC) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("pos", "positive"),
        ("Negative.", "negative"),
        ("The sentiment is positive", "positive"),
        ("This review is negative because the plot is bad", "negative"),
        ("not positive", None),
        ("isn't positive", None),
        ("positive/negative", None),
        ("neutral", None),
    ],
)
def test_extract_sentiment_label(text, expected):
    assert extract_label(text, SENTIMENT) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("not entailment", "not_entailment"),
        ("Entailment", "entailment"),
        ("The answer is not_entailment.", "not_entailment"),
        ("NOT-ENTAILMENT", "not_entailment"),
        ("entailed", None),
    ],
)
def test_extract_label_where_one_label_contains_another(text, expected):
    assert extract_label(text, NLI) == expected


def test_extract_label_with_multi_word_and_case_twin_labels():
    banking = ["card_arrival", "card_linking", "exchange_rate"]
    assert extract_label("Intent: card arrival", banking) == "card_arrival"
    assert extract_label("card", banking) is None
    assert extract_label("pos", ["pos", "POS"]) == "pos"
    assert extract_label("Pos", ["pos", "POS"]) is None
    assert extract_label("anything", []) is None


# ------------------------------------------------------------------------------------------- properties

weak_teacher_text = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(
            ["\n", "\n\n", "1. ", "2) ", "(3) ", "- ", "* ", "• ", "Example 1:", "Question 2:", "Label: ", "Text: ",
             "```json\n", "```", "[", "]", "{", "}", '"', ",", ":", "Sure! Here are", "LOC", "loc", "positive",
             '{"text": "', '", "label": "', "#### ", "The answer is ", "(", ")", "**"]
        ),
    ),
    max_size=25,
).map("".join)
label_lists = st.lists(st.text(max_size=12) | st.sampled_from(TREC + SENTIMENT + NLI), max_size=6)


@settings(max_examples=400, deadline=None)
@given(text=weak_teacher_text | st.text(), labels=label_lists)
def test_extract_label_returns_none_or_a_member(text, labels):
    label = extract_label(text, labels)
    assert label is None or label in labels


@settings(max_examples=400, deadline=None)
@given(text=weak_teacher_text | st.text(), max_items=st.none() | st.integers(0, 5))
def test_parse_items_never_raises_and_returns_clean_strings(text, max_items):
    items = parse_items(text, max_items=max_items)
    assert all(isinstance(item, str) and item and item == item.strip() for item in items)
    if max_items is not None:
        assert len(items) <= max_items


markup_heavy_text = st.text(alphabet=st.sampled_from("ab :.-()[]\"'LabelClss?!#*1\n"), min_size=1, max_size=30)
clean_items = st.lists(
    (st.text(min_size=1, max_size=40) | markup_heavy_text).map(clean_item).filter(lambda item: item and clean_item(item) == item),
    min_size=1,
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(items=clean_items, style=st.sampled_from(["{n}. ", "{n}) ", "({n}) ", "- "]))
def test_numbered_or_bulleted_list_round_trip(items, style):
    rendered = "\n".join(style.format(n=n) + item for n, item in enumerate(items, start=1))
    assert parse_items(rendered) == items


def test_parse_pair_reads_first_and_second_text_lines():
    from llmaug.filters.parsing import parse_pair

    written = 'Sure! Here is a pair:\n1. First text: "The river floods every spring."\n2. Second text: **The river floods.**'
    assert parse_pair(written) == ("The river floods every spring.", "The river floods.")
    assert parse_pair("Premise: A man sleeps.\nHypothesis: A man is awake.") == ("A man sleeps.", "A man is awake.")
    assert parse_pair("First text: only one text") is None
