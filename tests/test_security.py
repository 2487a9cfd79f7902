"""Secrets, prompt templates, output paths and loading: what a run must never leak, execute or write elsewhere."""

from __future__ import annotations

import json
import pickle
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmaug.cli import main
from llmaug.data import Example, save_examples
from llmaug.prompts.llm2llm import CLASSIFICATION
from llmaug.students import Student
from llmaug.testing.fake_openai import FakeOpenAIServer, FaultPlan, last_user_message
from llmaug.testing.scripted import question_responder, read_jsonl, run_cli, run_settings, write_settings

CANARY = "sk-canary-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"
KEY_ENV = "LLMAUG_TEST_CANARY_KEY"
INJECTIONS = [
    "What is {{ 7*7 }} in {% for x in range(3) %}{{ x }}{% endfor %} ?",
    "Where is {{ ''.__class__.__mro__[1].__subclasses__() }} ?",
    "Who wrote {0} and {text} and ${HOME} ?",
    "How many {# a comment #} {%- raw %} moons ?",
    "Which <script>alert(1)</script> city ?",
]


def files_containing(folder, needle: bytes) -> list[str]:
    return [str(p) for p in sorted(folder.rglob("*")) if p.is_file() and needle in p.read_bytes()]


# -------------------------------------------------------------------------------------------- API keys


@pytest.fixture(scope="module")
def keyed_server():
    faults = FaultPlan(server_error=0.1, rate_limit=0.05, truncated_json=0.05, garbage=0.05)
    with FakeOpenAIServer(question_responder, require_key=CANARY, faults=faults) as server:
        yield server


def test_the_api_key_appears_in_no_file_a_run_writes_nor_in_its_output(keyed_server, tmp_path):
    config = write_settings(tmp_path / "run.yaml", run_settings(keyed_server, rounds=2, api_key_env=KEY_ENV))
    result = run_cli("run", "--config", str(config), "--out", str(tmp_path / "run"), env={KEY_ENV: CANARY})

    assert result.returncode == 0, result.stderr[-2000:]
    assert all(record.authorization for record in keyed_server.log)  # the key was really used
    assert (tmp_path / "run" / "cache.sqlite").exists()
    assert files_containing(tmp_path, CANARY.encode()) == []  # run dir, cache, WAL, report, config, student
    assert CANARY not in result.stdout + result.stderr
    assert KEY_ENV in (tmp_path / "run" / "config.yaml").read_text()  # only the variable's name is kept


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_a_rejected_key_is_never_printed(debug, tmp_path):
    with FakeOpenAIServer(question_responder, require_key="the-right-key") as server:
        config = write_settings(tmp_path / "run.yaml", run_settings(server, rounds=1, api_key_env=KEY_ENV))
        result = run_cli(*debug, "run", "--config", str(config), "--out", str(tmp_path / "run"), env={KEY_ENV: CANARY})

    assert result.returncode != 0
    assert f"${KEY_ENV}" in result.stderr  # the message names the variable to check...
    assert CANARY not in result.stdout + result.stderr  # ...never its value
    assert files_containing(tmp_path, CANARY.encode()) == []


def test_a_key_pasted_where_the_variable_name_belongs_is_neither_echoed_nor_saved(tmp_path, capsys):
    with FakeOpenAIServer(question_responder) as server:
        config = write_settings(tmp_path / "run.yaml", run_settings(server, api_key_env=CANARY))
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--config", str(config), "--out", str(tmp_path / "run")])

    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "api_key_env" in err
    assert CANARY not in err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------ prompt templates


@given(text=st.text(min_size=1, max_size=200), label=st.text(min_size=1, max_size=20))
def test_any_text_enters_a_prompt_verbatim_and_is_never_evaluated(text, label):
    messages = CLASSIFICATION.render(unit="question", label=label, description=None, text=text,
                                     wrong_prediction=label, count=1)
    assert f'"{text}"' in messages[-1].content


def test_template_syntax_in_seed_data_reaches_the_teacher_as_plain_text(tmp_path):
    rows = [Example.create(text, label) for text, label in zip(INJECTIONS * 2, ["A"] * 5 + ["B"] * 5)]
    save_examples(rows, tmp_path / "seed.jsonl")
    with FakeOpenAIServer(question_responder) as server:
        settings = run_settings(server, rounds=1, train=str(tmp_path / "seed.jsonl"), dataset=None, max_eval=None,
                                fraction=None)
        result = run_cli("run", "--config", str(write_settings(tmp_path / "run.yaml", settings)), "--out",
                         str(tmp_path / "run"))
        prompts = [last_user_message(record.body) for record in server.log]

    assert result.returncode == 0, result.stderr[-2000:]
    assert prompts, "the student made no errors, so nothing was sent"
    for prompt in prompts:
        assert any(injection in prompt for injection in INJECTIONS), prompt
        assert "49" not in prompt and "<class" not in prompt and "$HOME" not in prompt.replace("${HOME}", "")


def test_template_and_html_syntax_from_the_teacher_is_kept_as_data_and_escaped_in_the_report(tmp_path):
    def hostile(body: dict) -> str:
        return "Which {{ 7*7 }} <script>alert(1)</script> " + question_responder(body)

    with FakeOpenAIServer(hostile) as server:
        settings = run_settings(server, rounds=2)
        result = run_cli("run", "--config", str(write_settings(tmp_path / "run.yaml", settings)), "--out",
                         str(tmp_path / "run"))
        later_prompts = [last_user_message(record.body) for record in server.log]

    assert result.returncode == 0, result.stderr[-2000:]
    added = [row for row in read_jsonl(tmp_path / "run" / "data.jsonl") if row["provenance"]["origin"] == "synthetic"]
    assert added and all(row["text"].startswith("Which {{ 7*7 }} <script>") for row in added)
    assert not any("{{ 7*7 }}" in prompt for prompt in later_prompts)  # teacher output never becomes a template
    assert "<script>" not in (tmp_path / "run" / "report.html").read_text()


# -------------------------------------------------------------------------------------------- paths


def test_labels_and_texts_that_look_like_paths_write_nothing_outside_the_run_directory(tmp_path):
    labels = ["../../escaped", "/tmp/absolute-label", "..\\windows", "con", "a/b"]
    rows = [Example.create(f"Where is place number {i} on the map ?", labels[i % len(labels)]) for i in range(15)]
    save_examples(rows, tmp_path / "seed.jsonl")
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    with FakeOpenAIServer(question_responder) as server:
        settings = run_settings(server, rounds=1, train=str(tmp_path / "seed.jsonl"), dataset=None, max_eval=None,
                                fraction=None)
        result = run_cli("run", "--config", str(write_settings(tmp_path / "run.yaml", settings)), "--out",
                         str(tmp_path / "run"))

    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.yaml", "seed.jsonl"]
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    run_dir = (tmp_path / "run").resolve()
    assert all(p.resolve().is_relative_to(run_dir) and not p.is_symlink() for p in run_dir.rglob("*"))
    assert sorted(Student.load(tmp_path / "run" / "student").labels) == sorted(labels)


# ------------------------------------------------------------------------------------ load, no execute


def test_a_saved_student_holds_no_pickle_and_loads_without_unpickling(tmp_path, monkeypatch):
    rows = [Example.create(t, l) for t, l in [("good fine", "p"), ("bad poor", "n"), ("fine good", "p"), ("poor bad", "n")]]
    save_examples(rows, tmp_path / "train.jsonl")
    assert run_cli("train", "--train", str(tmp_path / "train.jsonl"), "--student", "tfidf", "--out",
                   str(tmp_path / "student")).returncode == 0
    names = sorted(p.name for p in (tmp_path / "student").iterdir())
    assert names == ["arrays.safetensors", "llmaug_student.json", "vocabulary.json"]
    assert not any(p.read_bytes()[:1] == b"\x80" for p in (tmp_path / "student").iterdir())  # pickle protocol byte

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling during load")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert Student.load(tmp_path / "student").predict(rows) == ["p", "n", "p", "n"]


class _Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_a_planted_run_directory_executes_nothing(tmp_path):
    marker = tmp_path / "PWNED"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    student = tmp_path / "student"
    student.mkdir()
    for name in ("pytorch_model.bin", "model.pkl", "arrays.safetensors"):
        (student / name).write_bytes(pickle.dumps(_Payload(str(marker))))
    (student / "config.json").write_text(json.dumps({"architectures": ["Evil"], "auto_map": {"AutoModel": "evil.Evil"}}))
    (student / "evil.py").write_text(f"open({str(marker)!r}, 'w')\n")
    data = tmp_path / "data.jsonl"
    save_examples([Example.create("good", "p"), Example.create("bad", "n")], data)

    resumed = run_cli("run", "--resume", str(run_dir))
    outcomes = []
    for kind in ("tfidf", "finetune"):
        (student / "llmaug_student.json").write_text(json.dumps({"kind": kind, "labels": ["n", "p"], "options": {}}))
        outcomes.append(run_cli("eval", "--student", str(student), "--data", str(data)))

    assert not marker.exists()
    assert resumed.returncode == 2 and "config.yaml" in resumed.stderr
    assert [o.returncode for o in outcomes] == [2, 2], [o.stderr[-500:] for o in outcomes]
    assert all(o.stderr.startswith("error:") and "Traceback" not in o.stderr for o in [resumed, *outcomes])
