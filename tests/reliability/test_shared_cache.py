"""Two `llmaug generate` processes writing one teacher cache at the same time."""

from __future__ import annotations

from collections import Counter
from contextlib import closing

from llmaug.data import load_bundled, sample_per_class, save_examples
from llmaug.teachers import ResponseCache
from llmaug.testing.fake_openai import FakeOpenAIServer
from llmaug.testing.scripted import MODEL, question_responder, read_jsonl, run_cli, start_cli


def test_two_concurrent_runs_share_one_cache_without_corrupting_it(tmp_path):
    seed = tmp_path / "seed.jsonl"
    save_examples(sample_per_class(load_bundled("trec6"), 5, seed=0), seed)
    cache = tmp_path / "shared.sqlite"
    with FakeOpenAIServer(question_responder, latency=(0.0, 0.02)) as server:
        def generate(name: str) -> list[str]:
            return ["generate", "--train", str(seed), "--out", str(tmp_path / name), "--per-row", "2",
                    "--teacher", f"openai-compatible:{server.base_url}@{MODEL}", "--cache", str(cache)]

        workers = [start_cli(*generate("a.jsonl")), start_cli(*generate("b.jsonl"))]
        errors = [worker.communicate(timeout=300)[1] for worker in workers]
        bodies = Counter(str(sorted(record.body.items())) for record in server.log)
        server.reset_log()
        third = run_cli(*generate("c.jsonl"))
        third_requests = server.requests

    assert [worker.returncode for worker in workers] == [0, 0], errors
    requests = len(read_jsonl(seed)) * 2
    assert len(bodies) == requests and max(bodies.values()) <= 2  # at worst both asked the same question once
    assert third.returncode == 0 and third_requests == 0  # everything both wrote can be read back
    assert read_jsonl(tmp_path / "a.jsonl") == read_jsonl(tmp_path / "b.jsonl") == read_jsonl(tmp_path / "c.jsonl")
    with closing(ResponseCache(cache)) as opened:
        assert len(opened) == requests
