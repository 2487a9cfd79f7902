import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models load from local folders only; never reach the hub

import pytest

from llmaug.data.bundled import load_bundled
from llmaug.data.example import Example
from llmaug.data.sampling import sample_per_class

from .toydata import toy_examples, toy_pairs


@pytest.fixture
def toy() -> list[Example]:
    return toy_examples()


@pytest.fixture
def pairs() -> list[Example]:
    return toy_pairs()


@pytest.fixture(scope="session")
def trec_rows() -> list[Example]:
    """24 TREC-6 questions, 4 per class."""
    return sample_per_class(load_bundled("trec6"), 4, seed=0)
