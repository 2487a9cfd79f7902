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

from llmaug import generate as one_pass
from llmaug import generators
from llmaug.data.example import Example, Provenance
from llmaug.errors import ConfigError, UserError
from llmaug.filters.denoise import AttributeSet, SimilarityDenoiser, inverse_frequency_sample
from llmaug.filters.parsing import parse_items
from llmaug.filters.quality import Rejected, rejection
from llmaug.generators import MIXERS, Prompted
from llmaug.methods.base import Context, Method, read_descriptions
from llmaug.prompts import msp as prompts
from llmaug.teachers.base import GenerationParams, TeacherRequest

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

    def __init__(
        self,
        mixer: str = "concat",
        model: str = "smollm2",
        instruction_tokens: int = 100,
        attribute_tokens: int = 20,
        exemplars: int = 2,
        pool_size: int = 10,
        metadata: bool = True,
        epochs: int = 4,
        lr: float = 0.03,
        batch_size: int = 4,
        per_set: int = 4,
        sets: int | None = None,
        temperature: float = 1.0,
        top_p: float = 0.95,
        repetition_penalty: float = 1.3,
        max_tokens: int = 40,
        keep_fraction: float | None = 0.5,
        similarity_threshold: float | None = None,
        descriptions: str | None = None,
        prompts: str | None = None,
        label_separator: str | None = None,
        max_attributes: int = 10,
        bottleneck_size: int = 300,
        threads: int | None = None,
    ):
        if mixer not in MIXERS:
            raise ConfigError(f"unknown mixer {mixer!r}; choose from {', '.join(MIXERS)}", "mixer")
        if keep_fraction is not None and not 0 < keep_fraction <= 1:
            raise ConfigError("keep_fraction must be in (0, 1], or null to keep every text above the threshold", "keep_fraction")
        self.mixer = mixer
        self.model = model
        self.instruction_tokens = instruction_tokens
        self.attribute_tokens = attribute_tokens
        self.exemplars = exemplars
        self.pool_size = pool_size
        self.metadata = metadata
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.per_set = per_set
        self.sets = sets
        self.temperature = temperature
        self.top_p = top_p
        self.repetition_penalty = repetition_penalty
        self.max_tokens = max_tokens
        self.keep_fraction = keep_fraction
        self.similarity_threshold = similarity_threshold
        self.descriptions = descriptions
        self.prompts = prompts
        self.label_separator = label_separator
        self.max_attributes = max_attributes
        self.bottleneck_size = bottleneck_size
        self.threads = threads

    def algorithm(self, seed: list[Example], ctx: Context) -> list[Example]:
        if any(e.text_pair is not None or e.label is None for e in seed):
            raise UserError("MSP generates single texts for labelled classes, not sentence pairs or QA", "msp")
        descriptions = self.attribute_descriptions(seed, ctx)
        generator, training = self.trained_generator(seed, descriptions, ctx)
        rng = random.Random(ctx.seed)
        chosen = inverse_frequency_sample([self.attributes_of(e) for e in seed], self.sets or len(seed), rng)
        jobs = [self._job(attribute_set, seed, descriptions, ctx, rng) for attribute_set in chosen]
        texts = self.generate(generator, jobs, ctx)
        made = self._candidates(jobs, texts, generator.identity, ctx)
        usable, rejected = one_pass.filter_candidates(made, seed, self._instructions(made, jobs), ctx)
        denoiser = SimilarityDenoiser(seed, self.attributes_of, self.similarity_threshold, self.keep_fraction)
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
            items = parse_items(response.text, max_items=1) if response.finish_reason not in one_pass.NO_OUTPUT else []
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
        fingerprint = _fingerprint(self.model, options, [asdict(item) for item in items], self.epochs, self.lr, self.batch_size)
        folder = ctx.artifact_dir("msp-prompts")
        saved = generators.saved_settings(folder) if folder is not None else None
        if saved is not None and saved.get("fingerprint") == fingerprint:
            generator = generators.SoftPromptGenerator.load(folder, threads=self.threads)
            return generator, {"reused": str(folder), **_report(generator)}
        generator = generators.SoftPromptGenerator(self.model, threads=self.threads, **options)
        total = self.epochs * math.ceil(len(items) / self.batch_size)
        with ctx.progress(f"msp: training soft prompts ({self.mixer}, {len(items)} examples)", total) as advance:
            generator.train(items, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                            progress=lambda done, _: advance(done))
        if folder is not None:
            generator.save(folder, fingerprint=fingerprint)
        return generator, {"reused": None, **_report(generator)}

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
        return generators.SoftPromptGenerator.load(self.prompts, threads=self.threads)

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

    def _candidates(self, jobs: list[_Job], texts: list[list[str]], identity: str, ctx: Context) -> list[Example | Rejected]:
        made: list[Example | Rejected] = []
        for i, (job, outputs) in enumerate(zip(jobs, texts, strict=True)):
            for j, text in enumerate(outputs):
                provenance = Provenance(origin="synthetic", method=self.name, round=0, parent_ids=[e.id for e in job.parents],
                                        teacher=f"msp:{identity}", prompt=prompts.CONTEXT.ref,
                                        sample_index=i * self.per_set + j, raw_output=text)
                items = parse_items(text, max_items=1)
                made.append(Example.create(items[0], job.label, provenance=provenance) if items
                            else rejection(Example.create("", job.label, provenance=provenance), "unparseable"))
        return made

    def _instructions(self, made: list[Example | Rejected], jobs: list[_Job]) -> dict[str, str]:
        """Each candidate's hard prompt less the exemplars it quotes, for the echo check."""
        by_index = {}
        for i, job in enumerate(jobs):
            instructions = one_pass.instructions_only(job.prompt.context, *(e.text for e in job.exemplars))
            for j in range(self.per_set):
                by_index[i * self.per_set + j] = instructions
        return {e.id: by_index[e.provenance.sample_index] for e in made if isinstance(e, Example)}


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
