"""Helpers of the review tests: a real LLM2LLM run made with the tf-idf student and a scripted teacher (some of whose
outputs the filters reject, and some of which carry HTML), and a plain HTTP client for the app."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console

from llmaug.config import validate_config
from llmaug.methods import LLM2LLM
from llmaug.review.server import TOKEN_HEADER, BackgroundServer
from llmaug.runner import run
from llmaug.session import load_run_data, task_info
from llmaug.teachers import Teacher
from llmaug.teachers.function import FunctionBackend

KEY_ENV = "LLMAUG_REVIEW_TEST_KEY"
HOSTILE = "Which <script>window.__xss = 1</script> <b>bold</b> river"
_WORDS = ("river", "planet", "author", "country", "city", "battle", "song", "inventor", "mountain", "animal", "coin")


def scripted_answer(request) -> str:
    """One teacher output per request, fixed by its prompt and sample index: mostly new questions, some assistant
    chatter (rejected: not a question) and some with HTML in them (accepted: they are questions)."""
    digest = hashlib.sha256(f"{request.messages[-1].content}|{request.sample_index}".encode()).digest()
    if digest[0] % 5 == 0:
        return "Sure! I'd be happy to help. Let me know if you need more."
    words = [_WORDS[digest[i] % len(_WORDS)] for i in (1, 2, 3)]
    opener = HOSTILE if digest[0] % 5 == 1 else f"What {words[0]}"
    return f"{opener} is known for the {words[1]} of the {words[2]} number {digest[4]} ?"


def make_llm2llm_run(out: Path) -> Path:
    """A finished LLM2LLM run on 1% of TREC-6 (54 seeds), 2 rounds, eval capped at 100, with its config.yaml."""
    config = validate_config({
        "method": "llm2llm", "dataset": "trec6", "fraction": 0.01, "max_eval": 100, "student": "tfidf", "rounds": 2,
        "teacher": "openai:gpt-4o-mini", "api_key_env": KEY_ENV, "out": str(out),
    })
    seed, test = load_run_data(config)
    run(LLM2LLM(rounds=2), seed, teacher=Teacher(FunctionBackend(scripted_answer)), student="tfidf", eval=test,
        out=out, task=task_info(config, seed), config=config, select="last", console=Console(file=io.StringIO()))
    return out


# ------------------------------------------------------------------------------------------------- HTTP


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)


class Http:
    """A plain HTTP client for one server: paths are sent as given (no normalising of `..`), and POSTs carry the
    review token header unless told otherwise."""

    def __init__(self, base_url: str, token: str):
        parts = urlsplit(base_url)
        self.host, self.port, self.token = parts.hostname, parts.port, token

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def get(self, path: str, headers: dict | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict | list[tuple[str, str]], headers: dict | None = None, token: bool = True) -> Reply:
        from urllib.parse import urlencode

        sent = {"Content-Type": "application/x-www-form-urlencoded"}
        if token:
            sent[TOKEN_HEADER] = self.token
        sent.update(headers or {})
        return self.request("POST", path, body=urlencode(form), headers=sent)


@dataclass
class Served:
    server: BackgroundServer
    http: Http
    run_dir: Path

    @property
    def base(self) -> str:
        """The path prefix of the (single) run's pages."""
        return f"/runs/{next(iter(self.server.review.keys))}/"


def serve(root: Path, host: str = "127.0.0.1"):
    server = BackgroundServer(root, host).start()
    return Served(server, Http(server.url, server.review.token), root)
