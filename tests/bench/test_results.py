"""Results pages: a bench script rewrites its generated part and keeps the hand-written text around it."""

from __future__ import annotations

from llmaug.bench.results import GENERATED_END, GENERATED_START, write_page


def test_a_new_page_gets_its_title_and_the_generated_part_between_markers(tmp_path):
    page = tmp_path / "page.md"
    write_page(page, "| a |\n|---|\n| 1 |\n", "Results")
    assert page.read_text() == f"# Results\n\n{GENERATED_START}\n| a |\n|---|\n| 1 |\n{GENERATED_END}\n"


def test_a_rewrite_replaces_only_the_generated_part_and_keeps_the_notes_before_and_after(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# Mine\n\nSet-up prose.\n\n{GENERATED_START}\nold table\n{GENERATED_END}\n\n## Notes\n\nWhy.\n")
    write_page(page, "new table", "ignored for an existing page")
    assert page.read_text() == f"# Mine\n\nSet-up prose.\n\n{GENERATED_START}\nnew table\n{GENERATED_END}\n\n## Notes\n\nWhy.\n"
    write_page(page, "new table", "ignored")
    assert page.read_text().count("Why.") == 1 and page.read_text().count(GENERATED_START) == 1
