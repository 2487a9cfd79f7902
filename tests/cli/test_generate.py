"""`llmaug generate` against a real loopback OpenAI-compatible server."""

from __future__ import annotations

import itertools
import json

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
    out = capsys.readouterr().out
    assert "wrote 6 examples" in out and "rows.csv.rejected.jsonl" in out and "rows.csv.cache.sqlite" in out
    assert (tmp_path / "rows.csv.cache.sqlite").is_file()  # the cache sits beside the output, in plain sight
    for name in ("rows.csv", "zero.jsonl"):
        lines = (tmp_path / f"{name}.rejected.jsonl").read_text().splitlines()
        assert all(json.loads(line)["reason"] and json.loads(line)["id"] for line in lines)


def test_generate_writes_each_rejection_with_its_reason_and_raw_output(tmp_path, run_cli):
    save_examples([Example.create(t, l) for t, l in SEEDS], tmp_path / "seed.jsonl")
    answers = itertools.cycle(["Where is the famous harbour of Oslo ?", "Sure! I'd be happy to help.", ""])
    with FakeOpenAIServer(responder=lambda body: next(answers)) as server:
        assert run_cli(["generate", "--train", str(tmp_path / "seed.jsonl"), "--teacher",
                        f"openai-compatible:{server.base_url}@m", "--out", str(tmp_path / "out.jsonl"), "--per-row", "1"]) == 0
    rejected = [json.loads(line) for line in (tmp_path / "out.jsonl.rejected.jsonl").read_text().splitlines()]
    assert len(load_examples(tmp_path / "out.jsonl")) == 1 and len(rejected) == 2
    assert {r["raw_output"] for r in rejected} == {"Sure! I'd be happy to help.", ""}
    assert all(r["id"] and r["reason"] for r in rejected)


def test_generate_needs_exactly_one_of_per_row_and_per_label(tmp_path, capsys, run_cli):
    save_examples([Example.create(t, l) for t, l in SEEDS], tmp_path / "seed.jsonl")
    args = ["generate", "--train", str(tmp_path / "seed.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--teacher", "openai:m"]
    assert run_cli(args) == 2
    assert run_cli(args + ["--per-row", "0"]) == 2
    err = capsys.readouterr().err
    assert "--per-label/--per-row" in err and "--per-row: must be >= 1" in err
    assert not (tmp_path / "o.jsonl").exists()
