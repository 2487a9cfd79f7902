"""`llmaug.config`: RunConfig's bounds, the YAML a run records (config.yaml) and CLI flags over a config file.

The CLI's one-line errors for bad settings are in tests/test_bad_input.py; these are the rules underneath.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmaug.config import RunConfig, config_yaml, load_config, validate_config
from llmaug.errors import ConfigError
from llmaug.teachers.usage import Price


def write(folder: Path, text: str) -> Path:
    path = folder / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_yaml_loads_back_to_the_same_config(tmp_path):
    config = RunConfig(
        method="s3", dataset=None, train="seeds/train.csv", eval="seeds/test.csv", fraction=None, per_class=8,
        text_col="sentence", label_col="intent", task="intent detection", unit="utterance",
        label_descriptions={"card_arrival": "asks when a card arrives", "café": "naïve: ünïcode"},
        teacher="openai-compatible:http://127.0.0.1:8000/v1@qwen", teacher_options={"concurrency": 4, "timeout": 2.5},
        api_key_env="MY_TEACHER_KEY", student="tfidf", student_options={"ngram_range": [1, 3], "C": 3.0},
        rounds=0, per_error=2, method_options={"rationales": 3}, label_check="none", centroid_top=2, seed=7,
        out="runs/x", cache=False, max_teacher_calls=0, max_tokens_budget=1000,
        price=Price(prompt=0.15, completion=0.6), output_format="parquet",
    )
    text = config_yaml(config)
    assert load_config(write(tmp_path, text), {}) == config
    assert list(yaml.safe_load(text)) == list(RunConfig.model_fields)  # every setting, in the model's order


def test_config_yaml_of_the_defaults_is_a_complete_rerunnable_file(tmp_path):
    text = config_yaml(RunConfig())
    assert set(yaml.safe_load(text)) == set(RunConfig.model_fields)
    assert load_config(write(tmp_path, text), {}) == RunConfig()


def test_the_api_key_stays_in_the_environment_only_its_variable_name_is_recorded(monkeypatch):
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-canary-7f3e9a")
    config = load_config(None, {"teacher": "openai:gpt-4o-mini", "api_key_env": "MY_TEACHER_KEY"})
    text = config_yaml(config)
    assert "api_key_env: MY_TEACHER_KEY" in text and "sk-canary-7f3e9a" not in text
    with pytest.raises(ConfigError, match="unknown setting 'api_key'"):  # there is no setting to put a key in
        validate_config({"api_key": "sk-canary-7f3e9a"})


def test_flags_override_the_file_and_flags_not_given_leave_it_alone(tmp_path):
    path = write(tmp_path, "method: s3\nrounds: 5\nseed: 3\ncache: false\nteacher: openai:gpt-4o-mini\nstudent: tfidf\n")
    config = load_config(path, {"rounds": 2, "teacher": None, "seed": None, "cache": None, "student": "embed-lr"})
    assert (config.method, config.rounds, config.teacher, config.seed, config.cache, config.student) == (
        "s3", 2, "openai:gpt-4o-mini", 3, False, "embed-lr")


def test_falsy_flag_values_still_override_the_file(tmp_path):
    path = write(tmp_path, "rounds: 5\nseed: 3\ncache: true\ntask: from the file\n")
    config = load_config(path, {"rounds": 0, "seed": 0, "cache": False, "task": ""})
    assert (config.rounds, config.seed, config.cache, config.task) == (0, 0, False, "")


def test_an_empty_file_or_no_file_gives_the_defaults(tmp_path):
    assert load_config(write(tmp_path, ""), {}) == load_config(None, {}) == RunConfig()
    assert load_config(write(tmp_path, "# only a comment\n"), {}) == RunConfig()


def test_a_flag_makes_an_invalid_file_setting_valid_and_an_invalid_flag_is_named_as_the_flag(tmp_path):
    path = write(tmp_path, "rounds: 500\n")
    assert load_config(path, {"rounds": 4}).rounds == 4
    with pytest.raises(ConfigError) as err:
        load_config(path, {"rounds": 4, "per_class": 0})
    assert "--per-class" in str(err.value) and str(path) not in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "per_class: 0\n"), {})
    assert f"{path} (per_class)" in str(err.value)


@pytest.mark.parametrize("values", [
    {"fraction": 1.0}, {"fraction": 1e-4}, {"per_class": 1}, {"rounds": 0}, {"rounds": 100}, {"per_error": 100},
    {"max_teacher_calls": 0}, {"max_tokens_budget": 0}, {"dataset": None, "train": "seed.csv"},
    {"price": {"prompt": 0, "completion": 0}}, {"label_check": "centroid"}, {"output_format": "csv"},
    *({"method": method} for method in ("llm2llm", "s3", "promptmix", "msp", "paraphrase", "zerogen", "none")),
])
def test_settings_at_their_bounds_are_accepted(values):
    config = validate_config(values)
    for key, value in values.items():
        assert getattr(config, key) == (Price(**value) if key == "price" else value)


@pytest.mark.parametrize("values, message", [
    ({"fraction": 0}, "greater than 0"),
    ({"fraction": 1.01}, "less than or equal to 1"),
    ({"per_class": 0}, "greater than or equal to 1"),
    ({"rounds": 101}, "less than or equal to 100"),
    ({"per_error": 0}, "greater than or equal to 1"),
    ({"centroid_top": 0}, "greater than or equal to 1"),
    ({"max_teacher_calls": -1}, "greater than or equal to 0"),
    ({"dataset": None}, "give a dataset or a train file"),
    ({"price": {"prompt": -1}}, "greater than or equal to 0"),
    ({"price": {"input": 1}}, "unknown setting 'price.input'"),
    ({"label_check": "always"}, "'auto', 'none' or 'centroid'"),
    ({"method": "gan"}, "unknown method 'gan'; choose from llm2llm, s3, promptmix, msp, paraphrase, zerogen, none"),
])
def test_settings_out_of_bounds_are_refused_with_the_reason(values, message):
    with pytest.raises(ConfigError) as err:
        validate_config(values)
    assert message in str(err.value)


def test_one_shot_flag_adds_to_the_files_method_options_instead_of_replacing_them(tmp_path):
    path = write(tmp_path, "method_options:\n  folds: 3\n  show_wrong_prediction: false\n")
    config = load_config(path, {"method_options": {"one_shot": True}})
    assert config.method_options == {"folds": 3, "show_wrong_prediction": False, "one_shot": True}


@pytest.mark.parametrize("values, where", [
    ({"label_check": "always"}, "setting 'label_check'"),
    ({"price": {"input": 1}}, "setting 'price.input'"),
])
def test_errors_from_neither_a_file_nor_a_flag_name_the_setting(values, where):
    with pytest.raises(ConfigError) as err:
        validate_config(values)
    assert where in str(err.value)


@pytest.mark.parametrize("flags, where", [({"per_class": 0}, "--per-class"), ({"output_format": "xml"}, "--format")])
def test_errors_from_a_flag_name_the_flag_with_or_without_a_file(flags, where, tmp_path):
    for path in (None, write(tmp_path, "rounds: 2\n")):
        with pytest.raises(ConfigError) as err:
            load_config(path, flags)
        assert where in str(err.value)
