"""A synthetic run directory of any size, written in seconds without a teacher or a student: for the review app's
paging tests, its latency benchmark (`bench/review_latency.py`) and for trying the app.

    python -m llmaug.review.sample_run runs/sample --rows 100000

The files have the runner's layout and field names; texts are random questions, so scores mean nothing.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import yaml

from llmaug.data.example import Example, Provenance
from llmaug.atomic import write_json_atomic, write_text_atomic
from llmaug.data.io import example_rows

LABELS = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
REASONS = ("not a question", "near duplicate (ROUGE-L 0.97 with an existing example)", "too short (< 8 characters)",
           "label check (nearest centroid NUM)", "assistant chatter", "unparseable")
_OPENERS = ("What", "Which", "Who", "Where", "How many", "When", "Why", "How")
_WORDS = ("river", "planet", "author", "country", "city", "battle", "song", "inventor", "mountain", "animal",
          "language", "coin", "painter", "island", "engine", "treaty", "comet", "museum", "desert", "violin")


def write_sample_run(out: str | Path, rows: int = 100_000, rounds: int = 5, seeds: int = 500, reject_share: float = 0.2,
                     random_seed: int = 0, extra_rows: list[Example] | None = None, summary_extras: dict | None = None) -> Path:
    """Write a finished run directory with about `rows` teacher outputs (accepted and rejected) spread over
    `rounds` augmentation rounds. `extra_rows` are added as accepted rows of round 0; `summary_extras` are merged
    into summary.json (e.g. a verdict)."""
    out = Path(out)
    rng = random.Random(random_seed)
    seed_rows = [Example.create(f"{_question(rng)} ?", LABELS[i % len(LABELS)]) for i in range(seeds)]
    per_round = rows // rounds
    data = list(seed_rows)
    summary_rounds = []
    for k in range(rounds + 1):
        wrong = rng.sample(seed_rows, k=min(len(seed_rows), max(1, seeds // (k + 2))))
        added, rejected = ([], []) if k == rounds else _outputs(rng, wrong, k, per_round, reject_share)
        if k == 0 and extra_rows:
            added += extra_rows
        folder = out / "rounds" / f"{k:03d}"
        if k == 0:
            _write_jsonl(folder / "data.jsonl", example_rows(seed_rows))
        _write_jsonl(folder / "added.jsonl", example_rows(added))
        _write_jsonl(folder / "rejected.jsonl", rejected)
        _write_jsonl(folder / "errors.jsonl", [{**row, "predicted": _other_label(rng, row["label"])}
                                               for row in example_rows(wrong)])
        record = _round_record(k, len(data), added, rejected, wrong, rng)
        write_json_atomic(folder / "metrics.json", record)
        summary_rounds.append(record)
        data += added
    _write_jsonl(out / "data.jsonl", example_rows(data))
    write_text_atomic(out / "config.yaml", yaml.safe_dump(_config(str(out)), sort_keys=False))
    write_json_atomic(out / "summary.json", {
        "method": "llm2llm", "options": {"rounds": rounds}, "rounds": summary_rounds, "final_size": len(data),
        "added": len(data) - seeds, "test": None, "seconds": 0.0, **(summary_extras or {}),
    })
    return out


def _outputs(rng: random.Random, wrong: list[Example], round: int, count: int, reject_share: float):
    added, rejected = [], []
    for i in range(count):
        parent = wrong[i % len(wrong)]
        text = f"{_question(rng)} ?"
        provenance = Provenance(origin="synthetic", method="llm2llm", round=round + 1, parent_ids=[parent.id],
                                teacher="openai:sample-teacher", prompt="llm2llm-classification@2", sample_index=i,
                                raw_output=f"Sure! Here is a new question:\n{text}")
        if rng.random() < reject_share:
            rejected.append({"text": text, "reason": rng.choice(REASONS), "label": parent.label,
                             "parent_ids": [parent.id], "round": round + 1, "method": "llm2llm",
                             "raw_output": provenance.raw_output})
        else:
            added.append(Example.create(text, parent.label, provenance=provenance))
    return added, rejected


def _round_record(k: int, train_size: int, added: list, rejected: list, wrong: list, rng: random.Random) -> dict:
    return {
        "round": k, "train_size": train_size, "added": len(added), "rejected": len(rejected),
        "pool_errors": len(wrong), "pool_accuracy": round(0.6 + 0.02 * k, 4),
        "test_accuracy": round(0.70 + 0.004 * k + rng.uniform(-0.003, 0.003), 4),
        "test_macro_f1": round(0.62 + 0.004 * k, 4), "teacher_requests": len(added) + len(rejected),
        "prompt_tokens": 60 * (len(added) + len(rejected)), "completion_tokens": 15 * (len(added) + len(rejected)),
        "cost_usd": None, "rejection_reasons": {},
    }


def _config(out: str) -> dict:
    return {"method": "llm2llm", "dataset": "trec6", "fraction": 0.01, "max_eval": 200, "teacher": "openai:sample-teacher",
            "api_key_env": "OPENAI_API_KEY", "student": "tfidf", "student_options": {}, "seed": 0, "out": out}


def _question(rng: random.Random) -> str:
    words = rng.sample(_WORDS, 3)
    return f"{rng.choice(_OPENERS)} {words[0]} is known for the {words[1]} of the {words[2]} number {rng.randrange(10_000)}"


def _other_label(rng: random.Random, label: str) -> str:
    return rng.choice([other for other in LABELS if other != label])


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(write_sample_run(args.out, rows=args.rows, rounds=args.rounds))


if __name__ == "__main__":
    main()
