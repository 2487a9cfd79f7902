"""`llmaug plan`: the method's own algorithm replayed against a planning context; bounds checked against real runs
over HTTP (the loopback server), exact counts against the methods' definitions, and no call made without --probe."""

from __future__ import annotations

import json

import pytest

from llmaug.config import load_config
from llmaug.plan import TokenCounter, make_plan
from llmaug.teachers.base import TeacherRequest
from llmaug.testing.fake_openai import FakeOpenAIServer
from llmaug.testing.scripted import question_responder, run_settings

SEEDS = 54  # TREC-6 at 1%, seed 0
LABELS = 6


def plan_of(server: FakeOpenAIServer | None = None, probe: int = 0, **settings):
    base = run_settings(server) if server is not None else {"dataset": "trec6", "fraction": 0.01, "student": "tfidf"}
    options = {"method_options": settings.pop("method_options", {})}  # before the shorthands that go into it
    return make_plan(load_config(None, {**options, **base, **settings}), probe=probe)


def rows(plan) -> list[tuple[int, str, int, bool]]:
    return [(r.round, r.stage, r.requests, r.exact) for r in plan.rows]


def test_llm2llm_is_bounded_by_rounds_seeds_per_error_and_attempts():
    plan = plan_of(method="llm2llm", rounds=2, per_error=2, method_options={"max_attempts": 3})
    assert rows(plan) == [(0, "round 0: generating", SEEDS * 2 * 3, False), (1, "round 1: generating", SEEDS * 2 * 3, False)]
    assert plan.requests == 2 * SEEDS * 2 * 3 and not plan.exact
    assert plan.completion_bound == plan.requests * 64


def test_per_request_asks_for_k_examples_in_fewer_requests():
    plan = plan_of(method="llm2llm", rounds=1, per_error=5, method_options={"per_request": 3, "max_attempts": 1})
    assert plan.requests == SEEDS * 2  # 3 + 2 per wrong seed


def test_promptmix_generation_is_exact_and_relabelling_bounded():
    plan = plan_of(method="promptmix", per_class=2, method_options={"cycles": 2, "per_cycle": 3})
    mix = 2 * 3 * LABELS
    assert rows(plan) == [(0, "promptmix: mixed generation", mix, True), (0, "promptmix: relabelling", mix, False)]


def test_one_pass_baselines_are_exact():
    assert rows(plan_of(method="paraphrase", method_options={"per_example": 2})) == [(0, "paraphrase: generating", SEEDS * 2, True)]
    assert rows(plan_of(method="zerogen", method_options={"per_label": 4})) == [(0, "zerogen: generating", LABELS * 4, True)]
    assert plan_of(method="none").requests == 0


def test_s3_plans_every_step():
    plan = plan_of(method="s3", method_options={"per_label": 3, "rounds": 1})
    assert [(r.stage, r.requests, r.exact) for r in plan.rows] == [
        ("s3: writing rationales", LABELS, True), ("s3: seed synthesis", LABELS * 3, True),
        ("s3: error extrapolation, round 0", SEEDS, False)]


def test_msp_plans_its_teacher_requests_and_stops_at_its_local_generator():
    plan = plan_of(method="msp", dataset="trec6", per_class=2, fraction=None)
    assert plan.requests == 0  # TREC-6 ships label descriptions: the teacher is never asked
    assert any("works locally" in note for note in plan.notes)


def test_the_plan_makes_no_call_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with FakeOpenAIServer(question_responder) as server:
        plan = plan_of(server, rounds=2)
        assert server.requests == 0
    assert plan.requests > 0 and not any(tmp_path.iterdir())


def test_the_bound_holds_for_a_real_run_and_the_probe_gives_expected_values(tmp_path):
    from llmaug.session import resolve_run_config, start_run
    from rich.console import Console

    settings = {"rounds": 2, "max_eval": 50}
    with FakeOpenAIServer(question_responder) as server:
        plan = plan_of(server, probe=6, **settings)
        assert server.requests == 6
        server.reset_log()
        config = resolve_run_config(None, {**run_settings(server), **settings, "out": str(tmp_path / "run")}, {}, None)
        result = start_run(config, Console(quiet=True))
    real = {r.round: r for r in result.rounds}
    for row in plan.rows:
        assert real[row.round].teacher_requests <= row.requests
        assert real[row.round].completion_tokens <= row.completion_bound
        assert real[row.round].prompt_tokens <= row.prompt_tokens * 1.05  # calibrated by the probe
    spent = sum(r.teacher_requests for r in result.rounds)
    assert plan.probe["requests"] == 6 and plan.wall_seconds is not None
    assert abs(plan.expected("expected_requests") - spent) <= 0.25 * spent
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in result.rounds)
    expected = plan.expected("expected_prompt_tokens") + plan.expected("expected_completion")
    assert abs(expected - tokens) <= 0.25 * tokens


def test_cost_uses_the_price_table_and_the_batch_discount():
    plan = plan_of(teacher="openai:gpt-4o-mini-2024-07-18", method="paraphrase")
    assert (plan.price.prompt, plan.price.completion) == (0.15, 0.60)
    assert plan.cost_bound() == pytest.approx((plan.prompt_tokens * 0.15 + plan.completion_bound * 0.60) / 1e6)
    batched = plan_of(teacher="openai:gpt-4o-mini", method="paraphrase", teacher_options={"batch": True})
    assert batched.cost_bound() == pytest.approx(plan.cost_bound() / 2)
    assert "Batch API: 50% off" in batched.price_source


def test_the_configs_price_wins_and_unknown_models_have_no_cost():
    plan = plan_of(teacher="openai:gpt-4o-mini", method="paraphrase", price={"prompt": 1.0, "completion": 2.0})
    assert plan.price_source == "the config's price" and plan.price.completion == 2.0
    unknown = plan_of(teacher="openai-compatible:http://127.0.0.1:9/v1@my-model", method="paraphrase")
    assert unknown.price is None and unknown.cost_bound() is None


def test_the_embedded_teacher_counts_with_its_own_tokenizer():
    from llmaug.teachers.embedded import EmbeddedBackend

    request = TeacherRequest.chat([{"role": "user", "content": "Write one new question about rivers."}])
    backend = EmbeddedBackend()
    backend._ensure_loaded()
    encoded = backend._encode_prompts([request])
    assert TokenCounter("embedded", "smollm2", {})(request) == int(encoded["attention_mask"].sum())


def test_the_cli_prints_the_table_and_exits_0(capsys, tmp_path, monkeypatch):
    from llmaug.testing.scripted import cli_exit_code as run_cli

    monkeypatch.chdir(tmp_path)
    assert run_cli(["plan", "--student", "tfidf", "--method", "paraphrase", "--teacher", "openai:gpt-4o-mini"]) == 0
    out = capsys.readouterr().out
    assert "paraphrase:" in out and "generating" in out and "total" in out and "$" in out and "gpt-4o-mini" in out
    assert run_cli(["run", "--dry-run", "--student", "tfidf", "--rounds", "1"]) == 0
    assert "round 0:" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_plan_to_dict_is_json():
    plan = plan_of(method="paraphrase")
    assert json.loads(json.dumps(plan.to_dict()))["total"]["requests"] == SEEDS
