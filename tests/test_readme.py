"""The README's tables list the registry's components: nothing is documented that does not exist, and nothing
registered is left out."""

from __future__ import annotations

import re
from pathlib import Path

from llmaug import registry

README = Path(__file__).resolve().parents[1] / "README.md"


def table_first_cells(section: str) -> list[str]:
    """The first cell of every table row in a README section (header rows are not backticked, except --method)."""
    text = README.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [line.split("|")[1].strip() for line in body.splitlines() if re.match(r"^\| `", line)]


def test_every_registered_teacher_and_student_is_in_its_readme_table():
    for section, kind in (("Teachers", "teacher"), ("Students", "student")):
        cells = " ".join(table_first_cells(section))
        for name in registry.names(kind):
            assert f"`{name}" in cells, (section, name)


def test_the_methods_table_lists_exactly_the_registered_methods():
    cells = table_first_cells("Methods")
    listed = {cell.strip("`") for cell in cells if cell != "`--method`"}
    assert listed | {"llm2llm"} == set(registry.METHODS)
