"""The Teacher's dispatch under retries and failures: back-offs do not hold slots, failures leave nothing running."""

from __future__ import annotations

import asyncio

import pytest

from llmaug.errors import TeacherError
from llmaug.teachers import Teacher, TeacherRequest
from llmaug.teachers.base import TeacherResponse
from llmaug.teachers.openai_compat import PENDING_PER_SLOT, OpenAICompatibleBackend


def ask(text: str) -> TeacherRequest:
    return TeacherRequest.chat([{"role": "user", "content": text}])


class BackingOffBackend:
    """One request in flight at a time; the request "slow" sleeps (as in a retry back-off) until three others
    have been answered, which can only happen if the Teacher hands over more than one request at once."""

    identity = "test:backing-off"
    batch_size = 1
    max_concurrency = 1
    max_pending = 4

    def __init__(self):
        self.answered: list[str] = []
        self._others_done = asyncio.Event()

    async def generate(self, requests):
        text = requests[0].messages[-1].content
        if text == "slow":
            await asyncio.wait_for(self._others_done.wait(), timeout=5)
        else:
            self.answered.append(text)
            if len(self.answered) == 3:
                self._others_done.set()
        return [TeacherResponse(text=f"answer to {text}")]

    async def aclose(self):
        return None


def test_a_request_waiting_out_a_back_off_does_not_hold_back_the_others():
    backend = BackingOffBackend()
    with Teacher(backend) as teacher:
        responses = teacher.generate([ask("slow"), ask("a"), ask("b"), ask("c")])
    assert [r.text for r in responses] == ["answer to slow", "answer to a", "answer to b", "answer to c"]
    assert backend.answered == ["a", "b", "c"]


def test_the_http_backend_lets_the_teacher_hand_over_more_requests_than_it_sends_at_once():
    backend = OpenAICompatibleBackend("http://127.0.0.1:9/v1", "m", api_key_env="LLMAUG_NO_SUCH_KEY", concurrency=3)
    assert backend.max_concurrency == 3 and backend.max_pending == 3 * PENDING_PER_SLOT


class FailingBackend:
    """Request "boom" fails as a rejected key would; the others take a while and record that they finished."""

    identity = "test:failing"
    batch_size = 1
    max_concurrency = 8

    def __init__(self):
        self.finished: list[str] = []

    async def generate(self, requests):
        text = requests[0].messages[-1].content
        if text == "boom":
            await asyncio.sleep(0.05)
            raise TeacherError("the teacher rejected the API key")
        await asyncio.sleep(0.3)
        self.finished.append(text)
        return [TeacherResponse(text=text)]

    async def aclose(self):
        return None


def test_when_one_request_fails_the_others_are_cancelled_not_left_running():
    backend = FailingBackend()
    teacher = Teacher(backend)
    with pytest.raises(TeacherError):
        teacher.generate([ask("boom")] + [ask(f"q{i}") for i in range(7)])
    leftover = [task for task in asyncio.all_tasks(teacher._loop) if not task.done()]
    teacher._loop.run_until_complete(asyncio.sleep(0.5))  # a task still scheduled would finish now
    teacher.close()
    assert leftover == [] and backend.finished == []
