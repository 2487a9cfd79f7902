"""One code path builds a run from settings, whichever door they came through: the CLI's settings and the Python
API's objects give the same run."""

from __future__ import annotations

import io
import json

from rich.console import Console

from llmaug import run
from llmaug.data import load_bundled, load_examples, sample_fraction, save_examples
from llmaug.methods import LLM2LLM
from llmaug.runner import default_quality
from llmaug.teachers import Teacher
from llmaug.teachers.embedded import EmbeddedBackend
from llmaug.teachers.function import FunctionBackend
from llmaug.testing.fake_openai import FakeOpenAIServer
from llmaug.testing.scripted import cli_exit_code, question_responder


def test_the_api_and_the_cli_make_the_same_run_and_the_api_run_can_be_resumed_from_the_cli(tmp_path):
    seed = sample_fraction(load_bundled("trec6"), 0.01, seed=0)
    test = load_bundled("trec6", "test")[:60]
    save_examples(seed, tmp_path / "seed.jsonl")
    save_examples(test, tmp_path / "test.jsonl")
    with FakeOpenAIServer(question_responder) as server:
        spec = f"openai-compatible:{server.base_url}@scripted"
        with Teacher(spec, cache=tmp_path / "api" / "cache.sqlite") as teacher:
            api = run(LLM2LLM(rounds=1), seed, teacher=teacher, student="tfidf", eval=test, out=tmp_path / "api",
                      select="last", console=Console(file=io.StringIO()))
        assert cli_exit_code(["run", "--train", str(tmp_path / "seed.jsonl"), "--eval", str(tmp_path / "test.jsonl"),
                              "--teacher", spec, "--student", "tfidf", "--rounds", "1", "--select", "last",
                              "--out", str(tmp_path / "cli")]) == 0
        requests = server.requests
        assert cli_exit_code(["run", "--resume", str(tmp_path / "api")]) == 0  # the API run's config.yaml reruns it
        assert server.requests == requests  # from the cache: nothing asked again
    cli = load_examples(tmp_path / "cli" / "data.jsonl")
    assert [e.id for e in cli] == [e.id for e in api.data] and len(api.added) > 0
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("api", "cli")]
    assert summaries[0]["rounds"] == summaries[1]["rounds"] and summaries[0]["options"] == summaries[1]["options"]


def test_the_embedding_label_check_defaults_on_for_the_weak_embedded_teacher_at_every_door():
    """Bug: only the CLI turned it on, so the same settings added 4 rows through the API and 10 through the CLI."""
    weak = Teacher(FunctionBackend(lambda request: "x"))
    weak.backend.reliable_labels = False
    assert default_quality("auto", weak).centroid_top == 1
    assert default_quality("auto", Teacher(FunctionBackend(lambda request: "x"))).centroid_top is None
    assert default_quality("none", weak).centroid_top is None
    assert EmbeddedBackend.reliable_labels is False
