"""PromptMix prompts (Sahu et al., 2023; `src/generator/__init__.py` and `src/models/classifiers.py` of the
official code). Two changes to the wording: "intents"/"utterances" become "categories" and the task's unit, and a
class reads "NAME: DESCRIPTION." rather than "NAME, which is about DESCRIPTION.", which only suits noun-phrase
descriptions (the bundled ones are verb phrases: "asks about a location")."""

from llmaug.prompts.base import PromptTemplate

_CLASS_BLOCK = """Consider the task of classifying between the following categories (along with some examples):
{% for c in classes %}{{ loop.index }}. {{ c.name }}: {{ c.description }}. Some examples of {{ unit }}s include:
{% for example in c.examples %}- {{ example }}
{% endfor %}{% endfor %}"""

MIX = PromptTemplate(
    name="promptmix-mix",
    version=1,
    user=_CLASS_BLOCK + """
Generate a diverse set of {{ count }} short {{ unit }}s where each {{ unit }} belongs {{ major }}% to {{ label }} and {{ minor }}% to {{ other }}.
Example 1:""",
)

RELABEL = PromptTemplate(
    name="promptmix-relabel",
    version=1,
    user=_CLASS_BLOCK + """
Consider the following test {{ unit }}:
1. {{ text }}

Classify the test {{ unit }} into one of the previously described categories. Only provide the name of the category.""",
)

# The paper's class descriptions were written by hand; without them, the teacher writes one per class, once.
DESCRIBE = PromptTemplate(
    name="promptmix-describe",
    version=1,
    user="""Here are some {{ unit }}s of the category "{{ label }}":
{% for example in examples %}- {{ example }}
{% endfor %}
In a few words, what are {{ unit }}s of this category about? Reply with one short phrase.""",
)
