"""`ResponseCache` and the request cache key."""

from __future__ import annotations

import json
import sqlite3

import pytest

from llmaug.teachers.base import GenerationParams, TeacherRequest, TeacherResponse
from llmaug.teachers.cache import ResponseCache


@pytest.fixture
def cache(tmp_path):
    opened = ResponseCache(tmp_path / "nested" / "cache.sqlite")
    yield opened
    opened.close()


def response(i: int) -> TeacherResponse:
    return TeacherResponse(text=f"answer {i}", finish_reason="stop", prompt_tokens=i, completion_tokens=2 * i)


def test_put_and_get_many_round_trip_past_the_query_chunk(cache):
    items = [(f"key-{i}", response(i)) for i in range(1200)]  # more than one 500-key SELECT
    cache.put_many(items)

    found = cache.get_many([key for key, _ in items] + ["missing"])

    assert len(cache) == 1200 and "missing" not in found
    assert found["key-1199"] == response(1199).model_copy(update={"cached": True})
    assert all(found[key].text == value.text and found[key].cached for key, value in items)


def test_entries_survive_reopening_and_cached_flag_is_not_stored(tmp_path):
    path = tmp_path / "cache.sqlite"
    first = ResponseCache(path)
    first.put_many([("k", response(1).model_copy(update={"cached": True}))])
    first.close()

    reopened = ResponseCache(path)
    assert reopened.get_many(["k"])["k"].text == "answer 1"
    reopened.close()
    with sqlite3.connect(path) as db:
        [(raw,)] = db.execute("SELECT response FROM responses").fetchall()
    assert "cached" not in json.loads(raw)


def test_put_many_replaces_and_ignores_empty_batches(cache):
    cache.put_many([])
    cache.put_many([("k", response(1))])
    cache.put_many([("k", response(2))])
    assert len(cache) == 1 and cache.get_many(["k"])["k"].text == "answer 2"


@pytest.mark.parametrize(
    "raw",
    ['{"text": "torn in ha', "not json at all", "null", '{"no_text": 1}', '{"text": 5, "finish_reason": []}',
     b"\xff\xfe\x00binary", 42],
)
def test_a_row_that_does_not_decode_is_a_miss(cache, raw):
    cache.put_many([("good", response(1))])
    with sqlite3.connect(cache.path) as db:
        db.execute("INSERT INTO responses VALUES (?, ?, 0)", ("bad", raw))

    found = cache.get_many(["good", "bad"])

    assert list(found) == ["good"]


BASE = TeacherRequest.chat([{"role": "user", "content": "Write a review."}])
VARIANTS = {
    "messages": TeacherRequest.chat([{"role": "user", "content": "Write a poem."}]),
    "role": TeacherRequest.chat([{"role": "system", "content": "Write a review."}]),
    "temperature": BASE.model_copy(update={"params": GenerationParams(temperature=0.1)}),
    "seed": BASE.model_copy(update={"params": GenerationParams(seed=1)}),
    "max_tokens": BASE.model_copy(update={"params": GenerationParams(max_tokens=64)}),
    "stop": BASE.model_copy(update={"params": GenerationParams(stop=("\n",))}),
    "sample_index": BASE.model_copy(update={"sample_index": 1}),
    "choices": BASE.model_copy(update={"choices": ("positive", "negative")}),
    "choice order": BASE.model_copy(update={"choices": ("negative", "positive")}),
}


def test_cache_key_covers_everything_that_changes_the_answer():
    keys = {name: request.cache_key("backend-a") for name, request in VARIANTS.items()}
    keys["base"] = BASE.cache_key("backend-a")
    keys["backend identity"] = BASE.cache_key("backend-b")
    assert len(set(keys.values())) == len(keys)


def test_cache_key_is_stable_for_equal_requests():
    twin = TeacherRequest.chat([{"role": "user", "content": "Write a review."}], params=GenerationParams())
    assert twin.cache_key("backend-a") == BASE.cache_key("backend-a")
    assert len(BASE.cache_key("backend-a")) == 64
