"""A backend made of a plain Python function: for tests, dry runs, and teachers that are not LLMs."""

from __future__ import annotations

from collections.abc import Callable

from llmaug.teachers.base import TeacherRequest, TeacherResponse


class FunctionBackend:
    """`respond(request) -> str` answers each request; every call is logged in `self.requests`."""

    def __init__(self, respond: Callable[[TeacherRequest], str], identity: str = "function:scripted", batch_size: int = 8):
        self.respond = respond
        self.identity = identity
        self.batch_size = batch_size
        self.max_concurrency = 1
        self.requests: list[TeacherRequest] = []

    async def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        responses = []
        for request in requests:
            self.requests.append(request)
            text = self.respond(request)
            prompt_tokens = sum(len(m.content.split()) for m in request.messages)
            responses.append(TeacherResponse(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(text.split())))
        return responses

    async def aclose(self) -> None:
        return None
