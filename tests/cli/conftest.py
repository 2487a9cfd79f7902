import pytest

from llmaug.cli import main


def _run_cli(args: list[str]) -> int:
    """The exit code `llmaug ARGS` would have, run in-process."""
    try:
        main(args)
    except SystemExit as exit_info:
        return exit_info.code or 0
    return 0


@pytest.fixture
def run_cli():
    return _run_cli
