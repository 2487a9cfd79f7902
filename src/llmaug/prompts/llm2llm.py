"""LLM2LLM prompts (Lee et al., 2024). The official template forgets the student's wrong answer; ours has a
slot for it, on by default (`show_wrong_prediction`)."""

from llmaug.prompts.base import PromptTemplate

# One plain user message: tiny teachers copy structured headers ("Task:", "Category:") back instead of writing.
CLASSIFICATION = PromptTemplate(
    name="llm2llm-classification",
    version=2,
    user="""Here is a {{ unit }} that {% if description %}{{ description }}{% else %}belongs to the category "{{ label }}"{% endif %}: "{{ text }}"
{% if wrong_prediction is not none %}A student model got it wrong: it labelled it "{{ wrong_prediction }}" instead of "{{ label }}".
{% endif %}Write {{ count }} new, different {{ unit }} that also {% if description %}{{ description }}{% else %}belongs to the category "{{ label }}"{% endif %}. Reply with only the {{ unit }}.""",
)

# `per_request` > 1: several new texts in one answer, as the JSON object the request's schema describes.
CLASSIFICATION_MANY = PromptTemplate(
    name="llm2llm-classification-many",
    version=1,
    user="""Here is a {{ unit }} that {% if description %}{{ description }}{% else %}belongs to the category "{{ label }}"{% endif %}: "{{ text }}"
{% if wrong_prediction is not none %}A student model got it wrong: it labelled it "{{ wrong_prediction }}" instead of "{{ label }}".
{% endif %}Write {{ count }} new {{ unit }}s, each different from it and from one another, that also {% if description %}{{ description }}{% else %}belong to the category "{{ label }}"{% endif %}. Reply with only a JSON object: {"examples": [the {{ count }} {{ unit }}s, as strings]}.""",
)

# `ask: diverse`: unlike what the data already holds for the label.
DIVERSE = PromptTemplate(
    name="llm2llm-diverse",
    version=1,
    user="""Here are {{ unit }}s that {% if description %}{{ description }}{% else %}belong to the category "{{ label }}"{% endif %}:
{% for example in examples %}- "{{ example }}"
{% endfor %}Write {{ count }} new {{ unit }} that also {% if description %}{{ description }}{% else %}belongs to the category "{{ label }}"{% endif %} but differs from all of them in subject and wording. Reply with only the {{ unit }}.""",
)

# `ask: boundary`: clearly the seed's label, near the label the student confused it with (in the spirit of PromptMix).
BOUNDARY = PromptTemplate(
    name="llm2llm-boundary",
    version=1,
    user="""Here is a {{ unit }} of the category "{{ label }}": "{{ text }}"
A student model {% if wrong_prediction is not none %}confused it with{% else %}almost confused it with{% endif %} the category "{{ other }}".
Write {{ count }} new {{ unit }} that clearly belongs to "{{ label }}", not "{{ other }}", on a subject close to "{{ other }}". Reply with only the {{ unit }}.""",
)

PAIR = PromptTemplate(
    name="llm2llm-pair",
    version=1,
    user="""Task: {{ task }}
First text: {{ text }}
Second text: {{ text_pair }}
The relation between the two texts is "{{ label }}"{% if description %} ({{ description }}){% endif %}.
{% if wrong_prediction is not none %}A student model got it wrong: it answered "{{ wrong_prediction }}".
{% endif %}Write {{ count }} new pair of texts whose relation is also "{{ label }}", as two lines: "First text: ..." and "Second text: ...".""",
)

QA = PromptTemplate(
    name="llm2llm-qa",
    version=1,
    system=(
        "You are an educational A.I. that turns problems a student got wrong into new practice problems. "
        "Rules: write in English; keep each problem under 100 words; change the names, objects and numbers; "
        "the final answer is a single number (no fraction, no units); show the calculation step by step; make no "
        "mistakes. Format:\n1. Question: <problem>\nAnswer: <step-by-step solution>\n#### <number>"
    ),
    shots=(
        (
            "The student was given the following question: Betty is saving money for a new wallet which costs $100. "
            "Betty has only half of the money she needs. Her parents decided to give her $15 for that purpose, and "
            "her grandparents twice as much as her parents. How much more money does Betty need to buy the wallet?\n"
            "The answer key has this as the rationale and answer: In the beginning, Betty has only 100 / 2 = $50. "
            "Betty's grandparents gave her 15 * 2 = $30. This means, Betty needs 100 - 50 - 30 - 15 = $5 more.\n#### 5\n"
            "Please generate 1 similar question, along with the correct calculations and rationale.",
            "1. Question: Tom wants a bike that costs $240. He has saved a third of the price. His aunt gives him $40 "
            "and his uncle gives him half as much as his aunt. How much more money does Tom need?\n"
            "Answer: Tom has saved 240 / 3 = $80. His uncle gives him 40 / 2 = $20. Tom needs 240 - 80 - 40 - 20 = $100 "
            "more.\n#### 100",
        ),
    ),
    user="""The student was given the following question: {{ text }}
The answer key has this as the rationale and answer: {{ answer }}
{% if wrong_prediction is not none %}The student answered: {{ wrong_prediction }}
{% endif %}Please generate {{ count }} similar question{{ "s" if count > 1 else "" }}, along with the correct calculations and rationale.""",
)

# Fixed wording of the QA prompt. A tiny teacher often copies it into its problem or solution ("... The answer key
# has this as the rationale and"), which no filter on whole lines or overall overlap catches.
QA_PROMPT_PHRASES = (
    "the student was given the following question",
    "the answer key has this as",
    "the student answered:",
    "please generate",
)
