"""Which `tfrelay-model-server` the ServingDeployer's local target starts (issue 14): the one
given, then $TFRELAY_MODEL_SERVER, then the serving environment beside the checkout."""

from __future__ import annotations

import os
import stat

import pytest

from tfrelay.components.deployer import server_command


def _executable(path):
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_an_explicit_server_command_wins_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(server_command.SERVER_COMMAND_ENV, _executable(tmp_path / "from-env"))
    assert server_command.resolve(_executable(tmp_path / "given")) == str(tmp_path / "given")


def test_the_environment_variable_wins_over_the_serving_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(server_command.SERVER_COMMAND_ENV, _executable(tmp_path / "from-env"))
    assert server_command.resolve() == str(tmp_path / "from-env")


def test_by_default_the_serving_environment_of_the_checkout_runs_the_server(monkeypatch):
    monkeypatch.delenv(server_command.SERVER_COMMAND_ENV, raising=False)
    expected = server_command.checkout_root() / ".venv-serving" / "bin" / "tfrelay-model-server"
    assert os.access(expected, os.X_OK), "make setup builds .venv-serving"
    assert server_command.resolve() == str(expected)


@pytest.mark.parametrize("name", ["missing", "not-executable"])
def test_a_path_that_is_not_an_executable_is_refused_with_the_fix(tmp_path, monkeypatch, name):
    monkeypatch.delenv(server_command.SERVER_COMMAND_ENV, raising=False)
    path = tmp_path / name
    if name == "not-executable":
        path.write_text("")
    with pytest.raises(ValueError, match="is not an executable file. Point it at a"):
        server_command.resolve(str(path))
