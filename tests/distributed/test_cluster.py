"""Joining or starting Ray, without starting one: addresses, the bare `--ray` flag, and that llmaug imports Ray
only when it is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmaug.cli import _bare_ray_means_auto
from llmaug.config import load_config
from llmaug.distributed.cluster import check_address, connect
from llmaug.errors import ConfigError, UserError
from llmaug.testing.scripted import cli_exit_code


@pytest.mark.parametrize("address", ["auto", "ray://head:10001", "10.0.0.7:6379", "head.cluster.local:6379"])
def test_addresses_that_ray_can_join(address):
    assert check_address(address) == address
    assert load_config(None, {"ray": address}).ray == address


@pytest.mark.parametrize("address", ["local", "head", "ray://head", "http://head:8265", "grid.yaml"])
def test_other_addresses_are_one_line_errors_naming_the_flag(address, capsys):
    with pytest.raises(UserError, match="expected auto, ray://HOST:PORT or HOST:PORT"):
        check_address(address)
    with pytest.raises(ConfigError, match=r"^--ray: expected auto"):
        load_config(None, {"ray": address})


@pytest.mark.parametrize(("argv", "expanded"), [
    (["bench", "grid.yaml", "--ray"], ["bench", "grid.yaml", "--ray", "auto"]),
    (["run", "--ray", "--seed", "1"], ["run", "--ray", "auto", "--seed", "1"]),
    (["bench", "--ray", "grid.yaml"], ["bench", "--ray", "auto", "grid.yaml"]),
    (["run", "--ray", "ray://head:10001"], ["run", "--ray", "ray://head:10001"]),
    (["run", "--ray", "auto"], ["run", "--ray", "auto"]),
])
def test_a_bare_ray_flag_means_auto(argv, expanded):
    assert _bare_ray_means_auto(argv) == expanded


def test_a_bad_ray_address_on_the_command_line_exits_2(capsys):
    assert cli_exit_code(["run", "--ray", "head:port", "--print-config"]) == 2
    assert "--ray: expected auto" in capsys.readouterr().err


def test_without_ray_installed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(UserError, match=r"Ray is not installed: pip install 'llmaug\[ray\]'"):
        connect("auto")


def test_llmaug_imports_ray_only_when_it_is_used():
    code = ("import sys, llmaug, llmaug.cli, llmaug.session, llmaug.bench.run, llmaug.distributed.teacher, "
            "llmaug.distributed.training, llmaug.distributed.grid, llmaug.distributed.cluster\n"
            "from llmaug import registry\n"
            "registry.TEACHERS['ray'].options_model_for('ray:embedded')\n"
            "assert 'ray' not in sys.modules, 'ray was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
