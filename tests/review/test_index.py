"""The row index: every filter, their combination, sorting both ways, paging, status counts, and decisions
changing what filters and sorts see. Checked against plain Python over the same rows."""

from __future__ import annotations

import pytest

from llmaug.errors import UserError
from llmaug.decisions import decide
from llmaug.review.index import MAX_PER_PAGE, Query, RowIndex
from llmaug.review.rundata import ACCEPTED, REJECTED, RunData


@pytest.fixture(scope="module")
def big_index(big_run) -> RowIndex:
    return RowIndex(RunData(big_run))


def ids(index: RowIndex, query: Query) -> list[str]:
    return [index.rows[i].id for i in index.matching(query)]


def test_each_filter_matches_exactly_the_rows_plain_python_finds(big_index):
    rows = big_index.rows
    parent = rows[7].parent_ids[0]
    cases = {
        Query(round="2"): lambda r: r.round == 2,
        Query(label="LOC"): lambda r: r.label == "LOC",
        Query(method="llm2llm"): lambda r: r.method == "llm2llm",
        Query(status="rejected"): lambda r: r.kind == REJECTED,
        Query(reason="near duplicate"): lambda r: r.reason_kind == "near duplicate",
        Query(parent=parent): lambda r: r.parent_ids[:1] == (parent,),
        Query(q="VIOLIN of the Comet"): lambda r: "violin of the comet" in (r.text + "\n" + (r.raw_output or "")).casefold(),
        Query(round="1", label="NUM", status="accepted", q="river"):
            lambda r: r.round == 1 and r.label == "NUM" and r.kind == ACCEPTED and "river" in r.text.casefold(),
    }
    for query, keep in cases.items():
        expected = [r.id for r in rows if keep(r)]
        assert expected, query
        assert ids(big_index, query) == expected, query


def test_a_value_no_row_has_matches_nothing(big_index):
    assert big_index.page(Query(label="NO-SUCH-LABEL")).total == 0
    assert big_index.page(Query(round="99")).total == 0
    assert big_index.page(Query(q="zzzz-not-there")).rows == []


@pytest.mark.parametrize("key", ["round", "label", "status", "method", "reason", "text"])
def test_sorting_by_each_key_both_ways(big_index, key):
    def value(i: int):
        row = big_index.rows[i]
        return {"round": row.round, "label": row.label or "", "status": big_index.status_of(row),
                "method": row.method or "", "reason": row.reason_kind, "text": row.text.casefold()}[key]

    query = Query(round="3", sort=key)
    ascending = [value(i) for i in big_index.matching(query)]
    descending = [value(i) for i in big_index.matching(Query(round="3", sort=f"-{key}"))]
    if key == "status":  # statuses sort in their display order, not alphabetically
        order = ["accepted", "rejected", "reviewed-out", "relabelled"]
        ascending, descending = [order.index(v) for v in ascending], [order.index(v) for v in descending]
    assert ascending == sorted(ascending) and descending == sorted(descending, reverse=True)
    assert len(ascending) == big_index.page(Query(round="3")).total


def test_pages_cover_the_matches_once_each_in_order(big_index):
    query = Query(label="HUM", per_page=MAX_PER_PAGE)
    total = big_index.page(query).total
    pages = big_index.page(query).pages
    seen = []
    for number in range(1, pages + 1):
        seen += [row.id for row in big_index.page(Query(label="HUM", per_page=MAX_PER_PAGE, page=number)).rows]
    assert seen == ids(big_index, query) and len(seen) == total
    assert big_index.page(Query(label="HUM", per_page=MAX_PER_PAGE, page=pages + 1)).rows == []


def test_status_counts_are_for_the_other_filters(big_index):
    page = big_index.page(Query(round="1", status="rejected"))
    everything = big_index.page(Query(round="1"))
    assert page.status_counts == everything.status_counts
    assert page.total == page.status_counts["rejected"]
    assert sum(page.status_counts.values()) == everything.total


def test_decisions_change_the_status_and_label_filters_and_sorts(finished_run):
    index = RowIndex(RunData(finished_run))
    accepted = [row for row in index.rows if row.kind == ACCEPTED]
    out, relabelled = accepted[0], accepted[1]
    new_label = next(label for label in index.run.labels if label != relabelled.label)
    made = decide(index.review, "reject", [out.id], index.current_labels([out.id]))
    made += decide(index.review, "relabel", [relabelled.id], index.current_labels([relabelled.id]), new_label)
    index.apply(made)

    assert ids(index, Query(status="reviewed-out")) == [out.id]
    assert ids(index, Query(status="relabelled")) == [relabelled.id]
    assert relabelled.id in ids(index, Query(label=new_label))
    assert relabelled.id not in ids(index, Query(label=relabelled.label))
    assert [index.status_of(index.rows[i]) for i in index.matching(Query(sort="-status"))][:2] == ["relabelled", "reviewed-out"]


def test_rows_the_filters_rejected_take_no_decisions(finished_run):
    index = RowIndex(RunData(finished_run))
    positions = index.matching(Query())
    decidable = set(index.decidable(positions))
    assert decidable == {row.id for row in index.rows if row.kind == ACCEPTED}


@pytest.mark.parametrize("params, where", [
    ({"page": "0"}, "page"), ({"page": "two"}, "page"), ({"per_page": "-5"}, "per_page"), ({"round": "x"}, "round"),
    ({"sort": "price"}, "sort"), ({"status": "deleted"}, "status"),
])
def test_a_bad_query_parameter_is_a_user_error_naming_it(params, where):
    with pytest.raises(UserError) as caught:
        Query.from_params(params)
    assert caught.value.where == where


def test_per_page_is_capped():
    assert Query.from_params({"per_page": "100000"}).per_page == MAX_PER_PAGE
