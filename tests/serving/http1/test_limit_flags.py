"""The REST limits' flags (issue 12): TF Serving style `--rest_api_*` flags reach the HTTP/1.1
limits, defaults are the production ones, and non-positive values are refused (exit 2)."""

from __future__ import annotations

import pytest

from tfrelay.serving.cli import options_from_args
from tfrelay.serving.rest.limits import DEFAULT_LIMITS, limits_from_options

BASE = ["--model_base_path=/models/m"]


def test_the_defaults_are_the_production_limits():
    limits = limits_from_options(options_from_args(BASE))
    assert limits == DEFAULT_LIMITS
    assert (limits.max_header_bytes, limits.header_timeout, limits.body_timeout) == (
        64 * 1024,
        60.0,
        60.0,
    )
    assert (limits.send_timeout, limits.idle_timeout) == (60.0, 75.0)


def test_the_flags_set_the_limits():
    options = options_from_args(
        [
            *BASE,
            "--rest_api_max_header_bytes=8192",
            "--rest_api_header_timeout_seconds=5",
            "--rest_api_body_timeout_seconds=7",
            "--rest_api_send_timeout_seconds=9",
            "--rest_api_idle_timeout_seconds=11",
        ]
    )
    limits = limits_from_options(options)
    assert limits.max_header_bytes == 8192
    assert (limits.header_timeout, limits.body_timeout) == (5, 7)
    assert (limits.send_timeout, limits.idle_timeout) == (9, 11)


@pytest.mark.parametrize(
    "flag", ["--rest_api_max_header_bytes=0", "--rest_api_header_timeout_seconds=-1"]
)
def test_non_positive_limits_are_refused(flag, capsys):
    with pytest.raises(SystemExit) as exited:
        options_from_args([*BASE, flag])
    assert exited.value.code == 2
    assert "must be positive" in capsys.readouterr().err
