"""Teacher prices: the shipped table, a user's price file, and the errors a bad price file gives."""

from __future__ import annotations

import pytest

from llmaug.errors import ConfigError
from llmaug.teachers.prices import load_price_table, pricing
from llmaug.teachers.usage import Price


def test_the_shipped_table_prices_openai_models_and_local_teachers_cost_nothing():
    assert load_price_table().models
    assert pricing("embedded", "smollm2").price == Price()


def test_a_price_file_of_ones_own_is_used(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("read: 2026-12-01, by hand\nmodels:\n  my-model: {prompt: 1.5, completion: 3.0}\n", encoding="utf-8")
    found = pricing("openai", "my-model", price_file=str(path))
    assert found.price == Price(prompt=1.5, completion=3.0)


def test_bad_price_files_are_one_line_errors_naming_the_file(tmp_path):
    with pytest.raises(ConfigError, match="price file not found") as missing:
        load_price_table(tmp_path / "none.yaml")
    assert str(tmp_path / "none.yaml") in str(missing.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("read: x\nmodels: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML") as bad:
        load_price_table(broken)
    assert f"{broken}:3:1" in str(bad.value)
    unusable = tmp_path / "unusable.yaml"
    unusable.write_text("models: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a usable price file"):
        load_price_table(unusable)
