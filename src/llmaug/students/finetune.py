"""Fine-tuned transformer classifier: AutoModelForSequenceClassification trained with a plain torch loop.

Every `fit` starts again from the base model's weights (all-MiniLM-L6-v2 by default, or any local Hugging Face
model folder), with a freshly initialised head. A saved student is a plain Hugging Face model folder
(safetensors + tokenizer + id2label), usable with `transformers.pipeline("text-classification", model=dir)`.

Defaults were chosen on TREC-6 at 1% (54 examples, 6 labels), scored on held-out train rows: small batches
(4) and lr 1e-4 for 10 epochs beat batch 16 at any lr or epoch count tried, at the same compute.
Training budget: `epochs` passes over the data, capped at `max_steps` optimizer steps but never less than one
epoch: 54 examples train for 140 steps (10 epochs), 500 for 300 steps (2.4 epochs), 3000 for one epoch.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from pydantic import Field

from llmaug.data.example import Example
from llmaug.device import DEVICE, cpu_threads, idle_cores, resolve_device
from llmaug.embedding import minilm_path
from llmaug.errors import StudentError
from llmaug.students.base import Student
from llmaug.students.tfidf import class_indices

PREDICT_BATCH_SIZE = 64
MAX_GRAD_NORM = 1.0
MAX_DEFAULT_THREADS = 4


def planned_steps(n_examples: int, batch_size: int, epochs: int, max_steps: int) -> int:
    """Optimizer steps for a fit: `epochs` epochs, capped at `max_steps` but never below one full epoch."""
    steps_per_epoch = math.ceil(n_examples / batch_size)
    return min(epochs * steps_per_epoch, max(max_steps, steps_per_epoch))


def shuffled_batches(
    n_examples: int, batch_size: int, total_steps: int, generator: torch.Generator
) -> Iterator[list[int]]:
    """`total_steps` batches of example indices, reshuffled every epoch (an epoch's last batch may be smaller)."""
    steps = 0
    while True:
        order = torch.randperm(n_examples, generator=generator).tolist()
        for start in range(0, n_examples, batch_size):
            if steps == total_steps:
                return
            yield order[start : start + batch_size]
            steps += 1


def default_threads() -> int:
    """`OMP_NUM_THREADS` where it is set (Ray sets it to a task's CPUs), else the cores other processes leave
    idle now, at most 4. On a quiet 2-core machine a fit on TREC-6 at 1% takes 1.45x less time on 2 threads than
    on 1; next to another busy process, 2 threads made it 55x slower (`idle_cores`). Results change in the last
    digits with the thread count (predictions agreed on 500 rows): fix `threads` for bit-identical reruns.
    """
    from_environment = os.environ.get("OMP_NUM_THREADS", "")
    if from_environment.isdigit() and int(from_environment) >= 1:
        return int(from_environment)
    return max(1, min(MAX_DEFAULT_THREADS, idle_cores()))


def torch_threads(threads: int | None) -> contextlib.AbstractContextManager:
    """Run torch with `threads` CPU threads (None: `default_threads()`), restoring the process setting after."""
    return cpu_threads(threads or default_threads())


@contextlib.contextmanager
def torch_run_settings(threads: int | None, seed: int | None = None) -> Iterator[None]:
    """Threads, determinism and (when seeded) the RNG for one fit or predict, all restored afterwards."""
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        devices = None if torch.cuda.is_available() else []  # CUDA RNG state too when training on a GPU
        seeded = torch.random.fork_rng(devices=devices) if seed is not None else contextlib.nullcontext()
        with torch_threads(threads), seeded:
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide the load report and progress bars that every from-scratch fit would print."""
    from transformers.utils import logging

    previous = logging.get_verbosity()
    bars_were_on = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(previous)
        if bars_were_on:
            logging.enable_progress_bar()


def split_pairs(examples: list[Example]) -> tuple[list[str], list[str] | None]:
    pairs = [e.text_pair for e in examples if e.text_pair is not None]
    if pairs and len(pairs) != len(examples):
        raise StudentError("examples mix single texts and sentence pairs; a finetune student needs one or the other")
    return [e.text for e in examples], pairs or None


class FinetuneStudent(Student):
    kind = "finetune"
    # k-fold students keep the lowest 3 of MiniLM's 6 layers frozen: on TREC-6 1% (3 seeds) their wrong seeds
    # matched full fine-tuning's as closely as a second full fine-tuning with another seed does (Jaccard 0.73 vs
    # 0.70), in half the time; 4 frozen layers drifted (0.63) and fewer epochs or frozen-encoder proxies (embed-lr)
    # drifted further (bench/results/fold_students.md).
    fold_options = {"frozen_layers": 3}

    class Options(Student.Options):
        model: str | None = Field(None, description="Hugging Face model folder to fine-tune (default all-MiniLM-L6-v2)")
        epochs: int = Field(10, ge=1, description="passes over the data (capped by max_steps)")
        lr: float = Field(1e-4, gt=0, description="learning rate")
        batch_size: int = Field(4, ge=1, description="examples per optimizer step")
        max_length: int = Field(128, ge=8, description="tokens per example (longer ones are cut)")
        warmup: float = Field(0.1, ge=0, le=1, description="share of the steps spent warming the learning rate up")
        weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
        max_steps: int = Field(300, ge=1, description="optimizer steps at most (never below one epoch)")
        freeze_embeddings: bool = Field(True, description="keep the token embedding frozen")
        frozen_layers: int = Field(
            0, ge=0, description="keep the embeddings and the lowest N transformer layers as pretrained: their "
                                 "outputs are computed once per text and shared by every fit, so fits train only "
                                 "the layers above (BERT-like models)")
        threads: int | None = Field(None, ge=1, description="torch CPU threads (default: OMP_NUM_THREADS, else the cores other processes leave idle, at most 4)")
        device: DEVICE = Field("auto", description="torch device: auto (a CUDA GPU if there is one), cpu, cuda or cuda:N")

    def __init__(self, **options):
        super().__init__(**options)
        self.model = None
        self.tokenizer = None
        self.device = resolve_device(self.options["device"], "student_options.device")

    def base_model_dir(self) -> Path:
        folder = Path(self.options["model"]) if self.options["model"] else minilm_path()
        if not (folder / "config.json").is_file():
            raise StudentError(f"not a Hugging Face model folder (no config.json): {folder}", "--student")
        return folder

    def _load_pretrained(self, folder: Path, **config_overrides) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        # local_files_only: never reach the hub; use_safetensors: never unpickle weights; remote code stays off.
        try:
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
                self.model = AutoModelForSequenceClassification.from_pretrained(
                    folder, local_files_only=True, use_safetensors=True, trust_remote_code=False, **config_overrides
                )
        except (OSError, ValueError) as err:
            raise StudentError(f"cannot load a sequence classifier from {folder} ({err})", folder) from None
        self.model.to(self.device)

    def _tokenize(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        texts, pairs = split_pairs(examples)
        batch = self.tokenizer(
            texts, pairs, truncation=True, max_length=self.options["max_length"], padding=True, return_tensors="pt"
        )
        return {name: tensor.to(self.device) for name, tensor in batch.items()}

    def _fit(self, examples: list[Example], seed: int) -> None:
        targets = torch.from_numpy(class_indices(examples, self.labels))
        split_pairs(examples)  # reject mixed data before spending time on loading the model
        with torch_run_settings(self.options["threads"], seed):
            self._load_pretrained(
                self.base_model_dir(),
                num_labels=len(self.labels),
                id2label=dict(enumerate(self.labels)),
                label2id={label: i for i, label in enumerate(self.labels)},
                problem_type="single_label_classification",
            )
            self._train(examples, targets, torch.Generator().manual_seed(seed))

    def _optimizer(self, total_steps: int):
        from transformers import get_linear_schedule_with_warmup

        decay, no_decay = [], []
        for parameter in self.model.parameters():
            if parameter.requires_grad:
                (no_decay if parameter.ndim < 2 else decay).append(parameter)  # biases and LayerNorm weights
        groups = [
            {"params": decay, "weight_decay": self.options["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        try:  # the fused kernel makes the step several times faster on CPU (torch >= 2.4)
            optimizer = torch.optim.AdamW(groups, lr=self.options["lr"], fused=True)
        except (RuntimeError, ValueError):
            optimizer = torch.optim.AdamW(groups, lr=self.options["lr"])
        warmup_steps = round(self.options["warmup"] * total_steps)
        return optimizer, get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)

    def _train(self, examples: list[Example], targets: torch.Tensor, generator: torch.Generator) -> None:
        batch_size = self.options["batch_size"]
        total_steps = planned_steps(len(examples), batch_size, self.options["epochs"], self.options["max_steps"])
        if self.options["freeze_embeddings"]:
            # The token embedding is half of MiniLM's weights: a few dozen examples touch a few hundred of its
            # rows, while AdamW would update (and weight-decay) all 30k of them every step.
            self.model.get_input_embeddings().weight.requires_grad_(False)
        with frozen_lower_layers(self.model, self.options["frozen_layers"], self._frozen_key()) as lower:
            self._steps(examples, targets, generator, total_steps, lower)
        self.model.eval()

    def _frozen_key(self) -> str:
        return f"{self.base_model_dir().resolve()}:{self.options['max_length']}"

    def _steps(self, examples, targets, generator, total_steps: int, lower: "FrozenLower | None") -> None:
        batch_size = self.options["batch_size"]
        optimizer, schedule = self._optimizer(total_steps)
        self.model.train()
        for chosen in shuffled_batches(len(examples), batch_size, total_steps, generator):
            batch = self._tokenize([examples[i] for i in chosen])
            if lower is not None:
                lower.attention_mask = batch["attention_mask"]
            loss = self.model(**batch, labels=targets[chosen].to(self.device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)

    def predict_proba(self, examples: list[Example]) -> np.ndarray:
        if self.model is None or self.tokenizer is None:
            raise StudentError("the finetune student is not trained; call fit or load first")
        if not examples:
            return np.zeros((0, len(self.labels)))
        # Batches of similar length waste little compute on padding; rows go back to input order at the end.
        order = sorted(range(len(examples)), key=lambda i: len(examples[i].text) + len(examples[i].text_pair or ""))
        probabilities = np.zeros((len(examples), len(self.labels)))
        self.model.eval()
        with torch_run_settings(self.options["threads"]), torch.inference_mode():
            for start in range(0, len(order), PREDICT_BATCH_SIZE):
                chosen = order[start : start + PREDICT_BATCH_SIZE]
                logits = self.model(**self._tokenize([examples[i] for i in chosen])).logits
                probabilities[chosen] = torch.softmax(logits.double(), dim=-1).cpu().numpy()
        return probabilities

    def _save(self, directory: Path) -> None:
        if self.model is None or self.tokenizer is None:
            raise StudentError("cannot save an untrained finetune student")
        self.model.save_pretrained(directory)  # safetensors, the default since transformers 4.35
        self.tokenizer.save_pretrained(directory)

    def _load(self, directory: Path) -> None:
        self._load_pretrained(directory)
        saved_labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        if saved_labels != self.labels:
            raise StudentError(f"model labels {saved_labels} differ from the manifest's {self.labels}", directory)
        self.model.eval()


class FrozenLower(torch.nn.Module):
    """Stands in for a BERT-like model's embeddings while its lowest layers are frozen: returns, for a batch, the
    hidden states after those layers, each row computed once (alone, unpadded, without dropout) and then kept in
    `memo`, so that every later fit on the same text reads it instead of running the frozen layers again."""

    def __init__(self, embeddings: torch.nn.Module, layers: list[torch.nn.Module], memo: "LowerMemo"):
        super().__init__()
        self.embeddings = embeddings
        self.layers = torch.nn.ModuleList(layers)
        self.memo = memo
        self.attention_mask: torch.Tensor | None = None  # the batch's, set before each forward pass

    def forward(self, input_ids=None, token_type_ids=None, **kwargs) -> torch.Tensor:
        lengths = self.attention_mask.sum(dim=1).tolist()
        rows = [self._row(input_ids[i, :n], None if token_type_ids is None else token_type_ids[i, :n])
                for i, n in enumerate(lengths)]
        width = input_ids.shape[1]
        return torch.stack([torch.nn.functional.pad(row, (0, 0, 0, width - len(row))) for row in rows])

    def _row(self, ids: torch.Tensor, types: torch.Tensor | None) -> torch.Tensor:
        key = (tuple(ids.tolist()), None if types is None else tuple(types.tolist()))
        hidden = self.memo.get(key)
        if hidden is None:
            self.embeddings.eval()
            self.layers.eval()
            with torch.no_grad():
                hidden = self.embeddings(input_ids=ids[None], token_type_ids=None if types is None else types[None])
                for layer in self.layers:  # one unpadded row: no attention mask needed
                    output = layer(hidden)
                    hidden = output[0] if isinstance(output, tuple) else output
            hidden = hidden[0]
            self.memo.put(key, hidden)
        return hidden


class LowerMemo:
    """Hidden states after the frozen layers, per token sequence, up to `max_bytes` (least recently used go)."""

    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._rows: collections.OrderedDict = collections.OrderedDict()

    def get(self, key) -> torch.Tensor | None:
        row = self._rows.get(key)
        if row is not None:
            self._rows.move_to_end(key)
        return row

    def put(self, key, row: torch.Tensor) -> None:
        self._rows[key] = row
        self.bytes += row.numel() * row.element_size()
        while self.bytes > self.max_bytes and self._rows:
            _, dropped = self._rows.popitem(last=False)
            self.bytes -= dropped.numel() * dropped.element_size()


_LOWER_MEMOS: dict[tuple, LowerMemo] = {}  # (base model, length limit, frozen layers, device) -> its memo


@contextlib.contextmanager
def frozen_lower_layers(model, count: int, key: str) -> Iterator[FrozenLower | None]:
    """Train `model` with its embeddings and lowest `count` layers frozen and read from a shared memo: they are
    swapped for a `FrozenLower` for the block and put back after, so that the model saves and predicts as a
    plain Hugging Face model."""
    if not count:
        yield None
        return
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not hasattr(base, "embeddings") or layers is None:
        raise StudentError("frozen_layers needs a BERT-like model (embeddings, then encoder.layer)", "--student-option")
    if count >= len(layers):
        raise StudentError(f"frozen_layers must be below the model's {len(layers)} layers", "--student-option")
    device = next(model.parameters()).device
    memo = _LOWER_MEMOS.setdefault((key, count, str(device)), LowerMemo())
    embeddings = base.embeddings
    lower = FrozenLower(embeddings, list(layers[:count]), memo)
    lower.requires_grad_(False)
    base.embeddings, base.encoder.layer = lower, layers[count:]
    try:
        yield lower
    finally:
        base.embeddings, base.encoder.layer = embeddings, layers
