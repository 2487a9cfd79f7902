"""The review app over real HTTP: pages, the JSON rows API, decisions (single, bulk, undo), retrain, export,
folders of runs, and paging a 100k-row run."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import time
from html import unescape
from urllib.parse import urlencode

import pytest

from llmaug.data import load_examples
from llmaug.decisions import load_decisions
from llmaug.review.rundata import ACCEPTED, REJECTED, RunData

from .helpers import serve


def rows_api(served, **params) -> dict:
    reply = served.http.get(served.base + "api/rows?" + urlencode(params))
    assert reply.status == 200, reply.text
    return reply.json()


def test_a_run_directory_opens_on_its_overview(served):
    reply = served.http.get("/")
    assert reply.status == 302 and reply.headers["location"] == served.base
    page = served.http.get(served.base).text
    summary = json.loads((served.run_dir / "summary.json").read_text())
    assert "<h1>llm2llm on trec6" in page and "finished" in page
    for record in summary["rounds"]:
        assert f'<td class="num">{record["train_size"]:,}</td>' in page
    assert page.count('<td class="num">n/a</td>') == len(summary["rounds"])  # cost: no price in this run
    for name in ("test_accuracy", "accepted_rejected", "confusion_matrix"):
        assert f'src="{served.base}plots/{name}.png"' in page
    assert "LLMAUG_REVIEW_TEST_KEY" in page  # the variable's name is a setting; its value is never read


def test_the_overview_shows_verdict_selection_stop_reason_and_cv_accuracy_when_the_run_has_them(served):
    path = served.run_dir / "summary.json"
    summary = json.loads(path.read_text())
    for k, record in enumerate(summary["rounds"]):
        record.update(cv_accuracy=0.5 + 0.01 * k, cv_accuracy_ci95=[0.4, 0.6 + 0.01 * k], cost_usd=None)
    summary.update(verdict={"on": "cv-seed", "outcome": "helped", "delta_accuracy": 0.031, "ci95": [0.004, 0.058],
                            "delta_macro_f1": 0.02, "ci95_macro_f1": [-0.01, 0.05], "mcnemar_p": 0.04,
                            "baseline_round": 0, "final_round": 2,
                            "per_class_f1": {"LOC": {"before": 0.5, "after": 0.6, "delta": 0.1}}},
                   selection={"chosen_round": 1, "rule": "best-cv", "reason": "highest CV accuracy"},
                   stopped={"reason": "teacher budget reached", "detail": "120 of 120 requests"})
    path.write_text(json.dumps(summary))
    with_fields = serve(served.run_dir)
    try:
        page = unescape(with_fields.http.get(with_fields.base).text)
    finally:
        with_fields.server.stop()
    assert "stopped: teacher budget reached (120 of 120 requests)" in page
    assert "kept round 1 (best-cv): highest CV accuracy" in page
    assert '<p class="outcome">helped</p>' in page and "+0.031" in page and "[0.004, 0.058]" in page
    assert "held-out seed predictions" in page and "CV accuracy" in page and "[0.400, 0.620]" in page
    assert '<tr class="chosen">' in page


def test_an_unfinished_run_is_reviewed_from_its_rounds(run_dir):
    for name in ("summary.json", "data.jsonl", "report.md", "report.html"):
        (run_dir / name).unlink()
    shutil.rmtree(run_dir / "rounds" / "002")
    usage = json.loads((run_dir / "usage.json").read_text())
    (run_dir / "usage.json").write_text(json.dumps({**usage, "budget_skipped": 4}))
    unfinished = serve(run_dir)
    try:
        overview = unfinished.http.get(unfinished.base).text
        assert "unfinished" in overview and "The run's full report" not in overview
        assert "stopped: teacher budget reached" in overview
        assert overview.count('<td class="num">n/a</td>') == 2  # rounds 0 and 1, from their metrics.json
        assert rows_api(unfinished)["total"] == len(RunData(run_dir).rows) > 0
        assert unfinished.http.get(unfinished.base + "errors?round=1").status == 200
        assert unfinished.http.get(unfinished.base + "report").status == 404
    finally:
        unfinished.server.stop()


def test_rows_come_with_their_parent_seed_and_the_wrong_prediction(served):
    run = RunData(served.run_dir)
    reply = rows_api(served, per_page=500)
    assert reply["total"] == len(run.rows)
    for row in reply["rows"]:
        source = next(r for r in run.rows if r.id == row["id"])
        assert row["parent"]["text"] == run.parent(source).text
        assert row["parent"]["predicted"] == run.wrong_prediction(source) != row["parent"]["label"]
        assert row["raw_output"] == source.raw_output


def test_the_rows_page_filters_on_the_server_and_answers_htmx_with_the_table_only(served):
    run = RunData(served.run_dir)
    expected = [r for r in run.rows if r.round == 1 and r.label == "ENTY"]
    full = served.http.get(served.base + "rows?round=1&label=ENTY").text
    partial = served.http.get(served.base + "rows?round=1&label=ENTY", headers={"HX-Request": "true"}).text

    assert full.startswith("<!doctype html>") and 'id="filters"' in full
    assert not partial.lstrip().startswith("<!doctype") and 'id="filters"' not in partial
    for page in (full, partial):
        assert re.findall(r'data-row-id="([^"]+)"', page) == [r.id for r in expected]
        assert f'<strong id="total">{len(expected)}</strong>' in page
    assert '<option value="1" selected>1</option>' in full and "<option selected>ENTY</option>" in full


def test_a_bad_filter_value_is_a_400_with_a_one_line_reason(served):
    reply = served.http.get(served.base + "rows?page=zero", headers={"HX-Request": "true"})
    assert reply.status == 400 and unescape(reply.text) == "page: must be a whole number, got 'zero'"
    assert reply.headers["hx-retarget"] == "#notice"  # htmx shows it in the page's notice line
    plain = served.http.get(served.base + "rows?page=zero")
    assert plain.status == 400 and plain.text == "page: must be a whole number, got 'zero'"
    assert plain.headers["content-type"].startswith("text/plain")
    assert served.http.get(served.base + "errors?round=9").status == 400
    assert served.http.get("/runs/no-such-run/rows").status == 404


def test_the_errors_view_lists_each_rounds_wrong_seeds_with_what_they_spawned(served):
    run = RunData(served.run_dir)
    page = unescape(served.http.get(served.base + "errors?round=0").text)
    assert len(run.errors[0]) > 0
    for error in run.errors[0]:
        assert error.seed.text in page
    spawned = [r for r in run.rows if r.round == 0]
    assert all((row.text or row.raw_output) in page for row in spawned)
    assert f"{served.base}rows?parent=" in page


def test_reject_restore_and_relabel_one_row_each_a_line_in_review_jsonl(served):
    run = RunData(served.run_dir)
    first, second = [r for r in run.rows if r.kind == ACCEPTED][:2]
    reply = served.http.post(served.base + "decide", {"action": "reject", "row_id": first.id})
    assert reply.status == 200 and 'class="badge reviewed-out"' in reply.text and ">Restore<" in reply.text
    new_label = next(label for label in run.labels if label != second.label)
    reply = served.http.post(served.base + "decide", {"action": "relabel", "row_id": second.id, "label": new_label})
    assert 'class="badge relabelled"' in reply.text and f"was {second.label}" in reply.text
    served.http.post(served.base + "decide", {"action": "restore", "row_id": first.id})

    decisions = load_decisions(served.run_dir)
    assert [(d.row_id, d.action, d.new) for d in decisions] == [
        (first.id, "reject", "out"), (second.id, "relabel", new_label), (first.id, "restore", "kept")]
    assert rows_api(served, status="relabelled")["rows"][0]["id"] == second.id
    assert rows_api(served, status="reviewed-out")["total"] == 0


def test_a_bulk_action_covers_every_row_matching_the_filter_and_undo_reverts_it(served):
    run = RunData(served.run_dir)
    matching = [r.id for r in run.rows if r.round == 0 and r.label == "HUM" and r.kind == ACCEPTED]
    assert matching
    reply = served.http.post(served.base + "decide", {"action": "reject", "scope": "filter", "round": "0", "label": "HUM"})
    assert reply.status == 200 and f"{len(matching)} row{'s' if len(matching) > 1 else ''} reviewed out" in reply.text

    decisions = load_decisions(served.run_dir)
    assert [d.row_id for d in decisions] == matching
    assert all(d.filter == {"round": "0", "label": "HUM"} for d in decisions)
    assert rows_api(served, status="reviewed-out")["total"] == len(matching)

    reply = served.http.post(served.base + "undo", {"round": "0"})
    assert f"undone: {len(matching)} decision" in reply.text
    assert rows_api(served, status="reviewed-out")["total"] == 0
    assert len(load_decisions(served.run_dir)) == 2 * len(matching)


def test_decisions_survive_a_restart_of_the_server(served):
    row = next(r for r in RunData(served.run_dir).rows if r.kind == ACCEPTED)
    served.http.post(served.base + "decide", {"action": "reject", "row_id": row.id})
    served.server.stop()
    again = serve(served.run_dir)
    try:
        assert [r["id"] for r in rows_api(again, status="reviewed-out")["rows"]] == [row.id]
    finally:
        again.server.stop()
    served.server = serve(served.run_dir).server  # the fixture stops whatever it holds


@pytest.mark.parametrize("form, message", [
    ({"action": "delete", "row_id": "x"}, "action: unknown action 'delete'"),
    ({"action": "reject", "row_id": "no-such-row"}, "row_id: no such row 'no-such-row'"),
    ({"action": "relabel", "row_id": "x"}, "label: relabel needs a label"),
])
def test_bad_decisions_are_refused_with_a_reason(served, form, message):
    reply = served.http.post(served.base + "decide", form)
    assert reply.status == 400 and reply.text.startswith(message)
    assert load_decisions(served.run_dir) == []


def test_rows_the_filters_rejected_take_no_decision(served):
    rejected = next(r for r in RunData(served.run_dir).rows if r.kind == REJECTED)
    reply = served.http.post(served.base + "decide", {"action": "reject", "row_id": rejected.id})
    assert reply.status == 400 and "filters rejected" in reply.text


def test_the_retrain_button_trains_in_the_background_and_shows_before_and_after(served):
    row = next(r for r in RunData(served.run_dir).rows if r.kind == ACCEPTED)
    served.http.post(served.base + "decide", {"action": "reject", "row_id": row.id})
    started = served.http.post(served.base + "retrain", {})
    assert started.status == 200 and 'id="retrain"' in started.text
    served.server.wait_for_retrain()

    page = served.http.get(served.base + "retrain").text
    evaluation = json.loads((served.run_dir / "reviewed" / "evaluation.json").read_text())
    assert f'<td class="num" id="accuracy-after">{evaluation["accuracy"]:.3f}</td>' in page
    assert "1 reviewed out" in page and "every 1s" not in page
    assert f'{evaluation["accuracy"]:.3f}' in served.http.get(served.base).text


@pytest.mark.parametrize("fmt", ["jsonl", "argilla", "hf"])
def test_export_writes_into_reviewed_and_files_can_be_downloaded(served, fmt):
    reply = served.http.post(served.base + "export", {"format": fmt})
    path = served.run_dir / "reviewed" / "export" / {"jsonl": "curated.jsonl", "argilla": "argilla-records.json",
                                                      "hf": "curated-hf"}[fmt]
    assert reply.status == 200 and str(path) in unescape(reply.text) and path.exists()
    download = served.http.get(served.base + f"download/{fmt}")
    if fmt == "hf":
        assert download.status == 404  # a folder: the page gives its path
    else:
        assert download.status == 200 and download.body == path.read_bytes()
        assert download.headers["content-disposition"] == f'attachment; filename="{path.name}"'
    if fmt == "jsonl":
        assert len(load_examples(path)) == json.loads((served.run_dir / "summary.json").read_text())["final_size"]


def test_a_folder_of_runs_gets_a_run_picker(finished_run, tmp_path):
    for name in ("work/trec6-s0", "work/trec6-s1"):
        shutil.copytree(finished_run, tmp_path / name)
    folder = serve(tmp_path / "work")
    try:
        picker = folder.http.get("/").text
        assert picker.count('href="/runs/') == 2 and "trec6-s0" in picker and "trec6-s1" in picker
        assert folder.http.get("/runs/trec6-s1/rows").status == 200
    finally:
        folder.server.stop()


def test_a_nested_run_name_becomes_one_url_segment(finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "grid" / "cell" / "run")
    folder = serve(tmp_path)
    try:
        assert 'href="/runs/grid~cell~run/"' in folder.http.get("/").text
        assert folder.http.get("/runs/grid~cell~run/errors").status == 200
    finally:
        folder.server.stop()


# --------------------------------------------------------------------------------------------- 100k rows


def test_a_run_of_100k_rows_is_paged_on_the_server(served_big):
    page = served_big.http.get(served_big.base + "rows").text
    assert page.count("data-row-id=") == 50 and '<strong id="total">100,000</strong>' in page
    last = served_big.http.get(served_big.base + "rows?page=2000").text
    assert last.count("data-row-id=") == 50 and "page 2000 of 2,000" in last and 'rel="next"' not in last


def test_filtered_pages_of_100k_rows_answer_quickly(served_big):
    """A loose bound for a shared CI machine; bench/review_latency.py measures the real numbers."""
    queries = ["rows?round=2&label=LOC", "rows?q=violin+of+the", "rows?status=rejected&sort=-text", "rows?page=1500"]
    seconds = []
    for query in queries * 3:
        started = time.perf_counter()
        reply = served_big.http.get(served_big.base + query, headers={"HX-Request": "true"})
        seconds.append(time.perf_counter() - started)
        assert reply.status == 200
    assert statistics.median(seconds) < 1.0, seconds
