"""`llmaug.config`: RunConfig's bounds, component options resolved against the registry, the YAML a run records
(config.yaml) and CLI flags over a config file.

The CLI's one-line errors for bad settings are in tests/test_bad_input.py; these are the rules underneath.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmaug import registry
from llmaug.config import RunConfig, changed_settings, config_yaml, load_config, validate_config
from llmaug.errors import ConfigError
from llmaug.session import build_method
from llmaug.teachers.usage import Price


def write(folder: Path, text: str) -> Path:
    path = folder / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_yaml_loads_back_to_the_same_config(tmp_path):
    config = validate_config(dict(
        method="s3", dataset=None, train="seeds/train.csv", eval="seeds/test.csv", fraction=None, per_class=8,
        text_col="sentence", label_col="intent", task="intent detection", unit="utterance",
        label_descriptions={"card_arrival": "asks when a card arrives", "café": "naïve: ünïcode"},
        teacher="openai-compatible:http://127.0.0.1:8000/v1@qwen", teacher_options={"concurrency": 4, "timeout": 2.5},
        api_key_env="MY_TEACHER_KEY", student="tfidf", student_options={"ngram_range": [1, 3], "C": 3.0},
        rounds=0, per_error=2, method_options={"rationales": 3}, label_check="none", centroid_top=2, seed=7,
        out="runs/x", cache=False, max_teacher_calls=0, max_tokens_budget=1000,
        price={"prompt": 0.15, "completion": 0.6}, output_format="parquet",
    ))
    text = config_yaml(config)
    assert load_config(write(tmp_path, text), {}) == config
    assert list(yaml.safe_load(text)) == list(RunConfig.model_fields)  # every setting, in the model's order
    assert config.method_options["rounds"] == 0 and config.method_options["rationales"] == 3
    assert config.teacher_options["api_key_env"] == "MY_TEACHER_KEY"


def test_the_resolved_config_lists_every_component_option_with_its_default(tmp_path):
    config = load_config(None, {})
    assert config.method_options == registry.METHODS["llm2llm"].defaults()
    assert config.teacher_options == registry.TEACHERS["embedded"].defaults()
    assert config.student_options == registry.STUDENTS["finetune"].defaults()
    assert load_config(write(tmp_path, config_yaml(config)), {}) == config  # a complete, rerunnable file


def test_a_flag_overrides_the_files_method_option(tmp_path):
    """Bug: `--config f.yaml --rounds 2` over `method_options: {rounds: 5}` ran 5 rounds while config.yaml said 2."""
    path = write(tmp_path, "method_options:\n  rounds: 5\n  ask: diverse\n")
    config = load_config(path, {"rounds": 2})
    assert config.method_options["rounds"] == 2 and config.method_options["ask"] == "diverse"
    assert build_method(config).rounds == 2  # the method that runs is the one the config records
    assert yaml.safe_load(config_yaml(config))["method_options"]["rounds"] == 2


def test_an_option_the_method_does_not_take_is_an_error_naming_option_method_and_flag():
    """Bug: `--method promptmix --rounds 7` was silently ignored."""
    with pytest.raises(ConfigError) as err:
        load_config(None, {"method": "promptmix", "rounds": 7})
    assert "method 'promptmix' has no option 'rounds'" in str(err.value) and str(err.value).startswith("--rounds:")
    with pytest.raises(ConfigError, match=r"^--option cycle: method 'promptmix' has no option 'cycle' \(its options: cycles,"):
        load_config(None, {"method": "promptmix", "method_options.cycle": 3}, {"method_options.cycle": "--option cycle"})


def test_the_top_level_shorthand_and_its_method_option_cannot_disagree(tmp_path):
    with pytest.raises(ConfigError, match="rounds is set twice"):
        load_config(write(tmp_path, "rounds: 3\nmethod_options: {rounds: 5}\n"), {})
    assert load_config(write(tmp_path, "rounds: 3\nmethod_options: {rounds: 3}\n"), {}).method_options["rounds"] == 3


def test_a_bad_option_in_the_file_is_named_as_the_file_spelled_it(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "rounds: -1\n"), {})
    assert f"{tmp_path / 'run.yaml'} (rounds)" in str(err.value) and "option 'rounds' of method 'llm2llm'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "method_options: {rounds: -1}\n"), {})
    assert "(method_options.rounds)" in str(err.value)


def test_teacher_options_are_typed_so_max_tokens_field_can_be_set_and_keys_cannot(monkeypatch):
    """Bug: any option whose name held "token", "key" or "secret" was refused, so max_tokens_field could not be set."""
    config = load_config(None, {"teacher": "openai-compatible:http://127.0.0.1:9/v1@m",
                                "teacher_options.max_tokens_field": "max_completion_tokens"})
    assert config.teacher_options["max_tokens_field"] == "max_completion_tokens"
    with pytest.raises(ConfigError) as err:
        load_config(None, {"teacher": "openai:gpt-4o-mini", "teacher_options.api_key": "sk-canary-7f3e9a"})
    assert "teacher 'openai' has no option 'api_key'" in str(err.value) and "sk-canary" not in str(err.value)
    with pytest.raises(ConfigError) as err:  # the key pasted where its variable's name belongs
        load_config(None, {"teacher": "openai:gpt-4o-mini", "api_key_env": "sk-canary-7f3e9a+/x"})
    assert "option 'api_key_env'" in str(err.value) and "sk-canary" not in str(err.value)
    with pytest.raises(ConfigError, match="teacher 'embedded' has no option 'api_key_env'"):
        load_config(None, {"api_key_env": "MY_KEY"})


def test_no_options_model_has_a_field_for_a_secret():
    """The typed rule behind "keys only through api_key_env": no component option can hold a key."""
    for kind in registry.REGISTRY.values():
        for component in kind.values():
            for name in component.options_model.model_fields:
                lowered = name.lower()
                assert not any(word in lowered for word in ("secret", "password", "credential")), (component.name, name)
                assert "key" not in lowered or name == "api_key_env", (component.name, name)


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
    assert (config.method, config.method_options["rounds"], config.teacher, config.seed, config.cache, config.student) == (
        "s3", 2, "openai:gpt-4o-mini", 3, False, "embed-lr")


def test_falsy_flag_values_still_override_the_file(tmp_path):
    path = write(tmp_path, "rounds: 5\nseed: 3\ncache: true\ntask: from the file\n")
    config = load_config(path, {"rounds": 0, "seed": 0, "cache": False, "task": ""})
    assert (config.method_options["rounds"], config.seed, config.cache, config.task) == (0, 0, False, "")


def test_an_empty_file_or_no_file_gives_the_defaults(tmp_path):
    assert load_config(write(tmp_path, ""), {}) == load_config(None, {})
    assert load_config(write(tmp_path, "# only a comment\n"), {}) == load_config(None, {})


def test_a_flag_makes_an_invalid_file_setting_valid_and_an_invalid_flag_is_named_as_the_flag(tmp_path):
    path = write(tmp_path, "rounds: 500\n")
    assert load_config(path, {"rounds": 4}).method_options["rounds"] == 4
    with pytest.raises(ConfigError) as err:
        load_config(path, {"rounds": 4, "per_class": 0})
    assert "--per-class" in str(err.value) and str(path) not in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "per_class: 0\n"), {})
    assert f"{path} (per_class)" in str(err.value)


def test_the_student_spec_model_becomes_its_model_option():
    config = load_config(None, {"student": "finetune:/models/minilm"})
    assert config.student == "finetune" and config.student_options["model"] == "/models/minilm"


def test_changed_settings_leave_out_defaults_of_components_too():
    assert changed_settings(load_config(None, {})) == {}
    assert changed_settings(load_config(None, {"rounds": 5, "student": "tfidf"})) == {
        "method_options": {"rounds": 5}, "student": "tfidf"}


@pytest.mark.parametrize("values", [
    {"fraction": 1.0}, {"fraction": 1e-4}, {"per_class": 1}, {"max_teacher_calls": 0}, {"max_tokens_budget": 0},
    {"dataset": None, "train": "seed.csv"}, {"price": {"prompt": 0, "completion": 0}}, {"label_check": "centroid"},
    {"output_format": "csv"}, *({"method": name} for name in registry.METHODS),
])
def test_settings_at_their_bounds_are_accepted(values):
    config = validate_config(values)
    for key, value in values.items():
        assert getattr(config, key) == (Price(**value) if key == "price" else value)


@pytest.mark.parametrize("values", [{"rounds": 0}, {"rounds": 100}, {"per_error": 100}])
def test_method_options_at_their_bounds_are_accepted(values):
    config = validate_config(values)
    assert all(config.method_options[key] == value for key, value in values.items())


@pytest.mark.parametrize("values, message", [
    ({"fraction": 0}, "greater than 0"),
    ({"fraction": 1.01}, "less than or equal to 1"),
    ({"per_class": 0}, "greater than or equal to 1"),
    ({"rounds": 101}, "option 'rounds' of method 'llm2llm': Input should be less than or equal to 100"),
    ({"per_error": 0}, "option 'per_error' of method 'llm2llm': Input should be greater than or equal to 1"),
    ({"centroid_top": 0}, "greater than or equal to 1"),
    ({"max_teacher_calls": -1}, "greater than or equal to 0"),
    ({"dataset": None}, "give a dataset or a train file"),
    ({"price": {"prompt": -1}}, "greater than or equal to 0"),
    ({"price": {"input": 1}}, "unknown setting 'price.input'"),
    ({"label_check": "always"}, "'auto', 'none' or 'centroid'"),
    ({"method": "gan"}, "unknown method 'gan'; choose from llm2llm, s3, promptmix, msp, paraphrase, zerogen, none"),
    ({"student": "svm"}, "unknown student 'svm'; choose from finetune, embed-lr, tfidf, causal-lm"),
    ({"teacher": "gpt5"}, "unknown teacher 'gpt5'"),
])
def test_settings_out_of_bounds_are_refused_with_the_reason(values, message):
    with pytest.raises(ConfigError) as err:
        validate_config(values)
    assert message in str(err.value)


def test_one_shot_flag_adds_to_the_files_method_options_instead_of_replacing_them(tmp_path):
    path = write(tmp_path, "method_options:\n  ask: diverse\n  show_wrong_prediction: false\n")
    config = load_config(path, {"one_shot": True})
    assert (config.method_options["ask"], config.method_options["show_wrong_prediction"], config.method_options["one_shot"]) == (
        "diverse", False, True)


@pytest.mark.parametrize("values, where", [
    ({"label_check": "always"}, "setting 'label_check'"),
    ({"price": {"input": 1}}, "setting 'price.input'"),
    ({"method_options": {"rounds": "x"}}, "setting 'method_options.rounds'"),
])
def test_errors_from_neither_a_file_nor_a_flag_name_the_setting(values, where):
    with pytest.raises(ConfigError) as err:
        validate_config(values)
    assert where in str(err.value)


@pytest.mark.parametrize("flags, where", [
    ({"per_class": 0}, "--per-class"), ({"output_format": "xml"}, "--format"), ({"rounds": -3}, "--rounds"),
    ({"student_options.C": 0, "student": "tfidf"}, "--student-option C"),
])
def test_errors_from_a_flag_name_the_flag_with_or_without_a_file(flags, where, tmp_path):
    for path in (None, write(tmp_path, "rounds: 2\n")):
        with pytest.raises(ConfigError) as err:
            load_config(path, flags)
        assert where in str(err.value)


def test_the_paper_profile_restores_the_published_rules_unless_a_setting_says_otherwise():
    paper = load_config(None, {"profile": "paper"})
    assert paper.select == "last"
    assert (paper.method_options["error_source"], paper.method_options["target"], paper.method_options["ask"]) == (
        "train", "errors", "similar")
    mixed = load_config(None, {"profile": "paper", "select": "best-cv", "method_options.ask": "diverse"})
    assert mixed.select == "best-cv" and mixed.method_options["ask"] == "diverse"
    assert load_config(None, {}).select == "best-cv" and load_config(None, {}).method_options["error_source"] == "cross-val"
    assert load_config(None, {"profile": "paper", "method": "s3"}).select == "last"  # only LLM2LLM has those options
