"""The CLI's listing commands and its one-line error contract."""

from __future__ import annotations

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
        assert run_cli(["teachers", "--check", f"openai-compatible:{server.base_url}@m"]) == 0
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
    from llmaug.data import Example, load_examples, save_examples

    rows = [Example.create(t, l) for t, l in [("good fine great", "pos"), ("bad awful poor", "neg"), ("great good", "pos"), ("awful bad", "neg")]]
    save_examples(rows, tmp_path / "train.jsonl")
    assert run_cli(["train", "--train", str(tmp_path / "train.jsonl"), "--student", "tfidf", "--out", str(tmp_path / "s")]) == 0
    assert run_cli(["eval", "--student", str(tmp_path / "s"), "--data", str(tmp_path / "train.jsonl")]) == 0
    assert "accuracy 1.0000" in capsys.readouterr().out
    (tmp_path / "new.csv").write_text("text\nso good\nso bad\n")
    assert run_cli(["predict", "--student", str(tmp_path / "s"), "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.jsonl")]) == 0
    assert [e.label for e in load_examples(tmp_path / "p.jsonl")] == ["pos", "neg"]
