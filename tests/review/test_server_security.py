"""The review app's security: loopback by default with a Host check, a token in every URL on any other host, the
token header on every change (no cross-site posts), files only from inside the run directory, escaped row text and
no API key anywhere."""

from __future__ import annotations

import os
import re
from html import unescape

import pytest

from llmaug.decisions import DECISIONS_FILE
from llmaug.review.rundata import ACCEPTED, RunData
from llmaug.review.server import CSP, TOKEN_HEADER

from .helpers import HOSTILE, KEY_ENV, serve


@pytest.fixture
def remote(run_dir):
    """The app bound to a host other than 127.0.0.1 (127.0.0.2 is loopback too, so nothing leaves the machine)."""
    handle = serve(run_dir, host="127.0.0.2")
    yield handle
    handle.server.stop()


def with_token(remote, path: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}token={remote.server.review.token}"


def pages(served, query: str = "") -> dict[str, str]:
    paths = ["", "rows", "rows?q=script", "errors?round=0", "errors?round=1", "api/rows?per_page=500", "report"]
    return {path: served.http.get(served.base + path + query).text for path in paths}


# ----------------------------------------------------------------------------------------------- loopback


def test_the_default_server_listens_on_loopback_and_needs_no_token_to_read(served):
    assert served.server.url.startswith("http://127.0.0.1:") and "token=" not in served.server.url
    assert served.http.get(served.base).status == 200


def test_a_request_for_another_host_name_is_refused(served):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1 sends Host: evil.example."""
    reply = served.http.get(served.base, headers={"Host": f"evil.example:{served.server.review.port}"})
    assert reply.status == 403
    assert served.http.get(served.base, headers={"Host": f"localhost:{served.server.review.port}"}).status == 200


def test_changes_without_the_token_header_are_refused(served):
    row = next(r for r in RunData(served.run_dir).rows if r.kind == ACCEPTED)
    for headers in ({}, {TOKEN_HEADER: "guessed"}):
        reply = served.http.post(served.base + "decide", {"action": "reject", "row_id": row.id}, headers=headers, token=False)
        assert reply.status == 403
    assert not (served.run_dir / DECISIONS_FILE).exists()


def test_a_cross_site_form_post_is_refused_even_with_the_token(served):
    row = next(r for r in RunData(served.run_dir).rows if r.kind == ACCEPTED)
    plain_form = served.http.post(served.base + "decide", {"action": "reject", "row_id": row.id},
                                  headers={"Origin": "http://evil.example"}, token=False)
    with_header = served.http.post(served.base + "decide", {"action": "reject", "row_id": row.id},
                                   headers={"Origin": "http://evil.example"})
    assert plain_form.status == with_header.status == 403
    assert not (served.run_dir / DECISIONS_FILE).exists()
    same_origin = served.http.post(served.base + "decide", {"action": "reject", "row_id": row.id},
                                   headers={"Origin": f"http://127.0.0.1:{served.server.review.port}"})
    assert same_origin.status == 200


# ------------------------------------------------------------------------------------------ another host


def test_on_another_host_every_request_needs_the_token_in_the_url(remote):
    assert "?token=" in remote.server.url
    for path in ("/", remote.base, remote.base + "rows", remote.base + "plots/test_accuracy.png", "/static/htmx.min.js"):
        assert remote.http.get(path).status == 403, path
        assert remote.http.get(path + "?token=wrong").status == 403, path
        assert remote.http.get(with_token(remote, path)).status in (200, 302), path


def test_on_another_host_every_link_and_asset_on_a_page_carries_the_token(remote):
    page = remote.http.get(with_token(remote, remote.base + "rows")).text
    links = re.findall(r'(?:href|src|hx-get|hx-post)="([^"]+)"', page)
    assert len(links) > 20
    assert all(f"token={remote.server.review.token}" in unescape(link) for link in links), links


def test_on_another_host_changes_need_the_token_in_the_url_and_the_header(remote):
    row = next(r for r in RunData(remote.run_dir).rows if r.kind == ACCEPTED)
    form = {"action": "reject", "row_id": row.id}
    assert remote.http.post(with_token(remote, remote.base + "decide"), form, token=False).status == 403
    assert remote.http.post(remote.base + "decide", form).status == 403
    assert remote.http.post(with_token(remote, remote.base + "decide"), form).status == 200


# ------------------------------------------------------------------------------------------------ files


@pytest.mark.parametrize("path", [
    "plots/../config.yaml", "plots/..%2fconfig.yaml", "plots/..%2F..%2Fsummary.json", "plots/%2e%2e%2fusage.json",
    "plots/....//config.yaml", "plots/..\\config.yaml", "plots/%2Fetc%2Fpasswd", "plots/secret.png",
    "download/..%2f..%2fconfig.yaml", "download/jsonl%00",
])
def test_paths_leading_out_of_the_plots_folder_are_not_served(served, path):
    reply = served.http.get(served.base + path)
    assert reply.status in (400, 403, 404), path
    assert b"api_key_env" not in reply.body and b"root:" not in reply.body and b"rounds" not in reply.body


@pytest.mark.parametrize("path", ["/static/..%2fserver.py", "/static/../server.py", "/static/%2e%2e/rundata.py",
                                  "/runs/..%2f..%2f/", "/runs/%2e%2e/rows"])
def test_paths_leading_out_of_the_static_folder_or_the_runs_are_not_served(served, path):
    reply = served.http.get(path)
    assert reply.status in (400, 403, 404), path
    assert b"import" not in reply.body


def test_a_link_in_plots_pointing_outside_the_run_is_not_followed(served, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG secret outside the run")
    (served.run_dir / "plots" / "linked.png").symlink_to(outside)
    assert served.http.get(served.base + "plots/linked.png").status == 404
    assert served.http.get(served.base + "plots/test_accuracy.png").body.startswith(b"\x89PNG")


# ------------------------------------------------------------------------------------------ row text, keys


def test_html_in_row_text_is_shown_as_text_everywhere(served):
    run = RunData(served.run_dir)
    assert any(HOSTILE in row.text for row in run.rows)
    for path, page in pages(served).items():
        if path in ("api/rows?per_page=500",):
            continue
        assert "<script>window.__xss" not in page and "<b>bold</b>" not in page, path
    rows = served.http.get(served.base + "rows?q=script").text
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt; &lt;b&gt;bold&lt;/b&gt;" in rows


def test_a_refusal_quoting_what_was_sent_is_escaped_before_htmx_shows_it(served):
    reply = served.http.get(served.base + "rows?sort=%3Cimg%20src=x%20onerror=alert(1)%3E", headers={"HX-Request": "true"})
    assert reply.status == 400 and "<img" not in reply.text and "&lt;img src=x onerror=alert(1)&gt;" in reply.text


def test_pages_forbid_inline_scripts(served):
    reply = served.http.get(served.base + "rows")
    assert reply.headers["content-security-policy"] == CSP and "script-src 'self'" in CSP
    assert reply.headers["x-content-type-options"] == "nosniff" and reply.headers["referrer-policy"] == "no-referrer"
    assert re.findall(r"<script[^>]*>", reply.text) == ['<script src="/static/htmx.min.js">']


def test_the_teacher_api_key_never_appears(run_dir, monkeypatch):
    secret = "sk-live-0123456789-do-not-show"
    monkeypatch.setenv(KEY_ENV, secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    served = serve(run_dir)
    try:
        for path, page in pages(served).items():
            assert secret not in page, path
        assert os.environ[KEY_ENV] == secret
    finally:
        served.server.stop()
