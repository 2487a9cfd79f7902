"""review.jsonl: appending (all or nothing, never rewriting earlier lines), folding decisions (later ones win),
applying them to a dataset, undo, and that the module stays import-light for the runner."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmaug.crashpoints import ENV as CRASH_ENV
from llmaug.data import Example, Provenance
from llmaug.errors import DataError
from llmaug.decisions import (
    DECISIONS_FILE, Decision, append_decisions, apply_decisions, decide, load_decisions, review_state, undo_last,
)


def synthetic(text: str, label: str) -> Example:
    return Example.create(text, label, provenance=Provenance(origin="synthetic", method="llm2llm", round=1))


@pytest.fixture
def examples() -> list[Example]:
    return [Example.create("Where is Kyoto ?", "LOC"), synthetic("Where is Oslo ?", "LOC"),
            synthetic("How tall is Everest ?", "NUM"), synthetic("Who wrote Hamlet ?", "LOC")]


def labels_of(examples: list[Example]) -> dict[str, str | None]:
    return {e.id: e.label for e in examples}


def record(tmp_path, examples, action, rows, label=None, filter=None) -> list[Decision]:
    """Decide on `rows` against the decisions already in tmp_path, write them, and return them."""
    review = review_state(load_decisions(tmp_path), labels_of(examples))
    current = {e.id: review.state(e.id).label or e.label for e in examples}
    made = decide(review, action, [e.id for e in rows], current, label, filter)
    append_decisions(tmp_path, made)
    return made


def test_a_run_without_decisions_keeps_every_example_as_it_is(tmp_path, examples):
    assert load_decisions(tmp_path) == []
    assert apply_decisions(examples, load_decisions(tmp_path)) == (examples, [])


def test_reject_restore_and_relabel_later_decisions_win(tmp_path, examples):
    seed, oslo, everest, hamlet = examples
    record(tmp_path, examples, "reject", [oslo, everest])
    record(tmp_path, examples, "restore", [oslo])
    record(tmp_path, examples, "relabel", [hamlet], label="HUM")

    kept, out = apply_decisions(examples, load_decisions(tmp_path))

    assert [e.id for e in out] == [everest.id]
    assert [(e.id, e.label) for e in kept] == [(seed.id, "LOC"), (oslo.id, "LOC"), (hamlet.id, "HUM")]
    assert kept[2].provenance == hamlet.provenance and kept[2].text == hamlet.text  # only the label changes


def test_a_row_relabelled_back_to_its_own_label_is_no_longer_relabelled(tmp_path, examples):
    hamlet = examples[3]
    record(tmp_path, examples, "relabel", [hamlet], label="HUM")
    record(tmp_path, examples, "relabel", [hamlet], label="LOC")

    review = review_state(load_decisions(tmp_path), labels_of(examples))
    assert review.state(hamlet.id).label is None and review.relabelled == 0
    assert apply_decisions(examples, load_decisions(tmp_path)) == (examples, [])


def test_a_relabelled_row_that_is_rejected_is_reviewed_out_as_it_was(tmp_path, examples):
    everest = examples[2]
    record(tmp_path, examples, "relabel", [everest], label="LOC")
    record(tmp_path, examples, "reject", [everest])

    kept, out = apply_decisions(examples, load_decisions(tmp_path))
    assert out == [everest] and everest.id not in {e.id for e in kept}
    record(tmp_path, examples, "restore", [everest])  # and restoring it brings its new label back
    kept, out = apply_decisions(examples, load_decisions(tmp_path))
    assert out == [] and next(e.label for e in kept if e.id == everest.id) == "LOC"


def test_decisions_that_change_nothing_are_not_recorded(tmp_path, examples):
    oslo = examples[1]
    assert len(record(tmp_path, examples, "reject", [oslo])) == 1
    assert record(tmp_path, examples, "reject", [oslo]) == []  # already out
    assert record(tmp_path, examples, "restore", [examples[2]]) == []  # never out
    assert record(tmp_path, examples, "relabel", [oslo], label="LOC") == []  # already LOC
    assert len(load_decisions(tmp_path)) == 1


def test_each_line_has_the_row_action_old_and_new_value_time_and_for_bulk_actions_the_filter(tmp_path, examples):
    record(tmp_path, examples, "relabel", examples[1:3], label="HUM", filter={"round": "1", "label": "LOC"})
    lines = [json.loads(line) for line in (tmp_path / DECISIONS_FILE).read_text().splitlines()]

    assert [(line["row_id"], line["action"], line["old"], line["new"]) for line in lines] == [
        (examples[1].id, "relabel", "LOC", "HUM"), (examples[2].id, "relabel", "NUM", "HUM")]
    assert all(line["filter"] == {"round": "1", "label": "LOC"} for line in lines)
    assert len({line["batch"] for line in lines}) == 1
    assert all(line["time"].endswith("Z") and line["time"][:4].isdigit() for line in lines)


def test_appending_never_changes_the_lines_already_there(tmp_path, examples):
    record(tmp_path, examples, "reject", [examples[1]])
    before = (tmp_path / DECISIONS_FILE).read_bytes()
    record(tmp_path, examples, "relabel", [examples[2]], label="LOC")
    after = (tmp_path / DECISIONS_FILE).read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 2


def test_a_process_killed_while_appending_leaves_the_file_as_it_was(tmp_path, examples):
    record(tmp_path, examples, "reject", [examples[1]])
    before = (tmp_path / DECISIONS_FILE).read_bytes()
    script = (
        "import sys; from llmaug.decisions import Decision, append_decisions\n"
        "append_decisions(sys.argv[1], [Decision('a', 'reject', 'kept', 'out'), Decision('b', 'reject', 'kept', 'out')])\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env={**_env(), CRASH_ENV: f"write/{DECISIONS_FILE}:1"})
    assert killed.returncode == -9
    assert (tmp_path / DECISIONS_FILE).read_bytes() == before


def test_undo_appends_the_inverse_of_the_last_batch_and_walks_back_one_batch_at_a_time(tmp_path, examples):
    _, oslo, everest, hamlet = examples
    record(tmp_path, examples, "reject", [oslo, everest])
    record(tmp_path, examples, "relabel", [hamlet], label="HUM")

    def undo() -> list[Decision]:
        made = undo_last(review_state(load_decisions(tmp_path), labels_of(examples)))
        append_decisions(tmp_path, made)
        return made

    first = undo()
    assert [(d.row_id, d.action, d.old, d.new) for d in first] == [(hamlet.id, "relabel", "HUM", "LOC")]
    assert apply_decisions(examples, load_decisions(tmp_path))[1] == [oslo, everest]
    second = undo()
    assert {(d.row_id, d.action) for d in second} == {(oslo.id, "restore"), (everest.id, "restore")}
    assert apply_decisions(examples, load_decisions(tmp_path)) == (examples, [])
    assert undo() == []  # undos are not undone; nothing left
    assert len(load_decisions(tmp_path)) == 6  # every step is a line: the log is never rewritten


def test_a_line_that_is_not_a_decision_names_the_file_and_line(tmp_path):
    (tmp_path / DECISIONS_FILE).write_text('{"row_id": "a", "action": "reject", "old": "kept", "new": "out"}\n'
                                           '{"row_id": "b", "action": "delete"}\n')
    with pytest.raises(DataError, match=rf"{DECISIONS_FILE}:2: not a review decision"):
        load_decisions(tmp_path)


def test_the_decisions_module_imports_neither_torch_nor_aiohttp():
    script = ("import sys, llmaug.decisions\n"
              "print(sorted(m for m in ('torch', 'aiohttp', 'transformers', 'sklearn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=_env(), check=True)
    assert done.stdout.strip() == "[]"


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != CRASH_ENV}
