"""The CLI's listing commands and its one-line error contract."""

from __future__ import annotations

import json

import pytest



def test_datasets_lists_the_bundled_datasets(capsys, run_cli):
    assert run_cli(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "trec6" in out and "sst2" in out and "MIT" in out


def test_teachers_lists_every_backend(capsys, run_cli):
    assert run_cli(["teachers"]) == 0
    out = capsys.readouterr().out
    for spec in ("embedded", "openai:MODEL", "openai-compatible", "llama-cpp"):
        assert spec in out


def test_teachers_check_calls_a_real_server(capsys, run_cli):
    from llmaug.testing.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer(responder=lambda body: "Where is Lyon?") as server:
        assert run_cli(["teachers", "--check", f"openai-compatible:{server.base_url}@fake-model"]) == 0
        assert server.requests == 1
    assert "Where is Lyon?" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, where",
    [
        (["run", "--rounds", "many"], "--rounds"),
        (["run", "--rounds", "-1", "--out", "unused"], "--rounds"),
        (["run", "--teacher", "gpt5", "--student", "tfidf"], "--teacher"),
        (["run", "--student", "svm"], "--student"),
        (["run", "--method", "magic"], "--method"),
        (["teachers", "--check", "openai-compatible:http://127.0.0.1:9/v1@m"], "127.0.0.1:9"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(args, where, capsys, tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert where in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.jsonl"))


def test_train_eval_predict_round_trip(tmp_path, capsys, run_cli):
    from llmaug.data import Example, save_examples

    rows = [Example.create(t, l) for t, l in [("good fine great", "pos"), ("bad awful poor", "neg"), ("great good", "pos"), ("awful bad", "neg")]]
    save_examples(rows, tmp_path / "train.jsonl")
    assert run_cli(["train", "--train", str(tmp_path / "train.jsonl"), "--student", "tfidf", "--out", str(tmp_path / "s")]) == 0
    assert run_cli(["eval", "--student", str(tmp_path / "s"), "--data", str(tmp_path / "train.jsonl")]) == 0
    assert "accuracy 1.0000" in capsys.readouterr().out
    (tmp_path / "new.csv").write_text("customer,text\nann,so good\nbob,so bad\n")
    assert run_cli(["predict", "--student", str(tmp_path / "s"), "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [row["customer"] for row in rows] == ["ann", "bob"] and [row["text"] for row in rows] == ["so good", "so bad"]
    assert [row["prediction"] for row in rows] == ["pos", "neg"]
    assert all(set(row) == {"customer", "text", "prediction", "prob_neg", "prob_pos"} for row in rows)
    assert all(abs(row["prob_neg"] + row["prob_pos"] - 1) < 1e-6 and row["prob_pos"] > 0.5 for row in rows[:1])
    assert "id" not in rows[0] and "provenance" not in rows[0]  # the user's columns, not llmaug's


def test_eval_takes_a_bundled_dataset_prints_the_confusion_matrix_and_writes_json(tmp_path, capsys, run_cli):
    from llmaug.data import load_bundled, sample_per_class, save_examples

    save_examples(sample_per_class(load_bundled("sst2"), 20, seed=0), tmp_path / "train.jsonl")
    assert run_cli(["train", "--train", str(tmp_path / "train.jsonl"), "--student", "tfidf", "--out", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert run_cli(["eval", "--student", str(tmp_path / "s"), "--data", "sst2", "--out", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix" in out and "gold \\ predicted" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["n"] == len(load_bundled("sst2", "test")) and sum(map(sum, metrics["confusion"])) == metrics["n"]
    assert f"accuracy {metrics['accuracy']:.4f}" in out


# ----------------------------------------------------------------------------------- the registry at the CLI


def test_version(capsys, run_cli):
    import llmaug

    assert run_cli(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"llmaug {llmaug.__version__}"


def test_run_help_lists_every_method_teacher_and_student_from_the_registry_with_defaults(capsys, run_cli, monkeypatch):
    from llmaug import registry

    monkeypatch.setenv("COLUMNS", "400")  # one help line per option, unwrapped

    assert run_cli(["run", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for kind in registry.REGISTRY.values():
        for name in kind:
            assert name in out, name
    assert "(default: llm2llm)" in out and "(default: finetune)" in out and "(default: embedded)" in out


def test_methods_lists_each_methods_options_with_defaults_and_descriptions(capsys, run_cli):
    from llmaug import registry

    assert run_cli(["methods"]) == 0
    out = capsys.readouterr().out
    for name in registry.METHODS:
        assert f"{name}:" in out
    assert run_cli(["methods", "promptmix"]) == 0
    out = capsys.readouterr().out
    assert "classes_per_prompt" in out and "cycles" in out and "rounds" not in out
    assert run_cli(["methods", "gan"]) == 2


def test_students_and_teacher_options_are_listed(capsys, run_cli):
    assert run_cli(["students"]) == 0
    out = capsys.readouterr().out
    assert "causal-lm" in out and "max_features" in out and "freeze_embeddings" in out
    assert run_cli(["teachers", "--options"]) == 0
    out = capsys.readouterr().out
    assert "max_tokens_field" in out and "api_key_env" in out and "batch_size" in out


def test_print_config_shows_the_resolved_config_and_runs_nothing(tmp_path, capsys, monkeypatch, run_cli):
    import yaml

    from llmaug.config import load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.yaml").write_text("method_options: {rounds: 5}\nstudent: tfidf\n")
    assert run_cli(["run", "--config", "run.yaml", "--rounds", "2", "-o", "ask=diverse", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["method_options"]["rounds"] == 2 and printed["method_options"]["ask"] == "diverse"
    assert printed["student_options"]["C"] == 10.0  # every default filled in
    assert printed["out"] == "runs/llm2llm-trec6-s0"
    assert not (tmp_path / "runs").exists()
    (tmp_path / "printed.yaml").write_text(yaml.safe_dump(printed))
    assert load_config(tmp_path / "printed.yaml").model_dump() == printed


def test_debug_anywhere_on_the_line_shows_the_traceback_and_keeps_exit_2(capsys, run_cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for args in (["--debug", "run", "--method", "promptmix", "--rounds", "7"],
                 ["run", "--method", "promptmix", "--rounds", "7", "--debug"]):
        assert run_cli(args) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and "method 'promptmix' has no option 'rounds'" in err
    assert run_cli(["run", "--method", "promptmix", "--rounds", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err and err.startswith("error: --rounds: method 'promptmix'")


def test_an_existing_folder_that_is_not_a_run_directory_is_refused_as_out(tmp_path, capsys, run_cli):
    mine = tmp_path / "my-project"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own file")
    assert run_cli(["run", "--student", "tfidf", "--out", str(mine), "--max-eval", "10"]) == 2
    err = capsys.readouterr().err
    assert "not a run directory" in err and "--out" in err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_a_run_ends_with_a_summary_of_time_tokens_cost_and_the_report_and_leaves_no_lock(tmp_path, capsys, run_cli):
    from llmaug.testing.fake_openai import FakeOpenAIServer
    from llmaug.testing.scripted import question_responder

    out = tmp_path / "run"
    with FakeOpenAIServer(question_responder) as server:
        args = ["run", "--teacher", f"openai-compatible:{server.base_url}@m", "--student", "tfidf", "--rounds", "1",
                "--max-eval", "50", "--out", str(out)]
        assert run_cli(args) == 0
        first = capsys.readouterr().out
        assert run_cli(args) == 0  # the same run again: every answer from the cache
        again = capsys.readouterr().out
    summary = " ".join(first.split())
    assert "total" in summary and "cost n/a (no price given)" in summary and str(out / "report.html") in summary
    assert "◀" in summary and "kept: " in summary and "held-out" in summary  # (the table may wrap its cells)
    assert "verdict: " in summary and "95% CI" in summary and "McNemar p" in summary and "on the eval set" in summary
    calls = int(summary.split("teacher: ")[1].split(" calls")[0])
    assert calls > 0 and "0 from the cache" in summary
    assert f"teacher: 0 calls, {calls} from the cache" in " ".join(again.split())
    assert not (out / ".lock").exists()
    rejected = [json.loads(line) for path in out.glob("rounds/*/rejected.jsonl") for line in path.read_text().splitlines()]
    assert all(r["id"] for r in rejected)
