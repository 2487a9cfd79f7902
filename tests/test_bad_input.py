"""The bad-input corpus: every kind of broken data file, config and CLI option the reliability report lists.

Each goes through the real CLI entry point (`llmaug.cli.main`) and must give exit code 2, exactly one stderr line
starting with `error:` that names the file (with line and column where they exist) or the option, no traceback,
and no partial output: a run directory that did not exist stays absent, one that did keeps exactly its files.
Inputs that are odd but usable (a BOM, CRLF, numeric labels, padded labels) are accepted instead, as documented.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmaug.config import load_config
from llmaug.data import load_examples
from llmaug.errors import ConfigError, DataError
from llmaug.students import Student
from llmaug.testing.scripted import cli_exit_code

NO_TEACHER = "openai-compatible:http://127.0.0.1:9/v1@never-called"
GOOD_ROWS = [("What city is the Louvre in ?", "LOC"), ("Where is Lake Titicaca ?", "LOC"),
             ("How many moons has Mars ?", "NUM"), ("How tall is Everest ?", "NUM")]


def good_csv(folder: Path, name: str = "seed.csv") -> Path:
    path = folder / name
    path.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in GOOD_ROWS), encoding="utf-8")
    return path


def seed_file(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def jsonl(folder: Path, name: str, rows: list) -> Path:
    path = folder / name
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows), encoding="utf-8")
    return path


def run_with_seed(path: Path, *extra: str) -> list[str]:
    return ["run", "--train", str(path), "--student", "tfidf", "--teacher", NO_TEACHER, "--out", "run", *extra]


def config_file(folder: Path, settings: dict | str) -> Path:
    path = folder / "run.yaml"
    text = settings if isinstance(settings, str) else yaml.safe_dump({"train": str(good_csv(folder)), "student": "tfidf",
                                                                      "teacher": NO_TEACHER, **settings})
    path.write_text(text, encoding="utf-8")
    return path


def run_with_config(folder: Path, settings: dict | str) -> list[str]:
    return ["run", "--config", str(config_file(folder, settings)), "--out", "run"]


def finished_run(folder: Path) -> Path:
    """A run directory as a completed run leaves it (no teacher needed: the seed set has no errors to fix)."""
    assert cli_exit_code(["train", "--train", str(good_csv(folder)), "--student", "tfidf", "--out", "unused"]) == 0
    assert cli_exit_code(run_with_seed(good_csv(folder), "--rounds", "0")) == 0
    return folder / "run"


# -------------------------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], list[str]]  # writes what it needs into the folder; returns the CLI arguments
    where: str  # must appear in the error line: file[:line[:column]] or the option


def _latin1(folder: Path) -> list[str]:
    return run_with_seed(seed_file(folder, "seed.csv", "text,label\nWhat is it ?,A\nWhere is Zürich ?,B\n".encode("latin-1")))


def _ragged(folder: Path) -> list[str]:
    return run_with_seed(seed_file(folder, "seed.csv", "text,label\nWhat is it ?,A\nWhere, is it ?,B\n"))


def _broken_jsonl(folder: Path) -> list[str]:
    rows = [{"text": t, "label": l} for t, l in GOOD_ROWS[:3]] + ['{"text": "Where is Lima ?", "label": "LOC"']
    return run_with_seed(jsonl(folder, "seed.jsonl", rows))


def _huge_line(folder: Path) -> list[str]:
    return run_with_seed(jsonl(folder, "seed.jsonl", [{"text": "word " * 40_000, "label": "A"}, {"text": "b", "label": "B"}]))


def _nan_label(folder: Path) -> list[str]:
    return run_with_seed(jsonl(folder, "seed.jsonl", ['{"text": "What is it ?", "label": "A"}', '{"text": "Why ?", "label": NaN}']))


def _label_object(folder: Path) -> list[str]:
    return run_with_seed(jsonl(folder, "seed.jsonl", [{"text": "What ?", "label": "A"}, {"text": "Why ?", "label": {"x": 1}}]))


def _empty_label(folder: Path) -> list[str]:
    return run_with_seed(seed_file(folder, "seed.csv", "text,label\nWhat is it ?,A\nWhere is it ?,\n"))


def _not_an_object(folder: Path) -> list[str]:
    return run_with_seed(jsonl(folder, "seed.jsonl", [{"text": "What ?", "label": "A"}, ["Why ?", "B"]]))


def _unknown_column(folder: Path) -> list[str]:
    return run_with_seed(good_csv(folder), "--label-col", "category")


def _no_text_column(folder: Path) -> list[str]:
    return run_with_seed(seed_file(folder, "seed.csv", "sentence_text,label\nWhat ?,A\nWhy ?,B\n"))


def _empty_file(folder: Path) -> list[str]:
    return run_with_seed(seed_file(folder, "seed.jsonl", ""))


def _header_only(folder: Path) -> list[str]:
    return run_with_seed(seed_file(folder, "seed.csv", "text,label\n"))


def _one_class(folder: Path) -> list[str]:
    return run_with_seed(jsonl(folder, "seed.jsonl", [{"text": t, "label": "LOC"} for t, _ in GOOD_ROWS]))


def _case_variants(folder: Path) -> list[str]:
    rows = [{"text": t, "label": l} for t, l in GOOD_ROWS] + [{"text": "Where is Oslo ?", "label": "loc"}]
    return run_with_seed(jsonl(folder, "seed.jsonl", rows))


def _duplicate_header(folder: Path) -> list[str]:
    return run_with_seed(seed_file(folder, "seed.csv", "text,label,text\nWhat ?,A,x\n"))


def _duplicate_ids(folder: Path) -> list[str]:
    return run_with_seed(jsonl(folder, "seed.jsonl", [{"id": "q1", "text": "What ?", "label": "A"},
                                                      {"id": "q1", "text": "Why ?", "label": "B"}]))


def _unknown_extension(folder: Path) -> list[str]:
    path = folder / "seed.txt"
    path.write_text("What ?\tA\n")
    return run_with_seed(path)


def _missing_file(folder: Path) -> list[str]:
    return run_with_seed(folder / "nowhere.csv")


def _binary_file(folder: Path) -> list[str]:
    return run_with_seed(seed_file(folder, "seed.jsonl", bytes(range(256)) * 4))


def _folder_as_file(folder: Path) -> list[str]:
    (folder / "data").mkdir()
    return run_with_seed(folder / "data")


def _eval_labels_unknown(folder: Path) -> list[str]:
    evaluation = jsonl(folder, "test.jsonl", [{"text": "Who wrote Hamlet ?", "label": "HUM"}])
    return run_with_seed(good_csv(folder), "--eval", str(evaluation))


def _unknown_setting(folder: Path) -> list[str]:
    return run_with_config(folder, {"roundz": 3})


def _wrong_type(folder: Path) -> list[str]:
    return run_with_config(folder, {"rounds": "three"})


def _negative_rounds(folder: Path) -> list[str]:
    return run_with_config(folder, {"rounds": -2})


def _missing_teacher(folder: Path) -> list[str]:
    return run_with_config(folder, {"teacher": None})


def _empty_teacher(folder: Path) -> list[str]:
    return run_with_config(folder, {"teacher": ""})


def _invalid_yaml(folder: Path) -> list[str]:
    return run_with_config(folder, "rounds: 3\nstudent: [tfidf\n")


def _config_not_a_mapping(folder: Path) -> list[str]:
    return run_with_config(folder, "- rounds\n- 3\n")


def _config_not_utf8(folder: Path) -> list[str]:
    path = folder / "run.yaml"
    path.write_bytes("task: café\n".encode("latin-1"))
    return ["run", "--config", str(path), "--out", "run"]


def _missing_config(folder: Path) -> list[str]:
    return ["run", "--config", str(folder / "none.yaml"), "--out", "run"]


def _key_in_config(folder: Path) -> list[str]:
    return run_with_config(folder, {"teacher_options": {"api_key": "sk-not-a-real-key"}})


def _key_env_unset(folder: Path) -> list[str]:
    return run_with_config(folder, {"api_key_env": "LLMAUG_SURELY_UNSET_VARIABLE"})


def _unknown_teacher_option(folder: Path) -> list[str]:
    return run_with_config(folder, {"teacher_options": {"temprature": 0.3}})


def _unknown_method_option(folder: Path) -> list[str]:
    return run_with_config(folder, {"method_options": {"foldz": 3}})


def _unknown_student_option(folder: Path) -> list[str]:
    return run_with_config(folder, {"student_options": {"depth": 3}})


def _non_integer_option(folder: Path) -> list[str]:
    return run_with_seed(good_csv(folder), "--rounds", "many")


def _fraction_above_one(folder: Path) -> list[str]:
    return ["run", "--fraction", "2", "--student", "tfidf", "--teacher", NO_TEACHER, "--out", "run"]


def _unknown_format(folder: Path) -> list[str]:
    return run_with_seed(good_csv(folder), "--format", "xml")


def _unknown_student(folder: Path) -> list[str]:
    return run_with_seed(good_csv(folder), "--student", "svm")


def _unknown_teacher(folder: Path) -> list[str]:
    return ["run", "--train", str(good_csv(folder)), "--student", "tfidf", "--teacher", "gpt9", "--out", "run"]


def _unknown_option(folder: Path) -> list[str]:
    return run_with_seed(good_csv(folder), "--colour", "blue")


def _credentials_in_url(folder: Path) -> list[str]:
    return ["run", "--train", str(good_csv(folder)), "--student", "tfidf", "--out", "run",
            "--teacher", "openai-compatible:http://user:sk-secret@127.0.0.1:9/v1@m"]


def _out_is_a_file(folder: Path) -> list[str]:
    (folder / "taken").write_text("not a folder\n")
    return ["run", "--train", str(good_csv(folder)), "--student", "tfidf", "--teacher", NO_TEACHER, "--out", "taken"]


def _resume_not_a_run(folder: Path) -> list[str]:
    (folder / "run").mkdir()
    return ["run", "--resume", "run"]


def _resume_with_settings(folder: Path) -> list[str]:
    finished_run(folder)
    return ["run", "--resume", "run", "--rounds", "5"]


def _run_dir_with_other_settings(folder: Path) -> list[str]:
    finished_run(folder)
    return run_with_seed(good_csv(folder), "--rounds", "2")


def _damaged_cache(folder: Path) -> list[str]:
    finished_run(folder)
    (folder / "run" / "cache.sqlite").write_bytes(b"\x00garbage" * 100)
    return run_with_seed(good_csv(folder), "--rounds", "0")


def _unreachable_teacher(folder: Path) -> list[str]:
    # TREC-6 at 1%: the student gets seeds wrong, so the teacher is called, and cannot be reached.
    settings = {"train": None, "dataset": "trec6", "fraction": 0.01, "max_eval": 20,
                "teacher_options": {"max_retries": 1, "backoff": 0.01}}
    return run_with_config(folder, settings)


def _generate_both_modes(folder: Path) -> list[str]:
    return ["generate", "--train", str(good_csv(folder)), "--out", "new.jsonl", "--per-row", "1", "--per-label", "1"]


def _eval_not_a_student(folder: Path) -> list[str]:
    (folder / "model").mkdir()
    return ["eval", "--student", "model", "--data", str(good_csv(folder))]


CASES = [
    Case("wrong encoding (Latin-1)", _latin1, "seed.csv:3:11"),
    Case("ragged CSV row", _ragged, "seed.csv:3"),
    Case("JSONL with a broken line", _broken_jsonl, "seed.jsonl:4:"),
    Case("huge single line", _huge_line, "seed.jsonl:1"),
    Case("NaN label", _nan_label, "seed.jsonl:2"),
    Case("label that is an object", _label_object, "seed.jsonl:2"),
    Case("empty label", _empty_label, "seed.csv:3"),
    Case("JSONL line that is not an object", _not_an_object, "seed.jsonl:2:1"),
    Case("unknown column (--label-col)", _unknown_column, "--label-col"),
    Case("no text column", _no_text_column, "--text-col"),
    Case("empty file", _empty_file, "seed.jsonl"),
    Case("header-only CSV", _header_only, "seed.csv"),
    Case("only one class", _one_class, "seed.jsonl"),
    Case("labels differing only in case", _case_variants, "'LOC' and 'loc'"),
    Case("repeated CSV header", _duplicate_header, "seed.csv:1"),
    Case("duplicate ids", _duplicate_ids, "seed.jsonl:2"),
    Case("unknown file extension", _unknown_extension, "seed.txt"),
    Case("missing file", _missing_file, "nowhere.csv"),
    Case("binary file", _binary_file, "seed.jsonl:2:118"),
    Case("folder given as a file", _folder_as_file, "data"),
    Case("eval labels unknown to training", _eval_labels_unknown, "test.jsonl"),
    Case("config: unknown key", _unknown_setting, "roundz"),
    Case("config: wrong type", _wrong_type, "run.yaml (rounds)"),
    Case("config: negative rounds", _negative_rounds, "run.yaml (rounds)"),
    Case("config: missing teacher", _missing_teacher, "run.yaml (teacher)"),
    Case("config: empty teacher", _empty_teacher, "run.yaml (teacher)"),
    Case("config: invalid YAML", _invalid_yaml, "run.yaml:3:1"),
    Case("config: not a mapping", _config_not_a_mapping, "run.yaml"),
    Case("config: not UTF-8", _config_not_utf8, "run.yaml"),
    Case("config: file missing", _missing_config, "none.yaml"),
    Case("config: API key written in it", _key_in_config, "teacher_options.api_key"),
    Case("config: api_key_env not set", _key_env_unset, "api_key_env"),
    Case("config: unknown teacher option", _unknown_teacher_option, "teacher_options"),
    Case("config: unknown method option", _unknown_method_option, "method_options"),
    Case("config: unknown student option", _unknown_student_option, "run.yaml (student_options.depth)"),
    Case("option: not an integer", _non_integer_option, "--rounds"),
    Case("option: fraction above 1", _fraction_above_one, "--fraction"),
    Case("option: unknown output format", _unknown_format, "--format"),
    Case("option: unknown student", _unknown_student, "--student"),
    Case("option: unknown teacher", _unknown_teacher, "--teacher"),
    Case("option: unknown option", _unknown_option, "--colour"),
    Case("option: credentials in the teacher URL", _credentials_in_url, "--teacher"),
    Case("option: --out is a file", _out_is_a_file, "taken"),
    Case("option: --resume of a folder that is no run", _resume_not_a_run, "run"),
    Case("option: --resume with other settings", _resume_with_settings, "--resume"),
    Case("option: run directory holds other settings", _run_dir_with_other_settings, "run"),
    Case("damaged teacher cache", _damaged_cache, "cache.sqlite"),
    Case("unreachable teacher", _unreachable_teacher, "127.0.0.1:9"),
    Case("generate: both --per-row and --per-label", _generate_both_modes, "--per-label/--per-row"),
    Case("eval: folder that is no student", _eval_not_a_student, "model"),
]


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gives_one_actionable_line_exit_2_and_no_partial_output(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = case.build(tmp_path)
    capsys.readouterr()
    before = files_under(tmp_path)

    code = cli_exit_code(args)

    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    assert case.where in err, err
    assert files_under(tmp_path) == before  # nothing new, nothing changed, nothing half-written


def test_the_corpus_covers_at_least_20_kinds_of_data_config_and_option_errors():
    kinds = [case.name for case in CASES]
    assert len(kinds) >= 20 and len(set(kinds)) == len(kinds)
    assert sum(not name.startswith(("config:", "option:")) for name in kinds) >= 15
    assert sum(name.startswith("config:") for name in kinds) >= 10
    assert sum(name.startswith("option:") for name in kinds) >= 10


# ------------------------------------------------------------------------------ usable, if odd, inputs


TOLERATED = {
    "UTF-8 byte-order mark": ("seed.csv", "\ufefftext,label\nWhat is it ?,A\nWhy is it ?,B\n", ["A", "B"]),
    "CRLF line ends": ("seed.csv", "text,label\r\nWhat is it ?,A\r\nWhy is it ?,B\r\n", ["A", "B"]),
    "numeric labels, 1 and 1.0 alike": ("seed.jsonl", '{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n'
                                        '{"text": "fine", "label": 1.0}\n', ["0", "1"]),
    "labels padded with whitespace": ("seed.csv", "text,label\nWhat is it ?, A \nWhy is it ?,B\t\nHow ?,A\n", ["A", "B"]),
    "blank lines in JSONL": ("seed.jsonl", '\n{"text": "good", "label": "p"}\n\n{"text": "bad", "label": "n"}\n\n', ["n", "p"]),
    "tab-separated file": ("seed.tsv", "text\tlabel\nWhat, if anything ?\tA\nWhy ?\tB\n", ["A", "B"]),
}


@pytest.mark.parametrize("name", TOLERATED)
def test_odd_but_usable_inputs_are_accepted_as_documented(name, tmp_path, capsys):
    filename, content, labels = TOLERATED[name]
    (tmp_path / filename).write_text(content, encoding="utf-8", newline="")
    code = cli_exit_code(["train", "--train", str(tmp_path / filename), "--student", "tfidf", "--out", str(tmp_path / "student")])
    assert code == 0, capsys.readouterr().err
    assert Student.load(tmp_path / "student").labels == labels


# ---------------------------------------------------------------------------------- property-based


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
rows = st.lists(st.dictionaries(st.sampled_from(["text", "label", "id", "answer", "provenance", "extra"]), json_values,
                                max_size=5), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows)
def test_any_jsonl_rows_load_or_raise_a_data_error(rows, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row, allow_nan=True) + "\n" for row in rows), encoding="utf-8")
    try:
        examples = load_examples(path)
    except DataError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert len(examples) == len(rows)
    assert all(e.text and e.text == e.text.strip() and (e.label or e.answer) for e in examples)
    assert all(e.label is None or not (isinstance(e.label, float) and math.isnan(e.label)) for e in examples)


settings_values = st.dictionaries(
    st.sampled_from(["rounds", "per_error", "fraction", "teacher", "student", "method", "seed", "cache",
                     "teacher_options", "output_format", "label_check", "max_eval", "unknown_key", "dataset"]),
    json_values, max_size=5,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=settings_values)
def test_any_config_mapping_loads_or_raises_a_config_error(values, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    try:
        load_config(path, {})
    except ConfigError as err:
        assert "\n" not in str(err) and str(path) in str(err)
