"""MSP control flow: the soft prompts really train on a tiny random-init LM, its (noise) generations are replaced
by scripted texts, and a keyword embedding stands in for MiniLM; one end-to-end run with the real embedded
SmolLM2 through the CLI (slow)."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest
import yaml

from llmaug.data import Example
from llmaug.errors import ConfigError, UserError
from llmaug.filters import denoise
from llmaug.generators.soft_prompts import SoftPromptGenerator
from llmaug.generators.tiny import save_tiny_causal_lm
from llmaug.methods import MSP, TaskInfo
from llmaug.testing.scripted import run_method as run  # the method's own rounds, as the paper keeps them
from llmaug.teachers import Teacher
from llmaug.teachers.function import FunctionBackend

KEYWORDS = {"LOC": "city", "NUM": "number", "HUM": "person"}
DESCRIPTIONS = {"LOC": "asks about a city", "NUM": "asks for a number", "HUM": "asks about a person"}


def seed_set(counts=(("LOC", 2), ("NUM", 2), ("HUM", 4))) -> list[Example]:
    return [Example.create(f"Which {' and '.join(KEYWORDS[a] for a in label.split('+'))} is example {i} of {label.lower()} ?", label)
            for label, count in counts for i in range(count)]


class KeywordEncoder:
    """Embeds a text as its counts of the three keywords, plus a constant so that every text has a direction."""

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = np.array([[t.count(word) for word in KEYWORDS.values()] + [0.3] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def _keyword_embeddings(monkeypatch):
    monkeypatch.setattr(denoise, "shared_encoder", lambda: KeywordEncoder())


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    return str(save_tiny_causal_lm(tmp_path_factory.mktemp("models") / "tiny-lm"))


@pytest.fixture
def scripted_generations(monkeypatch):
    """Generation answers, per item, with texts alternately near (its attribute's keyword) and far (none);
    the items asked for are logged."""
    asked: list = []
    counter = itertools.count()

    def generate(self, items, m, params, *, batch_size=8, progress=None):
        asked.extend(items)
        texts = []
        for item in items:
            words = " and ".join(KEYWORDS[a] for a in item.attributes)
            texts.append([f"Which {words} is number {next(counter)} on the list ?" if j % 2 == 0
                          else f"Why would anyone sing song {next(counter)} tonight ?" for j in range(m)])
        return texts

    monkeypatch.setattr(SoftPromptGenerator, "generate", generate)
    return asked


def msp(tiny_model: str, **options) -> MSP:
    settings = {"model": tiny_model, "instruction_tokens": 6, "attribute_tokens": 3, "epochs": 1, "per_set": 2} | options
    return MSP(**settings)


def silent_teacher() -> tuple[Teacher, FunctionBackend]:
    backend = FunctionBackend(lambda request: "questions about something")
    return Teacher(backend), backend


def task(descriptions=DESCRIPTIONS) -> TaskInfo:
    return TaskInfo(description="question classification", unit="question", label_descriptions=dict(descriptions))


def test_pipeline_favours_rare_attributes_denoises_and_trains_the_student_once(tiny_model, scripted_generations, tmp_path):
    seeds = seed_set()
    teacher, backend = silent_teacher()
    result = run(msp(tiny_model), seeds, teacher=teacher, student="tfidf", task=task(), out=tmp_path / "run")

    chosen = Counter(item.attributes for item in scripted_generations)
    assert sum(chosen.values()) == len(seeds)  # `sets` defaults to one per seed
    assert chosen[("LOC",)] > chosen[("HUM",)] and chosen[("NUM",)] > chosen[("HUM",)]
    for item in scripted_generations:
        label = item.attributes[0]
        shown = [line for line in item.context.splitlines() if line[:1].isdigit() and not line.endswith(")")]
        assert len(shown) == 2 and all(f"{KEYWORDS[label]} is example" in line for line in shown)
        assert f"{label}: {DESCRIPTIONS[label]}." in item.context and item.context.endswith("3)")

    report = json.loads((tmp_path / "run" / "msp.json").read_text())
    assert report["generated"] == 2 * len(seeds) and report["passed_filters"] == 2 * len(seeds)
    assert report["denoise"]["kept"] == len(result.added) == len(seeds)  # keep_fraction 0.5 of each set
    assert all(KEYWORDS[e.label] in e.text for e in result.added)  # the near half
    far = [json.loads(line) for line in (tmp_path / "run" / "rounds" / "000" / "rejected.jsonl").read_text().splitlines()]
    assert len(far) == len(seeds) and all(r["reason"].startswith(denoise.FAR) for r in far)

    assert [(r.round, r.train_size) for r in result.rounds] == [(0, len(seeds) + len(result.added))]
    assert backend.requests == []  # the task described every label


def test_every_synthetic_row_has_full_provenance(tiny_model, scripted_generations):
    seeds = seed_set()
    result = run(msp(tiny_model, keep_fraction=None), seeds, teacher=silent_teacher()[0], student="tfidf", task=task())
    by_id = {e.id: e for e in seeds}
    assert len(result.added) == 2 * len(seeds)
    indices = []
    for example in result.added:
        p = example.provenance
        assert (p.origin, p.method, p.round, p.prompt) == ("synthetic", "msp", 0, "msp-context@1")
        assert p.teacher == "msp:tiny-lm+concat"
        assert len(p.parent_ids) == 2 and all(by_id[i].label == example.label for i in p.parent_ids)
        assert p.raw_output == example.text
        indices.append(p.sample_index)
    assert len(set(indices)) == len(indices)


def test_missing_descriptions_are_written_once_by_the_teacher_and_start_the_prompts(tiny_model, scripted_generations, tmp_path):
    teacher, backend = silent_teacher()
    run(msp(tiny_model), seed_set(), teacher=teacher, student="tfidf", task=task({"LOC": "asks about a city"}), out=tmp_path / "run")
    assert len(backend.requests) == 2  # HUM and NUM
    descriptions = json.loads((tmp_path / "run" / "descriptions.json").read_text())
    assert descriptions == {"HUM": "questions about something", "LOC": "asks about a city", "NUM": "questions about something"}
    saved = json.loads((tmp_path / "run" / "msp-prompts" / "soft_prompts.json").read_text())
    assert saved["attributes"]["NUM"] == "NUM: questions about something"


def test_trained_prompts_are_saved_reused_on_rerun_and_loadable_by_another_run(tiny_model, scripted_generations, tmp_path, monkeypatch):
    seeds = seed_set()
    first = run(msp(tiny_model), seeds, teacher=silent_teacher()[0], student="tfidf", task=task(), out=tmp_path / "first")
    saved = tmp_path / "first" / "msp-prompts"
    assert (saved / "soft_prompts.safetensors").is_file()
    trained = json.loads((tmp_path / "first" / "msp.json").read_text())["training"]
    assert trained["reused"] is None and trained["examples"] == len(seeds) and trained["seconds"] >= 0

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(SoftPromptGenerator, "train", no_training)
    again = run(msp(tiny_model), seeds, teacher=silent_teacher()[0], student="tfidf", task=task(), out=tmp_path / "first")
    assert json.loads((tmp_path / "first" / "msp.json").read_text())["training"]["reused"] == str(saved)
    assert len(again.added) == len(first.added)

    other = run(msp(tiny_model, prompts=str(saved)), seeds, teacher=silent_teacher()[0], student="tfidf", task=task(), out=tmp_path / "other")
    assert json.loads((tmp_path / "other" / "msp.json").read_text())["training"]["reused"] == str(saved)
    assert len(other.added) == len(first.added)
    with pytest.raises(ConfigError, match="mixer 'concat'"):
        run(msp(tiny_model, prompts=str(saved), mixer="cnn"), seeds, teacher=silent_teacher()[0], student="tfidf", task=task())


def test_changed_settings_train_new_prompts_in_the_same_run_directory(tiny_model, scripted_generations, tmp_path):
    seeds = seed_set()
    run(msp(tiny_model), seeds, teacher=silent_teacher()[0], student="tfidf", task=task(), out=tmp_path / "run")
    run(msp(tiny_model, mixer="cnn"), seeds, teacher=silent_teacher()[0], student="tfidf", task=task(), out=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "msp.json").read_text())["training"]["reused"] is None
    assert json.loads((tmp_path / "run" / "msp-prompts" / "soft_prompts.json").read_text())["mixer"] == "cnn"


def test_multi_attribute_labels_get_one_prompt_per_attribute_and_keep_their_label(tiny_model, scripted_generations, tmp_path):
    seeds = seed_set((("LOC", 2), ("NUM", 2), ("LOC+NUM", 2)))
    result = run(msp(tiny_model, label_separator="+", mixer="attention"), seeds, teacher=silent_teacher()[0],
                 student="tfidf", task=task(), out=tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "msp-prompts" / "soft_prompts.json").read_text())
    assert sorted(saved["attributes"]) == ["LOC", "NUM"]
    assert ("LOC", "NUM") in {item.attributes for item in scripted_generations}
    assert {e.label for e in result.added} <= {"LOC", "NUM", "LOC+NUM"}
    both = [e for e in result.added if e.label == "LOC+NUM"]
    assert both and all("city and number" in e.text for e in both)


def test_sentence_pairs_and_bad_options_are_refused(tiny_model):
    pairs = [Example.create("A man sleeps .", "yes", text_pair="A person rests ."), Example.create("It rains .", "no", text_pair="It is dry .")]
    with pytest.raises(UserError, match="single texts"):
        run(msp(tiny_model), pairs, teacher=silent_teacher()[0], student="tfidf")
    with pytest.raises(ConfigError, match="option 'mixer' of method 'msp'"):
        MSP(mixer="sum")
    with pytest.raises(ConfigError, match="keep_fraction"):
        MSP(keep_fraction=0)


@pytest.mark.slow
def test_msp_cli_run_with_the_embedded_model(tmp_path, monkeypatch):
    from llmaug.cli import main
    from llmaug.data import load_bundled, sample_per_class, save_examples

    monkeypatch.undo()  # the real MiniLM for the denoiser
    seed = sample_per_class(load_bundled("trec6"), 2, seed=0)
    test = sample_per_class(load_bundled("trec6", "test"), 5, seed=0)
    save_examples(seed, tmp_path / "seed.jsonl")
    save_examples(test, tmp_path / "test.jsonl")
    config = {
        "method": "msp", "train": str(tmp_path / "seed.jsonl"), "eval": str(tmp_path / "test.jsonl"),
        "student": "tfidf", "task": "question classification", "unit": "question", "select": "last",
        "method_options": {"epochs": 2, "sets": 6, "per_set": 2, "threads": 1},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    main(["run", "--config", str(tmp_path / "run.yaml"), "--out", str(out)])

    report = json.loads((out / "msp.json").read_text())
    assert report["generated"] == 12 and report["training"]["steps"] == 6
    assert report["training"]["epoch_losses"][-1] < report["training"]["epoch_losses"][0]
    assert report["denoise"]["kept"] <= report["passed_filters"]
    assert set(report["chosen_sets"]) == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    synthetic = [r for r in rows if r["provenance"]["origin"] == "synthetic"]
    assert len(rows) == len(seed) + len(synthetic) == len(seed) + report["denoise"]["kept"]
    seed_ids = {e.id for e in seed}
    for row in synthetic:
        p = row["provenance"]
        assert p["teacher"] == "msp:SmolLM2-135M-Instruct.Q4_1+concat" and set(p["parent_ids"]) <= seed_ids
    assert (out / "msp-prompts" / "soft_prompts.safetensors").is_file()
    assert json.loads((out / "summary.json").read_text())["test"]["accuracy"] is not None
