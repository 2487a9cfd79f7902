"""The price of a teacher's tokens: the config's own `price`, else a price file (`price_file`, or the table shipped
with llmaug, `prices.yaml`), else free for local teachers (embedded, llama-cpp, pool), else unknown."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmaug.config import read_yaml_file
from llmaug.errors import ConfigError
from llmaug.teachers.usage import Price

LOCAL_KINDS = ("embedded", "llama-cpp", "pool")


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    read: str = Field(..., description="when and where the prices were read")
    batch_discount: float = Field(0.5, ge=0, le=1)
    models: dict[str, Price]


@dataclass(frozen=True)
class Pricing:
    price: Price | None  # None: unknown
    source: str  # where it came from, for the plan's notes


def load_price_table(path: str | Path | None = None) -> PriceTable:
    """A user's price file (read like every YAML setting file: missing, bad YAML with line and column) or the shipped one."""
    loaded = read_yaml_file(path, "price file") if path else yaml.safe_load(
        files("llmaug.teachers").joinpath("prices.yaml").read_text(encoding="utf-8"))
    try:
        return PriceTable.model_validate(loaded)
    except ValidationError as err:
        raise ConfigError(f"not a usable price file ({type(err).__name__}: {str(err).splitlines()[0]})", path or "prices.yaml") from None


def pricing(teacher_kind: str, model: str, given: Price | None = None, price_file: str | None = None,
            batch: bool = False) -> Pricing:
    """What the teacher's tokens cost (US dollars per million), and where that comes from."""
    if given is not None:
        return Pricing(given, "the config's price")
    if teacher_kind in LOCAL_KINDS and price_file is None:
        return Pricing(Price(), "a local teacher: no charge")
    table = load_price_table(price_file)
    key = max((name for name in table.models if model == name or model.startswith(name + "-")), key=len, default=None)
    if key is None:
        return Pricing(None, f"no price for {model!r} in {price_file or 'the shipped table'} (set price: in the config)")
    price = table.models[key]
    source = f"{price_file or 'the shipped table'}: {key}, read {table.read}"
    if batch:
        keep = 1 - table.batch_discount
        price = Price(prompt=price.prompt * keep, completion=price.completion * keep)
        source += f"; Batch API: {table.batch_discount:.0%} off"
    return Pricing(price, source)
