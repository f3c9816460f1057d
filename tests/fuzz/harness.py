"""How the fuzz targets run and what they report (issue 12).

`make test` runs every target once with the `smoke` profile: a fixed number of examples from a
fixed seed, so the suite stays bounded and repeatable. `make fuzz` sets FUZZ_SECONDS: each target
then repeats fresh random runs of the `fuzz` profile until its share of that time is spent. Each
target counts its executions and findings (a failed run: hypothesis has shrunk it and the test
fails with the falsifying example); conftest.py prints the table at the end of the session and
writes it as JSON to FUZZ_REPORT when that is set.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable
from typing import TypeVar

# Every target, so that FUZZ_SECONDS is shared out before they run.
TARGETS = (
    "tensor_proto",
    "predict_request_bytes",
    "rest_json",
    "http1_requests",
    "http2_frames",
    "hpack_differential",
)


@dataclasses.dataclass
class TargetStats:
    """One target's figures for the session."""

    name: str
    executions: int = 0
    runs: int = 0
    findings: int = 0
    seconds: float = 0.0
    known: dict[str, int] = dataclasses.field(default_factory=dict)


STATS: dict[str, TargetStats] = {name: TargetStats(name) for name in TARGETS}

F = TypeVar("F", bound=Callable[..., None])


def fuzz_seconds() -> float | None:
    """The long run's total seconds (FUZZ_SECONDS), or None for the smoke run."""
    value = os.environ.get("FUZZ_SECONDS")
    return float(value) if value else None


def counted(name: str) -> Callable[[F], F]:
    """Counts each execution of a target's property (put it under `@given`)."""
    stats = STATS[name]

    def decorate(function: F) -> F:
        @functools.wraps(function)  # hypothesis reads the signature through __wrapped__
        def wrapper(*args, **kwargs):
            stats.executions += 1
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def run(name: str, prop: Callable[[], None], share: float = 1.0) -> None:
    """Runs a `@given` property: once (smoke) or repeatedly for its share of FUZZ_SECONDS.

    Args:
      name: the target, one of TARGETS.
      prop: the hypothesis-wrapped property, called without arguments.
      share: the part of the target's time this property gets (a target with three
        properties gives each 1/3).

    Raises:
      Whatever the property raised (a finding), after counting it.
    """
    stats = STATS[name]
    total = fuzz_seconds()
    budget = None if total is None else total / len(TARGETS) * share
    started = time.monotonic()
    try:
        while True:
            prop()
            stats.runs += 1
            if budget is None or time.monotonic() - started >= budget:
                return
    except BaseException:
        stats.findings += 1
        raise
    finally:
        stats.seconds += time.monotonic() - started


# Findings in code other engineers own, reported (with reproducers) in the fuzz findings file
# and to be fixed there: (exception type, file its innermost frame is in, text in its message)
# -> finding id. A matching exception is counted, not failed, so the rest of the target keeps
# running; once the code is fixed the count stays 0 and the entry can go.
KNOWN_FINDINGS: dict[tuple[str, str, str], str] = {
    # F1 (header_block.py's IndexError on a truncated literal) was fixed in 57b2b12, F3 (an
    # escaped lone surrogate answering 500) in json_input.parse_body; F2 is TF Serving's own
    # behaviour and is handled where it arises (test_fuzz_rest_json.check_round_trip).
}


def known_finding(name: str, error: BaseException) -> bool:
    """Counts `error` as a known finding of target `name` if it is one; else False."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename if tb is not None else ""
    for (kind, path, text), finding in KNOWN_FINDINGS.items():
        if type(error).__name__ == kind and where.endswith(path) and text in str(error):
            known = STATS[name].known
            known[finding] = known.get(finding, 0) + 1
            return True
    return False
