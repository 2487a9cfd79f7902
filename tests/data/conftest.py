import pytest

from llmaug.data import Example, Provenance

@pytest.fixture
def labelled_examples() -> list[Example]:
    synthetic = Provenance(
        origin="synthetic", method="llm2llm", round=2, parent_ids=["see-1", "see-2"], teacher="smollm2-135m",
        prompt="llm2llm_incorrect@1", sample_index=3, raw_output='1. "Why?"\n2. {{ x }}',
    )
    return [
        Example.create("A man is playing a guitar.", "entailment", text_pair="A man plays music."),
        Example.create('Quotes " and, commas; {{ braces }}', "not_entailment", text_pair="Line one\nline two"),
        Example.create("Ünïcödé — 日本語 🙂", "entailment", text_pair="tab\there", provenance=synthetic),
    ]


@pytest.fixture
def qa_examples() -> list[Example]:
    return [
        Example.create("Natalia sold 48 clips. How many?", answer="She sold 72.\n#### 72"),
        Example.create("What is 2 + 2?", answer="#### 4"),
    ]
