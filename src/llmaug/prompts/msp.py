"""MSP prompts (Chen et al., 2023). The generator reads soft prompts first, then this hard prompt as plain text
(no chat template): the task and its attributes' descriptions (the official "{label} in the {domain} domain"),
then numbered exemplars that share the attributes, and an open number for the model to fill. The official code
writes "1) ... 2) ... 3) " the same way and cuts the output at the newline."""

from llmaug.prompts.base import PromptTemplate

CONTEXT = PromptTemplate(
    name="msp-context",
    version=1,
    user="""{% if metadata %}Task: {{ task }}.
{% for a in attributes %}{{ a.name }}: {{ a.description }}.
{% endfor %}{% endif %}{% for text in exemplars %}{{ loop.index }}) {{ text }}
{% endfor %}{{ exemplars | length + 1 }})""",
)

# Attributes without a description get one line from the teacher, once (PromptMix's wording, for attributes).
DESCRIBE = PromptTemplate(
    name="msp-describe",
    version=1,
    user="""Here are some {{ unit }}s with the attribute "{{ attribute }}":
{% for example in examples %}- {{ example }}
{% endfor %}
In a few words, what are {{ unit }}s with this attribute about? Reply with one short phrase.""",
)

_COUNTS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def instruction_text(unit: str, exemplars: int) -> str:
    """The text the instruction soft prompt starts from: the official "Show me three distinct utterances that
    all express the ", with the task's unit and one more than the number of exemplars."""
    count = _COUNTS[exemplars] if exemplars < len(_COUNTS) else str(exemplars + 1)
    return f"Show me {count} distinct {unit}s that all express the "


def attribute_text(name: str, description: str | None) -> str:
    """The text an attribute's soft prompt starts from, e.g. "LOC: asks about a location"."""
    return f"{name}: {description}" if description else name
