"""`llmaug review` in a real browser: Playwright for Python driving headless Chromium (Debian's `chromium`; Playwright
cannot download its own browser here). Skipped, with the reason, where either is missing.

Each test saves a screenshot of what it looked at in $LLMAUG_REVIEW_SCREENSHOTS (default
/tmp/llmaug-review-screenshots).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from llmaug.data import load_examples
from llmaug.decisions import load_decisions
from llmaug.review.retrain import curated_data
from llmaug.review.rundata import ACCEPTED, RunData

from .helpers import HOSTILE, serve

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("LLMAUG_REVIEW_SCREENSHOTS", "/tmp/llmaug-review-screenshots"))
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed: "
                                   "pip install -e '.[dev]' (scripts/install.sh --dev)")
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is not installed: apt-get install chromium (scripts/install.sh --dev does it as root)")
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except sync_api.Error as err:
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(err).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A fresh page that fails the test on a script error, a console error or any dialog (an alert() from row text
    would be one)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    opened.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    opened.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield opened
    context.close()
    assert problems == []


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def row_ids(page) -> list[str]:
    return page.locator("tr.row").evaluate_all("rows => rows.map(row => row.dataset.rowId)")


def test_filter_by_round_and_label(served, page):
    from playwright.sync_api import expect

    run = RunData(served.run_dir)
    expected = [row.id for row in run.rows if row.round == 1 and row.label == "HUM"]
    page.goto(served.server.url + served.base.lstrip("/") + "rows")
    page.select_option("#f-round", "1")
    expect(page.locator("#total")).to_have_text(str(sum(row.round == 1 for row in run.rows)))
    page.select_option("#f-label", "HUM")
    expect(page.locator("#total")).to_have_text(str(len(expected)))

    assert row_ids(page) == expected and expected
    assert "round=1" in page.url and "label=HUM" in page.url  # the filter is in the address: reload keeps it
    shot(page, "rows-filtered")


def test_open_a_row_and_see_its_parent(served, page):
    run = RunData(served.run_dir)
    row = next(r for r in run.rows if r.kind == ACCEPTED)
    page.goto(served.server.url + served.base.lstrip("/") + "rows")
    first = page.locator("tr.row").first
    assert first.get_attribute("data-row-id") == row.id
    assert first.locator("td.parent .t").inner_text() == run.parent(row).text
    assert first.locator("td.parent .pred").inner_text() == f"student said {run.wrong_prediction(row)}"
    raw = first.locator("pre.raw")
    assert not raw.is_visible()
    first.locator("summary").click()
    assert raw.is_visible() and raw.inner_text() == row.raw_output
    shot(page, "rows-open")


def test_reject_a_row_relabel_another_and_find_both_after_a_reload(served, page):
    from playwright.sync_api import expect

    run = RunData(served.run_dir)
    first, second = [r for r in run.rows if r.kind == ACCEPTED][:2]
    new_label = next(label for label in run.labels if label != second.label)
    page.goto(served.server.url + served.base.lstrip("/") + "rows")
    page.locator(f'tr[data-row-id="{first.id}"] button.reject').click()
    expect(page.locator(f'tr[data-row-id="{first.id}"] .badge')).to_have_text("reviewed-out")
    page.locator(f'tr[data-row-id="{second.id}"] select').select_option(new_label)
    expect(page.locator(f'tr[data-row-id="{second.id}"] .badge')).to_have_text("relabelled")

    page.reload()
    expect(page.locator(f'tr[data-row-id="{first.id}"] .badge')).to_have_text("reviewed-out")
    expect(page.locator(f'tr[data-row-id="{second.id}"] .badge')).to_have_text("relabelled")
    assert page.locator(f'tr[data-row-id="{second.id}"] .label').first.inner_text() == new_label
    assert [(d.row_id, d.action) for d in load_decisions(served.run_dir)] == [(first.id, "reject"), (second.id, "relabel")]
    shot(page, "rows-decided")


def test_bulk_reject_over_a_filter_then_undo(served, page):
    from playwright.sync_api import expect

    run = RunData(served.run_dir)
    matching = [r for r in run.rows if r.round == 0 and r.label == "ENTY" and r.kind == ACCEPTED]
    page.goto(served.server.url + served.base.lstrip("/") + "rows?round=0&label=ENTY")
    page.locator(".bulk button.reject").click()
    expect(page.locator(".ok")).to_have_text(f"{len(matching)} rows reviewed out")
    assert page.locator("tr.row .badge", has_text="reviewed-out").count() == len(matching)
    page.locator("button.undo").click()
    expect(page.locator(".ok")).to_have_text(f"undone: {len(matching)} decisions")
    assert page.locator("tr.row .badge", has_text="reviewed-out").count() == 0


def test_retrain_and_see_the_new_accuracy(served, page, decide_on):
    from playwright.sync_api import expect

    decide_on(served.run_dir, "reject", 5)
    page.goto(served.server.url + served.base.lstrip("/"))
    page.get_by_role("button", name="Retrain on the curated data").click()
    after = page.locator("#accuracy-after")
    expect(after).to_be_visible()
    evaluation = json.loads((served.run_dir / "reviewed" / "evaluation.json").read_text())
    assert after.inner_text() == f"{evaluation['accuracy']:.3f}" and evaluation["reviewed_out"] == 5
    shot(page, "overview-retrained")


def test_export_and_load_the_export_again(served, page, tmp_path, decide_on):
    from playwright.sync_api import expect

    decide_on(served.run_dir, "relabel", 2, label="ABBR")
    page.goto(served.server.url + served.base.lstrip("/"))
    page.select_option("select[name=format]", "jsonl")
    page.get_by_role("button", name="Export").click()
    expect(page.locator("#export-result")).to_contain_text("Exported to")
    with page.expect_download() as download:
        page.locator("#export-result a", has_text="download").click()
    saved = tmp_path / "downloaded.jsonl"
    download.value.save_as(saved)

    loaded = load_examples(saved)
    assert [(e.id, e.label) for e in loaded] == [(e.id, e.label) for e in curated_data(served.run_dir).kept]
    assert sum(e.label == "ABBR" for e in loaded) >= 2


def test_row_text_with_html_is_shown_as_text(served, page):
    page.goto(served.server.url + served.base.lstrip("/") + "rows?q=script")
    texts = page.locator("td.text .t").all_inner_texts()
    assert texts and all(text.startswith(HOSTILE) for text in texts)
    assert page.evaluate("window.__xss") is None
    assert page.locator("td.text b, td.text script").count() == 0
    shot(page, "rows-html-as-text")


def test_every_view_renders_and_is_captured(finished_run, big_run, tmp_path, page):
    """Overview, Rows, Errors and the run picker, on the small run and on the 100k-row run."""
    from playwright.sync_api import expect

    shutil.copytree(finished_run, tmp_path / "work" / "llm2llm-trec6")
    shutil.copytree(big_run, tmp_path / "work" / "sample-100k")
    folder = serve(tmp_path / "work")
    try:
        page.goto(folder.server.url)
        expect(page.locator("table.grid tbody tr")).to_have_count(2)
        shot(page, "picker")
        for key, name in (("llm2llm-trec6", "small"), ("sample-100k", "100k")):
            base = folder.server.url + f"runs/{key}/"
            page.goto(base)
            expect(page.locator("h1")).to_contain_text("llm2llm")
            shot(page, f"overview-{name}")
            page.goto(base + "rows")
            expect(page.locator("tr.row")).to_have_count(50)
            shot(page, f"rows-{name}")
            page.goto(base + "errors?round=1")
            expect(page.locator("table.errors")).to_be_visible()
            shot(page, f"errors-{name}")
    finally:
        folder.server.stop()
