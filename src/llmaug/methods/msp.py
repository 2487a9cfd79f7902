"""MSP, Mixture of Soft Prompts (Chen et al., Findings of EMNLP 2023): a frozen language model learns one soft
prompt per attribute and writes data for any set of attributes. An attribute is a label, or one part of a
multi-attribute label (`label_separator`, e.g. "+" for "book_flight+ask_price").

    descriptions: attribute → one line (a file, else the task's label descriptions, else written once by the
        teacher), kept in descriptions.json
    train the generator (the LM frozen): an instruction prompt (100 soft tokens), one prompt per attribute
        (20 tokens, started from "NAME: description") and the mixer (concat | pooling | attention | bottleneck |
        cnn). Each seed x is one item: x's attributes' prompts mixed, then the hard prompt (task, descriptions and
        k = 2 other seeds sharing x's attributes), and x's text as the target. The trained prompts are saved in
        the run directory (safetensors) and reused on resume; `prompts` loads those of an earlier run instead
    choose `sets` attribute sets (default: one per seed) by inverse frequency: rare attributes get more data
    for each chosen set: k seeds with its attributes as exemplars; sample m = `per_set` texts
    filter: parse, label in the label set, length, echo, exact and near duplicates (the shared filters)
    denoise: keep the texts closest (MiniLM) to the real examples of their attributes: the top `keep_fraction`
        of each attribute set and/or those above `similarity_threshold`; counts in msp.json
    train the student from scratch on the seeds + the kept texts, which carry their set's label

Deviations from the official code: it generates m texts per seed example and has the inverse-frequency line
commented out; its denoiser scores but keeps everything; its generator is FLAN-T5 (encoder-decoder), ours a
decoder-only model, so the target text follows the hard prompt; its attention and bottleneck mixers reduce to a
sum (see `llmaug.generators.mixers`). Denoising runs after the shared filters, so that the kept fraction is a
fraction of usable texts rather than of duplicates and chatter.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import asdict, dataclass

from pydantic import Field

from llmaug import generators
from llmaug.candidates import NO_OUTPUT, Ask, candidates
from llmaug.data.example import Example
from llmaug.device import DEVICE, DtypeName, dtype_choice
from llmaug.errors import ConfigError, UserError
from llmaug.filters.denoise import AttributeSet, SimilarityDenoiser, inverse_frequency_sample
from llmaug.filters.parsing import parse_items
from llmaug.generators import Mixer, Prompted
from llmaug.methods.base import Context, Method, read_descriptions
from llmaug.prompts import msp as prompts
from llmaug.teachers.base import GenerationParams, TeacherRequest, TeacherResponse

_GREEDY = GenerationParams(temperature=0.0, max_tokens=24)


@dataclass
class _Job:
    """One chosen attribute set: the prompt its `per_set` texts are sampled from, and the seeds it shows."""

    attributes: AttributeSet
    label: str
    exemplars: list[Example]
    prompt: Prompted
    parents: list[Example]  # the exemplars, or without any, the seeds with exactly these attributes


class MSP(Method):
    name = "msp"

    mixer: Mixer = Field("concat", description="how attribute prompts are mixed")
    model: str = Field("smollm2", description="the frozen generator LM: smollm2, gemma3-270m, a .gguf file or HF folder")
    instruction_tokens: int = Field(100, ge=1, description="soft tokens of the instruction prompt")
    attribute_tokens: int = Field(20, ge=1, description="soft tokens per attribute prompt")
    exemplars: int = Field(2, ge=0, description="seed examples shown in each hard prompt")
    pool_size: int = Field(10, ge=1, description="seeds sharing the most attributes that exemplars are drawn from")
    metadata: bool = Field(True, description="name the attributes and their descriptions in the hard prompt")
    epochs: int = Field(4, ge=1, description="soft-prompt training epochs")
    lr: float = Field(0.03, gt=0, description="soft-prompt learning rate")
    batch_size: int = Field(4, ge=1, description="soft-prompt training batch size")
    per_set: int = Field(4, ge=1, description="texts sampled per chosen attribute set")
    sets: int | None = Field(None, ge=1, description="attribute sets to generate for (default: one per seed)")
    temperature: float = Field(1.0, ge=0.0, le=5.0, description="sampling temperature")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="nucleus sampling mass")
    repetition_penalty: float = Field(1.3, gt=0.0, description="repetition penalty")
    max_tokens: int = Field(40, ge=1, description="token limit per text")
    keep_fraction: float | None = Field(
        0.5, gt=0.0, le=1.0, description="denoising keeps this top fraction per attribute set (null: threshold only)")
    similarity_threshold: float | None = Field(None, description="denoising keeps texts at least this similar to their attributes' examples")
    descriptions: str | None = Field(None, description="YAML file: attribute -> one-line description")
    prompts: str | None = Field(None, description="msp-prompts/ folder of an earlier run: reuse its trained prompts")
    label_separator: str | None = Field(None, description='splits multi-attribute labels, e.g. "+"')
    max_attributes: int = Field(10, ge=1, description="attributes one example may have")
    bottleneck_size: int = Field(300, ge=1, description="hidden size of the bottleneck mixer")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's)")
    device: DEVICE = Field("auto", description="torch device of the generator and the denoising encoder: auto, cpu, cuda or cuda:N")
    dtype: DtypeName = Field("auto", description="the frozen LM's weights: auto (bfloat16 where the CPU or GPU has it, "
                                                 "else float32), float32, bfloat16 or float16; the prompts train in float32")

    def resolved(self) -> "MSP":
        """These options with `dtype: auto` resolved for this machine, as a run records them."""
        return self.model_copy(update={"dtype": dtype_choice(self.dtype, self.device)})

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        if any(e.text_pair is not None or e.label is None for e in seed):
            raise UserError("MSP generates single texts for labelled classes, not sentence pairs or QA", "msp")
        descriptions = self.attribute_descriptions(seed, ctx)
        generator, training = self.trained_generator(seed, descriptions, ctx)
        rng = random.Random(ctx.seed)
        chosen = inverse_frequency_sample([self.attributes_of(e) for e in seed], self.sets or len(seed), rng)
        jobs = [self._job(attribute_set, seed, descriptions, ctx, rng) for attribute_set in chosen]
        texts = self.generate(generator, jobs, ctx)
        made, unreadable, instructions = candidates(*self._asks_and_answers(jobs, texts), method=self.name, round=0,
                                                    teacher=f"msp:{generator.identity}")
        usable, dropped = ctx.filter(made, seed, instructions)
        rejected = unreadable + dropped
        denoiser = SimilarityDenoiser(seed, self.attributes_of, self.similarity_threshold, self.keep_fraction, self.device)
        added, far, denoised = denoiser.apply(usable)
        ctx.save_json("msp.json", {
            "generator": generator.identity, "training": training, "chosen_sets": _counts(chosen),
            "generated": len(made), "passed_filters": len(usable), "denoise": denoised,
        })
        data = seed + added
        ctx.end_round(0, data, added, rejected + far, ctx.train_and_evaluate(data, 0, pool=seed))
        return data

    def attributes_of(self, example: Example) -> AttributeSet:
        label = example.label or ""
        parts = label.split(self.label_separator) if self.label_separator else [label]
        return tuple(sorted({part.strip() for part in parts if part.strip()}))

    # Step 1: descriptions ------------------------------------------------------------------------------------

    def attribute_descriptions(self, seed: list[Example], ctx: Context) -> dict[str, str]:
        """One line per attribute, from the `descriptions` file, else the task, else the teacher (once, greedy,
        cached); all saved to descriptions.json, which can be edited and passed back as `descriptions`."""
        attributes = sorted({a for e in seed for a in self.attributes_of(e)})
        given = read_descriptions(self.descriptions, attributes, "attribute", "attribute", "the data")
        known = {a: given.get(a) or ctx.task.label_descriptions.get(a) for a in attributes}
        missing = [a for a, description in known.items() if not description]
        descriptions = {**known, **self._written_descriptions(missing, seed, ctx)}
        ctx.save_json("descriptions.json", descriptions)
        return descriptions

    def _written_descriptions(self, attributes: list[str], seed: list[Example], ctx: Context) -> dict[str, str]:
        shown = {a: [e.text for e in seed if a in self.attributes_of(e)][:2] for a in attributes}
        requests = [TeacherRequest(messages=tuple(prompts.DESCRIBE.render(attribute=a, unit=ctx.task.unit, examples=shown[a])), params=_GREEDY)
                    for a in attributes]
        responses = ctx.generate(requests, stage="msp: describing attributes") if requests else []
        written = {}
        for attribute, response in zip(attributes, responses, strict=True):
            items = parse_items(response.text, max_items=1) if response.finish_reason not in NO_OUTPUT else []
            written[attribute] = items[0].rstrip(".") if items else attribute.replace("_", " ")
        return written

    # Step 2: the trained generator ---------------------------------------------------------------------------

    def trained_generator(self, seed: list[Example], descriptions: dict[str, str], ctx: Context):
        """The generator with trained prompts and its training report: loaded from `prompts`, or from the run
        directory when it was trained there on the same items with the same settings, else trained now."""
        if self.prompts is not None:
            generator = self._given_generator(descriptions)
            return generator, {"reused": self.prompts, **_report(generator)}
        items = self.training_items(seed, descriptions, ctx)
        options = self._generator_options(descriptions, ctx)
        fingerprint = _fingerprint(self.model, options, [asdict(item) for item in items], self.epochs, self.lr, self.batch_size,
                                   *self._precision())
        folder = ctx.artifact_dir("msp-prompts")
        saved = generators.saved_settings(folder) if folder is not None else None
        if saved is not None and saved.get("fingerprint") == fingerprint:
            generator = generators.SoftPromptGenerator.load(folder, threads=self.threads, **self._placement())
            return generator, {"reused": str(folder), **_report(generator)}
        generator = generators.SoftPromptGenerator(self.model, threads=self.threads, **self._placement(), **options)
        total = self.epochs * math.ceil(len(items) / self.batch_size)
        with ctx.progress(f"msp: training soft prompts ({self.mixer}, {len(items)} examples)", total) as advance:
            generator.train(items, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                            progress=lambda done, _: advance(done))
        if folder is not None:
            generator.save(folder, fingerprint=fingerprint)
        return generator, {"reused": None, **_report(generator)}

    def _placement(self) -> dict:
        return {"device": self.device, "dtype": self.dtype}

    def _precision(self) -> tuple:
        """What of the placement changes the trained prompts: the model's dtype (float32 before dtype existed)."""
        dtype = dtype_choice(self.dtype, self.device)
        return () if dtype == "float32" else (dtype,)

    def training_items(self, seed: list[Example], descriptions: dict[str, str], ctx: Context) -> list[Prompted]:
        """One per seed: its attributes, a hard prompt with k other seeds sharing them, its own text as target."""
        rng = random.Random(ctx.seed)
        items = []
        for example in seed:
            attributes = self.attributes_of(example)
            shown = self._exemplars(attributes, seed, rng, exclude=example)
            items.append(self._prompted(attributes, shown, descriptions, ctx, target=f" {example.text}\n"))
        return items

    def _given_generator(self, descriptions: dict[str, str]):
        saved = generators.saved_settings(self.prompts)
        if saved is None:
            raise ConfigError("no trained soft prompts in this folder (an earlier MSP run's msp-prompts/)", self.prompts)
        unknown = sorted(set(descriptions) - set(saved.get("attributes", {})))
        if unknown:
            raise ConfigError(f"these soft prompts know no attribute {', '.join(map(repr, unknown[:5]))}", self.prompts)
        for key, value in (("mixer", self.mixer), ("model", self.model)):
            if saved.get(key) != value:
                raise ConfigError(f"these soft prompts were trained with {key} {saved.get(key)!r}; set {key}: {saved.get(key)}", self.prompts)
        return generators.SoftPromptGenerator.load(self.prompts, threads=self.threads, **self._placement())

    def _generator_options(self, descriptions: dict[str, str], ctx: Context) -> dict:
        return {
            "attributes": {a: prompts.attribute_text(a, d) for a, d in descriptions.items()},
            "mixer": self.mixer, "instruction": prompts.instruction_text(ctx.task.unit, self.exemplars),
            "instruction_tokens": self.instruction_tokens, "attribute_tokens": self.attribute_tokens,
            "max_attributes": self.max_attributes, "bottleneck_size": self.bottleneck_size, "seed": ctx.seed,
        }

    # Steps 3-4: choose attribute sets, generate -----------------------------------------------------------

    def generate(self, generator, jobs: list[_Job], ctx: Context) -> list[list[str]]:
        params = GenerationParams(temperature=self.temperature, top_p=self.top_p, repetition_penalty=self.repetition_penalty,
                                  max_tokens=self.max_tokens, seed=ctx.seed, stop=("\n",))
        with ctx.progress(f"msp: generating {self.per_set} per attribute set", len(jobs)) as advance:
            return generator.generate([job.prompt for job in jobs], self.per_set, params, progress=lambda done, _: advance(done))

    def _job(self, attributes: AttributeSet, seed: list[Example], descriptions: dict[str, str], ctx: Context, rng: random.Random) -> _Job:
        shown = self._exemplars(attributes, seed, rng)
        carriers = [e for e in seed if self.attributes_of(e) == attributes]
        return _Job(attributes, carriers[0].label, shown, self._prompted(attributes, shown, descriptions, ctx), shown or carriers)

    def _exemplars(self, attributes: AttributeSet, seed: list[Example], rng: random.Random, exclude: Example | None = None) -> list[Example]:
        """k seeds drawn from the `pool_size` that share the most attributes with `attributes` (at least one)."""
        wanted = set(attributes)
        sharing = [e for e in seed if e is not exclude and wanted & set(self.attributes_of(e))]
        pool = sorted(sharing, key=lambda e: -len(wanted & set(self.attributes_of(e))))[: self.pool_size]
        return rng.sample(pool, min(self.exemplars, len(pool)))

    def _prompted(self, attributes: AttributeSet, shown: list[Example], descriptions: dict[str, str], ctx: Context, target: str = "") -> Prompted:
        described = [{"name": a, "description": descriptions[a]} for a in attributes]
        context = prompts.CONTEXT.render(metadata=self.metadata, task=ctx.task.description, attributes=described,
                                         exemplars=[e.text for e in shown])[-1].content
        return Prompted(attributes, context, target)

    def _asks_and_answers(self, jobs: list[_Job], texts: list[list[str]]) -> tuple[list[Ask], list[TeacherResponse]]:
        """The generator's texts as answers to one ask per text (its job's hard prompt), for `candidates`."""
        asks, answers = [], []
        for i, (job, outputs) in enumerate(zip(jobs, texts, strict=True)):
            for j, text in enumerate(outputs):
                request = TeacherRequest.chat([{"role": "user", "content": job.prompt.context}], sample_index=i * self.per_set + j)
                asks.append(Ask(request, job.label, parents=tuple(job.parents), prompt=prompts.CONTEXT.ref))
                answers.append(TeacherResponse(text=text))
        return asks, answers


def _report(generator) -> dict:
    return asdict(generator.training) if generator.training else {}


def _counts(sets: list[AttributeSet]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attribute_set in sets:
        key = "+".join(attribute_set)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]
