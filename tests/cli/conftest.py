import pytest

from llmaug.testing.scripted import cli_exit_code


@pytest.fixture
def run_cli():
    return cli_exit_code
