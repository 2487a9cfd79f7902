"""`ray:SPEC`: the in-process backend SPEC names (`embedded`, `embedded:gemma3-270m`, `llama-cpp:/m.gguf`, ...)
run as `replicas` Ray actors, each holding its own copy of the model.

    Teacher("ray:embedded", replicas=4, num_cpus=2, batch_size=8, cache="cache.sqlite")
    Teacher(RayBackend(lambda: MyBackend(), replicas=2))      # Python: any backend factory

It is a `Backend` like any other, so the driver's `Teacher` keeps what it owns: the per-request cache, the budget
and batches formed in request order. Each batch goes whole to one idle actor, and the wrapped backend seeds its
sampling from the batch (as the embedded one does), so outputs equal the local backend's batch for batch, and
the cache key is the wrapped backend's own identity: a cache written locally serves a Ray run and the reverse.

An actor that dies mid-batch (killed, its node gone) loses nothing that was recorded: the batch's answers are
only recorded when it returns, so the batch is sent again, whole, to another actor, and the dead one is replaced
(up to `max_restarts` times per replica) on whichever node Ray finds room. Actors start on the first batch that
the cache cannot answer: a fully cached rerun starts none. The driver builds the wrapped backend once, without
loading its model, to learn its identity and batch size, so the backend's package must import on the driver too.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, create_model

from llmaug.errors import TeacherError
from llmaug.options import Options as OptionsModel
from llmaug.options import validate_options
from llmaug.teachers.base import Backend, TeacherRequest, TeacherResponse

COMPONENT = "teacher 'ray'"
IDLE_POLL_S = 0.02  # how often a batch waiting for an idle actor looks again
START_TIMEOUT_S = 300.0  # how long batches wait for the first actor to start before the teacher gives up


class RayOptions(OptionsModel):
    replicas: int = Field(2, ge=1, le=4096, description="Ray actors, each holding its own copy of the wrapped backend")
    num_cpus: float = Field(1, ge=0, description="CPUs Ray reserves for each actor (sets its torch/BLAS threads)")
    num_gpus: float = Field(0, ge=0, description="GPUs Ray reserves for each actor (fractions share a GPU)")
    spread: bool = Field(True, description="place the actors on as many nodes as possible (Ray's SPREAD strategy)")
    max_restarts: int = Field(3, ge=0, description="how often a replica whose actor died is replaced")


class RayBackend:
    """N actors of one wrapped backend behind the `Backend` protocol (see the module docstring)."""

    Options = RayOptions

    def __init__(self, backend: str | Callable[[], Backend], **options):
        if isinstance(backend, str):
            self.options = validate_options(options_for_spec_model(backend), options, COMPONENT)
            wrapped = {k: v for k, v in self.options.model_dump().items() if k not in RayOptions.model_fields}
            self._make_backend: Callable[[], Backend] = functools.partial(_backend_from_spec, backend, wrapped)
        else:
            self.options = validate_options(RayOptions, options, COMPONENT)
            self._make_backend = backend
        self._local = self._make_backend()  # never loads its model: its identity, batch size and label trust
        self.identity = self._local.identity
        self.batch_size = self._local.batch_size
        self.reliable_labels = getattr(self._local, "reliable_labels", True)
        self.slots = max(1, self._local.max_concurrency)  # batches one actor takes at once
        self.max_concurrency = self.options.replicas * self.slots
        self._ray = None
        self._lock = threading.Lock()  # the lists below change from the event loop and from Ray's callback threads
        self._replicas: list[_Replica] = []  # alive or starting
        self._idle: list[_Replica] = []  # started replicas, once per batch each may take now
        self._last_death = ""
        self._started_at = 0.0

    @classmethod
    def options_for_spec(cls, spec: str) -> type[BaseModel]:
        """The options of `ray:SPEC`: the Ray ones and the wrapped backend's, in one model."""
        from llmaug.teachers.spec import parse_spec

        return options_for_spec_model(parse_spec(spec).model)

    # ----- Backend -----

    async def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        self._start()
        while True:  # until an actor answers; each failure costs a replica a restart, so this ends
            replica = await self._take_idle()
            try:
                responses = await asyncio.wrap_future(replica.actor.generate.remote(requests).future())
            except self._ray.exceptions.RayActorError as err:  # the actor died, or its node did, mid-batch
                self._dead(replica, err)
                continue
            except self._ray.exceptions.RayTaskError as err:  # the wrapped backend raised: its error, as it is
                self._free(replica)
                from llmaug.distributed.cluster import task_error_cause

                raise task_error_cause(err) from None
            self._free(replica)
            return responses

    async def aclose(self) -> None:
        with self._lock:
            replicas, self._replicas, self._idle = self._replicas, [], []
        for replica in replicas:
            self._ray.kill(replica.actor, no_restart=True)
        await self._local.aclose()

    # ----- the actors -----

    def nodes(self, timeout: float = START_TIMEOUT_S) -> list[str]:
        """The Ray node of each replica, once all have started (or `timeout` has passed: those that have)."""
        self._start()
        deadline = time.monotonic() + timeout
        while any(replica.node is None for replica in self._replicas) and time.monotonic() < deadline:
            self._replace_failed_starts()
            time.sleep(IDLE_POLL_S)
        return [replica.node for replica in self._replicas if replica.node is not None]

    def _start(self) -> None:
        if self._ray is not None:
            return
        from llmaug.distributed.cluster import connect

        self._ray = connect(where="--teacher")
        self._started_at = time.monotonic()
        for index in range(self.options.replicas):
            self._launch(index, restarts=0)

    def _launch(self, index: int, restarts: int) -> None:
        """A new actor; it takes batches once Ray has placed and started it (a replica that finds no room never
        does, so it holds no batch hostage)."""
        actor = self._ray.remote(TeacherReplica).options(
            num_cpus=self.options.num_cpus, num_gpus=self.options.num_gpus, max_restarts=0,
            max_concurrency=self.slots, scheduling_strategy="SPREAD" if self.options.spread else "DEFAULT",
        ).remote(self._make_backend)
        replica = _Replica(index, actor, restarts)
        with self._lock:
            self._replicas.append(replica)
        actor.node.remote().future().add_done_callback(lambda started: self._started(replica, started))

    def _started(self, replica: _Replica, started) -> None:
        # In one of Ray's own threads: record, never call Ray from here (ray.kill would wait on this very thread).
        try:
            node = started.result()
        except BaseException as err:  # the actor died before it started (its node went, its backend raised)
            replica.failure = err
            return
        with self._lock:
            if replica in self._replicas:
                replica.node = node
                self._idle.extend([replica] * self.slots)

    def _replace_failed_starts(self) -> None:
        with self._lock:
            failed = [replica for replica in self._replicas if replica.failure is not None]
        for replica in failed:
            self._dead(replica, replica.failure)

    def _free(self, replica: _Replica) -> None:
        with self._lock:
            if replica in self._replicas:
                self._idle.append(replica)

    def _dead(self, dead: _Replica, error: BaseException) -> None:
        """Drop a dead actor's replica; a new actor takes its place while it has restarts left."""
        with self._lock:
            if dead not in self._replicas:
                return  # another batch on the same actor already saw it die
            self._replicas.remove(dead)
            self._idle = [replica for replica in self._idle if replica is not dead]
            self._last_death = _last_line(error)
            if getattr(error, "actor_init_failed", False):
                self._last_death = f"the actor could not start: {self._last_death}"
                dead.restarts = self.options.max_restarts  # the next one would fail the same way
        self._ray.kill(dead.actor, no_restart=True)
        if dead.restarts < self.options.max_restarts:
            self._launch(dead.index, dead.restarts + 1)

    async def _take_idle(self) -> _Replica:
        # The Teacher dispatches at most max_concurrency batches, as many as the entries of _idle once every
        # replica has started; until then, or while a dead actor's batch waits for another, batches wait here.
        while True:
            self._replace_failed_starts()
            with self._lock:
                if self._idle:
                    return self._idle.pop(0)
                if not self._replicas:
                    raise TeacherError(f"every Ray teacher replica died; the last: {self._last_death}", "--teacher")
                waiting_for_the_first = all(replica.node is None for replica in self._replicas)
            if waiting_for_the_first and time.monotonic() - self._started_at > START_TIMEOUT_S:
                raise TeacherError(f"no Ray teacher actor started within {START_TIMEOUT_S:.0f} s: the cluster has no "
                                   f"room for an actor with num_cpus={self.options.num_cpus:g}, "
                                   f"num_gpus={self.options.num_gpus:g}", "--teacher")
            await asyncio.sleep(IDLE_POLL_S)


class _Replica:
    def __init__(self, index: int, actor, restarts: int = 0):
        self.index = index
        self.actor = actor
        self.restarts = restarts
        self.node: str | None = None  # set once the actor has started
        self.failure: BaseException | None = None  # set when it died before it started


class TeacherReplica:
    """One Ray actor: a copy of the wrapped backend, loading its model on its first batch."""

    def __init__(self, make_backend: Callable[[], Backend]):
        import os

        from llmaug.distributed.cluster import WORKER_ENV

        for key, value in WORKER_ENV.items():
            os.environ.setdefault(key, value)
        self.backend = make_backend()

    async def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        return await self.backend.generate(requests)

    def node(self) -> str:
        from llmaug.distributed.cluster import node_id

        return node_id()

    def pid(self) -> int:
        import os

        return os.getpid()


def options_for_spec_model(wrapped_spec: str) -> type[BaseModel]:
    """Ray's options plus those of the backend `wrapped_spec` names (e.g. embedded's batch_size, threads)."""
    from llmaug import registry
    from llmaug.teachers.spec import parse_spec

    parsed = parse_spec(wrapped_spec)
    if parsed.kind == "ray":
        raise TeacherError("ray: wraps another backend once; write ray:embedded, not ray:ray:embedded", "--teacher")
    if parsed.base_url is not None:
        raise TeacherError(f"an HTTP teacher ({parsed.kind}) is already concurrent and runs no model here; use it "
                           "without ray: (ray: is for in-process models such as embedded and llama-cpp)", "--teacher")
    wrapped = registry.TEACHERS[parsed.kind].options_model
    clash = set(wrapped.model_fields) & set(RayOptions.model_fields)
    if clash:  # a programming error, not the user's: a backend must not reuse the names of Ray's options
        raise TypeError(f"teacher {parsed.kind!r} has options named like Ray's: {sorted(clash)}")
    return _combined(RayOptions, wrapped)


@functools.cache
def _combined(ray_options: type[BaseModel], wrapped: type[BaseModel]) -> type[BaseModel]:
    return create_model(f"Ray{wrapped.__qualname__.replace('.', '')}", __base__=(ray_options, wrapped))


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def _backend_from_spec(spec: str, options: dict[str, Any]) -> Backend:
    from llmaug.teachers.spec import backend_from_spec

    return backend_from_spec(spec, **options)
