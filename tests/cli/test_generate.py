"""`llmaug generate` against a real loopback OpenAI-compatible server."""

from __future__ import annotations

import itertools

from llmaug.data import Example, load_examples, save_examples
from llmaug.testing.fake_openai import FakeOpenAIServer

SEEDS = [("Where is the city of Kyoto ?", "LOC"), ("How many legs does a spider have ?", "NUM"), ("Where is Lima ?", "LOC")]


def test_generate_per_row_and_per_label_with_provenance_and_cache(tmp_path, capsys, run_cli):
    save_examples([Example.create(t, l) for t, l in SEEDS], tmp_path / "seed.jsonl")
    counter = itertools.count()
    with FakeOpenAIServer(responder=lambda body: f"Which famous place number {next(counter)} is near the sea?") as server:
        spec = f"openai-compatible:{server.base_url}@m"
        args = ["generate", "--train", str(tmp_path / "seed.jsonl"), "--teacher", spec, "--out", str(tmp_path / "rows.csv")]
        assert run_cli(args + ["--per-row", "2"]) == 0
        assert server.requests == 6
        assert run_cli(args + ["--per-row", "2"]) == 0  # the rerun is answered from the cache
        assert server.requests == 6
        assert run_cli(["generate", "--train", str(tmp_path / "seed.jsonl"), "--teacher", spec,
                        "--out", str(tmp_path / "zero.jsonl"), "--per-label", "2"]) == 0
        assert server.requests == 10
    rows = load_examples(tmp_path / "rows.csv")
    assert len(rows) == 6 and {e.label for e in rows} == {"LOC", "NUM"}
    seed_ids = {e.id for e in load_examples(tmp_path / "seed.jsonl")}
    for row in rows:
        p = row.provenance
        assert p.origin == "synthetic" and p.method == "paraphrase" and p.parent_ids[0] in seed_ids
        assert p.teacher.startswith("openai-compatible:") and p.prompt.startswith("paraphrase@") and p.raw_output
    zero = load_examples(tmp_path / "zero.jsonl")
    assert {e.provenance.method for e in zero} == {"zerogen"} and all(e.provenance.parent_ids == [] for e in zero)
    assert "wrote 6 examples" in capsys.readouterr().out


def test_generate_needs_exactly_one_of_per_row_and_per_label(tmp_path, capsys, run_cli):
    save_examples([Example.create(t, l) for t, l in SEEDS], tmp_path / "seed.jsonl")
    args = ["generate", "--train", str(tmp_path / "seed.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--teacher", "openai:m"]
    assert run_cli(args) == 2
    assert run_cli(args + ["--per-row", "0"]) == 2
    err = capsys.readouterr().err
    assert "--per-label/--per-row" in err and "--per-row: must be >= 1" in err
    assert not (tmp_path / "o.jsonl").exists()
