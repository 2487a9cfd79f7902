"""Prompts of the one-pass baselines: AugGPT-style paraphrasing and ZeroGen label-only generation."""

from llmaug.prompts.base import PromptTemplate

PARAPHRASE = PromptTemplate(
    name="paraphrase",
    version=1,
    system="You rewrite examples for a text classification dataset.",
    user="""Task: {{ task }}
{% if text_pair is not none %}First text: {{ text }}
Second text: {{ text_pair }}
Rewrite the second text with different words so that its relation to the first text stays the same. Reply with the rewritten second text only.{% else %}{{ unit | capitalize }}: {{ text }}
Rewrite this {{ unit }} with different words, keeping its meaning. Reply with the rewritten {{ unit }} only.{% endif %}""",
)

ZEROGEN = PromptTemplate(
    name="zerogen",
    version=1,
    system="You write examples for a text classification dataset.",
    user="""Task: {{ task }}
Write one {{ unit }} of the category "{{ label }}"{% if description %} ({{ description }}){% endif %}. Reply with the {{ unit }} only.""",
)

# ZeroGen for sentence-pair tasks: the teacher writes the whole pair for a label.
ZEROGEN_PAIR = PromptTemplate(
    name="zerogen-pair",
    version=1,
    system="You write examples for a text classification dataset.",
    user="""Task: {{ task }}
Write one pair of texts whose relation is "{{ label }}"{% if description %} ({{ description }}){% endif %}. Reply with two lines: "First text: ..." and "Second text: ...".""",
)

# ZeroGen for sentence-pair tasks with a given first text (ZeroGen's and S3's set-up for RTE).
ZEROGEN_ON_PREMISE = PromptTemplate(
    name="zerogen-on-premise",
    version=1,
    user="""{{ text }}
Write one sentence whose relation to the text above is "{{ label }}"{% if description %} ({{ description }}){% endif %}. Reply with the sentence only.""",
)
