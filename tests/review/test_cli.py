"""`llmaug review` and `llmaug retrain` on the command line: the served URL, the browser, bad input in one line
with exit code 2, and a real server process stopped with Ctrl-C."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from llmaug.review import server
from llmaug.testing.scripted import cli_exit_code, cli_command, cli_env


def test_retrain_prints_the_new_accuracy_beside_the_runs(run_dir, capsys):
    assert cli_exit_code(["retrain", str(run_dir)]) == 0
    out = capsys.readouterr().out
    evaluation = json.loads((run_dir / "reviewed" / "evaluation.json").read_text())
    assert f"accuracy {evaluation['accuracy']:.4f} (run: {evaluation['before']['accuracy']:.4f})" in out
    assert f"→ {run_dir / 'reviewed'}" in out


def test_review_prints_the_url_and_opens_the_browser_at_it(run_dir, capsys, monkeypatch):
    opened, served = [], []
    monkeypatch.setattr(server.webbrowser, "open", opened.append)
    monkeypatch.setattr(server.web, "run_app", lambda app, sock, **options: served.append(sock.getsockname()))
    assert cli_exit_code(["review", str(run_dir), "--port", "0"]) == 0
    url = capsys.readouterr().out.split("llmaug review: ")[1].split()[0]
    assert opened == [url] and url == f"http://127.0.0.1:{served[0][1]}/"


def test_no_browser_means_none_is_opened(run_dir, monkeypatch):
    opened = []
    monkeypatch.setattr(server.webbrowser, "open", opened.append)
    monkeypatch.setattr(server.web, "run_app", lambda app, sock, **options: None)
    assert cli_exit_code(["review", str(run_dir), "--port", "0", "--no-browser"]) == 0
    assert opened == []


@pytest.mark.parametrize("args, message", [
    (["review", "{missing}", "--no-browser"], "no such folder"),
    (["review", "{empty}", "--no-browser"], "not a run directory, and no run directories below it"),
    (["review", "{run}", "--port", "70000", "--no-browser"], "--port: must be between 0 and 65535"),
    (["retrain", "{missing}"], "not a run directory"),
    (["retrain", "{empty}"], "not a run directory"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, message, run_dir, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    names = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "run": run_dir}
    assert cli_exit_code([arg.format(**names) for arg in args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_port_in_use_is_named(run_dir, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert cli_exit_code(["review", str(run_dir), "--port", str(port), "--no-browser"]) == 2
    assert f"--port: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"])
def test_a_served_process_answers_and_stops_on_ctrl_c(run_dir, host):
    process = subprocess.Popen(cli_command("review", str(run_dir), "--port", "0", "--no-browser", "--host", host),
                               env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split("llmaug review: ")[1].split()[0]
        parts = urlsplit(url)
        assert parts.hostname == host and (("token=" in parts.query) == (host != "127.0.0.1"))
        assert get(parts.hostname, parts.port, f"{parts.path}?{parts.query}") in (200, 302)
        if host != "127.0.0.1":
            assert get(parts.hostname, parts.port, "/") == 403
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()


def get(host: str, port: int, path: str) -> int:
    deadline = time.monotonic() + 20
    while True:
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request("GET", path)
            return connection.getresponse().status
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            connection.close()
