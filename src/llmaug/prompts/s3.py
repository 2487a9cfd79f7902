"""S3 prompts (Wang et al., 2023, Table 1), made task-generic: the paper writes one set per dataset (IMDb reviews,
RTE "definitely correct/wrong"). The seed prompts are the ZeroGen baseline's wording plus the rationale, so the
two methods differ only in what the paper adds."""

from llmaug.prompts.base import PromptTemplate

_LABEL = '"{{ label }}"{% if description %} ({{ description }}){% endif %}'

# T_ration: the reasons (aspects) that make an example belong to a label.
RATIONALES = PromptTemplate(
    name="s3-rationales",
    version=1,
    user="""Task: {{ task }}
List {{ count }} different reasons or aspects that can make a {{ unit }} belong to the category """ + _LABEL + """. Write one short reason per line.""",
)

RATIONALES_PAIR = PromptTemplate(
    name="s3-rationales-pair",
    version=1,
    user="""Task: {{ task }}
Each example is a pair of texts. List {{ count }} different reasons why the second text of a pair can have the relation """ + _LABEL + """ to the first text. Write one short reason per line.""",
)

# T_query: one example of a label, steered by one of its rationales.
SEED = PromptTemplate(
    name="s3-seed",
    version=1,
    system="You write examples for a text classification dataset.",
    user="""Task: {{ task }}
Write one {{ unit }} of the category """ + _LABEL + """{% if rationale %}, for this reason: {{ rationale }}{% endif %}. Reply with the {{ unit }} only.""",
)

SEED_PAIR = PromptTemplate(
    name="s3-seed-pair",
    version=1,
    system="You write examples for a text classification dataset.",
    user="""Task: {{ task }}
Write one pair of texts whose relation is """ + _LABEL + """{% if rationale %}, for this reason: {{ rationale }}{% endif %}. Reply with two lines: "First text: ..." and "Second text: ...".""",
)

# The paper's RTE T_query: a second text for a given first text (premise).
SEED_ON_PREMISE = PromptTemplate(
    name="s3-seed-on-premise",
    version=1,
    user="""{{ text }}
Write one sentence whose relation to the text above is """ + _LABEL + """{% if rationale %}, for this reason: {{ rationale }}{% endif %}. Reply with the sentence only.""",
)

# T_mis: a new example extrapolated from a real example the student got wrong, with the same label.
EXTRAPOLATE = PromptTemplate(
    name="s3-extrapolate",
    version=1,
    user="""Write a new {{ unit }} of the category """ + _LABEL + """ similar to this one:
{{ text }}
Reply with the new {{ unit }} only.""",
)

# For pairs the first text (the context) stays; the teacher writes a new second text (paper: RTE's T_mis).
EXTRAPOLATE_PAIR = PromptTemplate(
    name="s3-extrapolate-pair",
    version=1,
    user="""{{ text }}
Based on the above text, the relation of the following sentence to it is """ + _LABEL + """: {{ text_pair }}
Now write a new sentence similar to the given sentence whose relation to the above text is also "{{ label }}". Reply with the sentence only.""",
)
