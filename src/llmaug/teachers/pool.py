"""The oracle pool teacher: it answers a generation request with a real, unused training row of the requested label.

With it a benchmark measures what a targeting policy could gain on a dataset if the teacher were perfect, before
any LLM is paid. Mode "similar" follows what each request asks for (`RequestTarget.ask`): the unused real row most
like the example it is about ("similar", cosine similarity of sentence embeddings), the unused row of its label
farthest from every row of that label the data already holds ("diverse", farthest-first), or the unused row of its
label nearest the centroid of the label the student confused it with ("boundary"). The baselines: mode "random"
gives a random unused row of the requested label, mode "prior" a random row of a label drawn from the seed set's
class distribution (the rows in `exclude`), whatever the request's label. Numbers obtained with it are oracle
results, an upper bound for the strategy, never a method's own.

    Teacher("pool:trec6:similar")                               # spec: pool:<bundled name | folder>[:similar|:random|:prior]
    PoolBackend("/data/banking77", mode="random", exclude=seed)  # never hands out the seed rows

What a request asks for: `TeacherRequest.target` (label, and the example to resemble), which LLM2LLM and the
paraphrase / ZeroGen baselines fill. A request without it is read from its last user message, in one way only:
the example is the longest pool row (seed rows included) whose text occurs verbatim in it, and the label is that
row's; failing that, the one pool label that appears in double quotes ("LOC"). If neither tells the label, the
request raises `TeacherError`: an oracle that guessed would not be one.

The answer is the row's text; a pair row is two lines, "First text: ..." and "Second text: ...". A row is handed
out at most once per backend, and never one equal to the example shown or listed in `exclude`. A request without
an example to resemble (ZeroGen) gets a random row even in "similar" mode. When a label has no row left the
response is empty with finish_reason "error".

Choices depend only on the order of the requests, so a rerun without the response cache replays the same
answers. A cached run that is resumed would serve its cached answers without this pool knowing it gave them, so
pool teachers run without the cache (`llmaug bench` does so; pool answers cost nothing).
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from llmaug.device import DEVICE
from llmaug.data.example import Example
from llmaug.errors import TeacherError
from llmaug.options import Options as OptionsModel
from llmaug.options import validate_options
from llmaug.teachers.base import TeacherRequest, TeacherResponse

log = logging.getLogger(__name__)

MODES = ("similar", "random", "prior")
EXHAUSTED = "error"  # finish reason when a label has no unused row left: no output, like a failed request

Encoder = Callable[[list[str]], np.ndarray]


class PoolBackend:
    """A teacher backend that hands out real rows of `source` (a bundled dataset name, a folder with
    train.jsonl, a data file, or a list of examples). `source` may end in ":similar" or ":random" (the spec form).

    `exclude`: rows never to hand out (the seed set): examples, texts, or a data file of them. `encoder`:
    "minilm" (all-MiniLM-L6-v2, the library's sentence encoder), "tfidf" (fast, for tests), or a function from
    texts to unit-norm rows. `embeddings_cache`: a folder where the pool's embeddings are kept between processes.
    """

    max_concurrency = 1

    class Options(OptionsModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)

        mode: Literal["similar", "random", "prior"] | None = Field(
            None, description="similar: the row each request asks for (like, unlike or near the confused label); random: "
                              "any unused row of the label; prior: a row of a label drawn from the seed distribution")
        exclude: str | list[Any] = Field(
            default_factory=list, description="rows never to hand out (the seed set): a data file, or (Python) examples or texts")
        encoder: Literal["minilm", "tfidf"] | Callable[[list[str]], Any] = Field(
            "minilm", description="similarity: minilm (MiniLM embeddings), tfidf, or (Python) a function from texts to unit rows")
        seed: int = Field(0, description="random seed of the random mode")
        name: str | None = Field(None, description="the pool's name in the teacher identity")
        embeddings_cache: str | None = Field(None, description="folder keeping the pool's MiniLM embeddings between processes")
        batch_size: int = Field(64, ge=1, description="requests answered together")
        device: DEVICE = Field("auto", description="torch device of the MiniLM encoder: auto, cpu, cuda or cuda:N")

    def __init__(self, source: str | Path | Sequence[Example], mode: str | None = None, **options):
        opts = validate_options(self.Options, {"mode": mode, **options}, "teacher 'pool'")
        exclude, encoder, seed, name = opts.exclude, opts.encoder, opts.seed, opts.name
        embeddings_cache, batch_size = opts.embeddings_cache, opts.batch_size
        source, spec_mode = _split_mode(source)
        mode = opts.mode or spec_mode or "similar"
        self.rows, default_name = _load_rows(source)
        self.mode = mode
        self.identity = f"pool:{name or default_name}:{mode}"
        self.batch_size = batch_size
        self.served = 0
        self.exhausted_requests = 0
        self._encoder = encoder
        self._device = opts.device
        self._embeddings_cache = Path(embeddings_cache) if embeddings_cache is not None else None
        self._rng = random.Random(seed)
        self._labels = sorted({row.label for row in self.rows if row.label is not None})
        self._by_label: dict[str, list[int]] = {}
        for index, row in enumerate(self.rows):
            if row.label is not None:
                self._by_label.setdefault(row.label, []).append(index)
        self._index_of_key = {_key(row.text, row.text_pair): i for i, row in enumerate(self.rows)}
        self._used: set[int] = set()
        excluded = list(_excluded(exclude))
        for item in excluded:
            self._mark_used(_key(item.text, item.text_pair) if isinstance(item, Example) else item)
        self._prior = Counter(item.label for item in excluded if isinstance(item, Example) and item.label in self._by_label)
        self._vectors = None  # the pool's embeddings (dense, or sparse for tf-idf), made on first need
        self._encode: Encoder | None = None

    def __repr__(self) -> str:
        return f"PoolBackend({self.identity!r}, rows={len(self.rows)}, unused={self.unused})"

    @property
    def unused(self) -> int:
        return len(self.rows) - len(self._used)

    async def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        wanted = [self._target_of(request) for request in requests]
        queries = self._query_vectors([like if self.mode == "similar" and _ask(request) == "similar" else None
                                       for request, (_, like) in zip(requests, wanted)])
        return [self._answer(request, label, like, query)
                for request, (label, like), query in zip(requests, wanted, queries, strict=True)]

    async def aclose(self) -> None:
        return None

    # ----- one request -----

    def _answer(self, request: TeacherRequest, label: str, like: str | None, query: np.ndarray | None) -> TeacherResponse:
        if like is not None:
            self._mark_used(like)
        if self.mode == "prior":
            label = self._prior_label()
        candidates = [i for i in self._by_label.get(label, []) if i not in self._used]
        prompt_tokens = sum(len(message.content.split()) for message in request.messages)
        if not candidates:
            self.exhausted_requests += 1
            if self.exhausted_requests == 1:
                log.warning("the pool has no unused row of label %r left; such requests get no output", label)
            return TeacherResponse(text="", finish_reason=EXHAUSTED, prompt_tokens=prompt_tokens,
                                   error=f"the pool has no unused row of label {label!r}")
        chosen = self._choose(request, label, candidates, query)
        self._used.add(chosen)
        self.served += 1
        text = _answer_text(self.rows[chosen])
        return TeacherResponse(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(text.split()))

    def _choose(self, request: TeacherRequest, label: str, candidates: list[int], query) -> int:
        ask = _ask(request) if self.mode == "similar" else "random"
        if ask == "similar" and query is not None:
            return self._most_similar(candidates, query)
        if ask == "diverse":
            return self._farthest(candidates, self._held(label))
        if ask == "boundary" and request.target.confused_with in self._by_label:
            return self._nearest_to_centroid(candidates, self._held(request.target.confused_with))
        return self._rng.choice(candidates)

    def _held(self, label: str) -> list[int]:
        """The rows of `label` the data holds: the seeds and the rows handed out so far."""
        return [i for i in self._by_label.get(label, []) if i in self._used]

    def _most_similar(self, candidates: list[int], query) -> int:
        scores = _similarities(self._vectors[candidates], query)
        return candidates[int(np.argmax(scores))]  # ties: the earliest row, so choices are reproducible

    def _farthest(self, candidates: list[int], held: list[int]) -> int:
        """Farthest-first: the candidate whose nearest held row is least similar to it."""
        if not held:
            return self._rng.choice(candidates)
        self._ensure_vectors()
        nearest = _dense(self._vectors[candidates] @ self._vectors[held].T).max(axis=1)
        return candidates[int(np.argmin(nearest))]

    def _nearest_to_centroid(self, candidates: list[int], held: list[int]) -> int:
        if not held:
            return self._rng.choice(candidates)
        self._ensure_vectors()
        centroid = np.asarray(self._vectors[held].mean(axis=0)).ravel()
        scores = _dense(self._vectors[candidates] @ centroid).ravel()
        return candidates[int(np.argmax(scores))]

    def _prior_label(self) -> str:
        """A label drawn from the seed set's class distribution (uniform over the pool's labels without seeds)."""
        labels = sorted(self._prior) or self._labels
        weights = [self._prior[label] for label in labels] if self._prior else None
        return self._rng.choices(labels, weights=weights)[0]

    def _target_of(self, request: TeacherRequest) -> tuple[str, str | None]:
        """(label, text to resemble) of a request: its `target`, else read from its last user message."""
        target = request.target
        if target is not None and target.label is not None:
            like = _key(target.like, target.like_pair) if target.like is not None else None
            return target.label, like
        prompt = _last_user_message(request)
        row = self._longest_row_in(prompt)
        if row is not None and row.label is not None:
            return row.label, _key(row.text, row.text_pair)
        quoted = [label for label in self._labels if f'"{label}"' in prompt]
        if len(quoted) == 1:
            return quoted[0], None
        raise TeacherError(
            "the pool teacher cannot tell which label a request asks for: it carries no target, shows no pool row "
            f"verbatim and quotes {len(quoted)} of the pool's labels; prompt starts {prompt[:80]!r}"
        )

    def _longest_row_in(self, prompt: str) -> Example | None:
        found = [row for row in self.rows if row.text and row.text in prompt
                 and (row.text_pair is None or row.text_pair in prompt)]
        return max(found, key=lambda row: len(row.text) + len(row.text_pair or ""), default=None)

    def _mark_used(self, key: str) -> None:
        index = self._index_of_key.get(key)
        if index is not None:
            self._used.add(index)

    # ----- embeddings -----

    def _query_vectors(self, likes: list[str | None]) -> list:
        texts = [like for like in likes if like is not None]
        if not texts:
            return [None] * len(likes)
        self._ensure_vectors()
        encoded = self._encode(texts)
        position = iter(range(len(texts)))
        return [encoded[next(position)] if like is not None else None for like in likes]

    def _ensure_vectors(self) -> None:
        if self._vectors is not None:
            return
        texts = [_key(row.text, row.text_pair) for row in self.rows]
        self._encode = self._make_encoder(texts)
        self._vectors = self._cached_vectors(texts)

    def _make_encoder(self, texts: list[str]) -> Encoder:
        if callable(self._encoder):
            return self._encoder
        if self._encoder == "tfidf":
            return _tfidf_encoder(texts)
        from llmaug.embedding import shared_encoder

        return shared_encoder(device=self._device).encode

    def _cached_vectors(self, texts: list[str]):
        if self._embeddings_cache is None or self._encoder != "minilm":
            return self._encode(texts)
        digest = hashlib.sha256("\x00".join([self._encoder, *texts]).encode()).hexdigest()[:24]
        path = self._embeddings_cache / f"pool-{self._encoder}-{digest}.npy"
        if path.exists():
            return np.load(path)
        vectors = np.asarray(self._encode(texts), dtype=np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npy")
        np.save(temporary, vectors)
        temporary.replace(path)
        return vectors


def _split_mode(source):
    if isinstance(source, str):
        head, _, tail = source.rpartition(":")
        if head and tail in MODES:
            return head, tail
    return source, None


def _load_rows(source) -> tuple[list[Example], str]:
    if not isinstance(source, (str, Path)):
        rows = list(source)
        return rows, "examples"
    from llmaug.data.bundled import BUNDLED, resolve_dataset_folder
    from llmaug.data.io import load_examples
    from llmaug.errors import DataError

    path = Path(source)
    if path.is_file():
        return load_examples(path), path.stem
    try:
        folder = resolve_dataset_folder(str(source))
    except DataError as err:
        raise TeacherError(f"the pool teacher needs a bundled dataset, a folder with train.jsonl or a data file: {err}",
                           "--teacher") from None
    name = str(source) if str(source) in BUNDLED else folder.name
    return load_examples(folder / "train.jsonl"), name


def _excluded(exclude) -> Iterable[Example | str]:
    if isinstance(exclude, (str, Path)):
        from llmaug.data.io import load_examples

        return load_examples(Path(exclude))
    return exclude


def _key(text: str, text_pair: str | None) -> str:
    """One string per row: what is compared for identity and embedded for similarity."""
    return text if text_pair is None else f"{text}\n{text_pair}"


def _answer_text(row: Example) -> str:
    if row.text_pair is None:
        return row.text
    return f"First text: {row.text}\nSecond text: {row.text_pair}"


def _last_user_message(request: TeacherRequest) -> str:
    users = [message.content for message in request.messages if message.role == "user"]
    return users[-1] if users else ""


def _ask(request: TeacherRequest) -> str:
    return request.target.ask if request.target is not None else "similar"


def _dense(matrix) -> np.ndarray:
    from scipy import sparse

    return np.asarray(matrix.todense() if sparse.issparse(matrix) else matrix)


def _tfidf_encoder(texts: list[str]) -> Encoder:
    """Unit-norm tf-idf rows, kept sparse: a dense matrix of a 10k-row pool would take gigabytes."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True).fit(texts)
    return vectorizer.transform


def _similarities(matrix, query) -> np.ndarray:
    """Cosine similarities of unit-norm rows with one unit-norm query, dense or sparse."""
    from scipy import sparse

    if sparse.issparse(matrix):
        return np.asarray((matrix @ query.T).todense()).ravel()
    return np.asarray(matrix @ query).ravel()
