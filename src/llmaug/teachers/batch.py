"""The OpenAI Batch API for the HTTP teacher (`batch: true`, `llmaug run --batch`): a round's requests are written
as JSONL, uploaded (`POST /files`, purpose "batch"), run as one batch (`POST /batches`, window 24 h) and polled
(`GET /batches/ID`) until it ends; the output and error files are then read back into one response per request,
which the `Teacher` caches like any other answer. OpenAI charges half its price for batched tokens.

The batch id is recorded in `batches.json` in the run directory the moment the batch exists, keyed by a
fingerprint of its exact requests: a run stopped while waiting (Ctrl-C, a crash, a closed laptop) and resumed
polls that batch again instead of paying for a second one. Lines that failed, and those an expired batch never
ran, come back as failed requests (never cached): the next resume asks for them, in a new batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path

import aiohttp

from llmaug.atomic import write_json_atomic
from llmaug.errors import TeacherError
from llmaug.teachers.base import TeacherRequest, TeacherResponse

log = logging.getLogger(__name__)

LEDGER = "batches.json"
ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"
ENDED = ("completed", "failed", "expired", "cancelled")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class BatchClient:
    """Runs one list of requests as one batch on the backend's server (its URL, key, session and request bodies)."""

    max_requests = 50_000  # OpenAI's limit per batch

    def __init__(self, backend, poll_seconds: float):
        self.backend = backend
        self.poll_seconds = poll_seconds
        self.ledger_dir: Path | None = None  # the run directory; None: batch ids are kept in memory only
        self._memory: dict[str, dict] = {}
        self.created = 0  # batches this client created (a resumed one is not created again)

    async def run(self, requests: list[TeacherRequest], progress=None) -> list[TeacherResponse]:
        bodies = [await self.backend.request_body(request) for request in requests]
        lines = [{"custom_id": f"request-{i}", "method": "POST", "url": ENDPOINT, "body": body} for i, body in enumerate(bodies)]
        content = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
        fingerprint = hashlib.sha256(content.encode()).hexdigest()
        batch_id = self._recorded(fingerprint)
        if batch_id is None:
            batch_id = await self._create(content)
            self._record(fingerprint, batch_id, len(lines))
        else:
            log.warning("picking up batch %s, created earlier for these requests (%s)", batch_id, LEDGER)
        batch = await self._wait(batch_id, progress)
        self._record(fingerprint, batch_id, len(lines), batch["status"])
        answers = await self._answers(batch, requests)
        missing = f"batch {batch_id} ended {batch['status']} without a result for this request"
        return [answers.get(f"request-{i}") or _failed(missing) for i in range(len(requests))]

    # ----- the ledger of batches in the run directory -----

    def _ledger(self) -> dict[str, dict]:
        if self.ledger_dir is None:
            return self._memory
        try:
            return json.loads((self.ledger_dir / LEDGER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _recorded(self, fingerprint: str) -> str | None:
        """A batch made earlier for exactly these requests, unless it ended without running them."""
        entry = self._ledger().get(fingerprint)
        return entry["id"] if entry and entry.get("status") not in ("failed", "expired", "cancelled") else None

    def _record(self, fingerprint: str, batch_id: str, requests: int, status: str = "pending") -> None:
        ledger = self._ledger()
        ledger[fingerprint] = {"id": batch_id, "requests": requests, "status": status, "at": round(time.time())}
        if self.ledger_dir is not None:
            write_json_atomic(self.ledger_dir / LEDGER, ledger)

    # ----- the API -----

    async def _create(self, content: str) -> str:
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        form.add_field("file", content.encode(), filename="llmaug-batch.jsonl", content_type="application/jsonl")
        uploaded = await self._call("POST", "files", data=form)
        batch = await self._call("POST", "batches", json={"input_file_id": uploaded["id"], "endpoint": ENDPOINT,
                                                         "completion_window": WINDOW})
        self.created += 1
        log.info("batch %s created (%d bytes of requests)", batch["id"], len(content))
        return batch["id"]

    async def _wait(self, batch_id: str, progress) -> dict:
        while True:
            batch = await self._call("GET", f"batches/{batch_id}")
            counts = batch.get("request_counts") or {}
            if progress is not None:
                progress(int(counts.get("completed") or 0) + int(counts.get("failed") or 0))
            if batch.get("status") == "failed":
                errors = (batch.get("errors") or {}).get("data") or [{}]
                raise TeacherError(f"the Batch API refused batch {batch_id}: {errors[0].get('message') or 'no reason given'}",
                                   self.backend.base_url)
            if batch.get("status") in ENDED:
                return batch
            await asyncio.sleep(self.poll_seconds)

    async def _answers(self, batch: dict, requests: list[TeacherRequest]) -> dict[str, TeacherResponse]:
        answers: dict[str, TeacherResponse] = {}
        for file_id in (batch.get("output_file_id"), batch.get("error_file_id")):
            if not file_id:
                continue
            text = await self._call("GET", f"files/{file_id}/content", raw=True)
            for line in text.splitlines():
                if line.strip():
                    custom_id, response = self._answer(json.loads(line), requests)
                    answers.setdefault(custom_id, response)
        return answers

    def _answer(self, line: dict, requests: list[TeacherRequest]) -> tuple[str, TeacherResponse]:
        from llmaug.teachers.openai_compat import TransientFailure

        custom_id = str(line.get("custom_id"))
        index = int(custom_id.removeprefix("request-")) if custom_id.removeprefix("request-").isdigit() else -1
        response, error = line.get("response") or {}, line.get("error")
        if error or not 0 <= index < len(requests):
            reason = f"{error.get('code') or 'error'}: {error.get('message') or 'no detail'}" if isinstance(error, dict) else "unknown request"
            return custom_id, _failed(f"batch line failed: {reason}")
        status, body = response.get("status_code"), response.get("body")
        if status != 200:
            detail = ((body or {}).get("error") or {}).get("message") if isinstance(body, dict) else None
            return custom_id, _failed(f"batch line failed: HTTP {status}: {detail or 'no detail'}")
        try:
            return custom_id, self.backend.parse_completion(body, requests[index])
        except TransientFailure as failure:
            return custom_id, _failed(f"batch line failed: {failure.reason}")

    async def _call(self, method: str, path: str, raw: bool = False, **kwargs):
        """One API call, retried like a completion on 429, 5xx and dropped connections."""
        backend = self.backend
        url = f"{backend.base_url}/{path}"
        for attempt in range(backend.max_retries + 1):
            try:
                async with backend._session.request(method, url, proxy=backend._proxy, **kwargs) as reply:
                    payload = await reply.read()
                    status = reply.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                if attempt == backend.max_retries:
                    raise TeacherError(f"cannot reach the Batch API at {url}: {type(err).__name__}: {err}") from None
            else:
                if status == 200:
                    return payload.decode("utf-8", errors="replace") if raw else json.loads(payload)
                if status == 404 and path in ("files", "batches"):
                    raise TeacherError(backend.missing_path(f"{method} {url}") + "; this server has no Batch API: drop --batch")
                if status not in RETRY_STATUSES or attempt == backend.max_retries:
                    raise TeacherError(f"the Batch API at {url} answered HTTP {status}: {payload[:300].decode('utf-8', 'replace')}")
            await asyncio.sleep(min(backend.max_backoff, backend.backoff * 2 ** attempt))
        raise AssertionError("unreachable")  # pragma: no cover


def _failed(reason: str) -> TeacherResponse:
    return TeacherResponse(text="", finish_reason="error", error=reason)
