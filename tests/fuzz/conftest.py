"""Hypothesis profiles for the fuzz targets, and their summary (issue 12).

`smoke` (the default, `make test`): a fixed seed, a bounded number of examples per target, no
example database, so a run is repeatable and the whole of tests/fuzz stays near a minute on one
core. `fuzz` (`make fuzz`, FUZZ_SECONDS set): random seeds and larger runs, repeated by
`harness.run` until each target's share of FUZZ_SECONDS is spent.
"""

from __future__ import annotations

import json
import os

from fuzz import harness
from hypothesis import HealthCheck, settings

_QUIET_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "smoke",
    max_examples=int(os.environ.get("FUZZ_SMOKE_EXAMPLES", "200")),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=_QUIET_CHECKS,
    print_blob=True,
)
settings.register_profile(
    "fuzz",
    max_examples=2000,
    derandomize=False,
    database=None,
    deadline=None,
    suppress_health_check=_QUIET_CHECKS,
    print_blob=True,
)
settings.load_profile("fuzz" if harness.fuzz_seconds() is not None else "smoke")


def pytest_terminal_summary(terminalreporter) -> None:
    """Prints executions and findings per target that ran (and writes FUZZ_REPORT)."""
    ran = [stats for stats in harness.STATS.values() if stats.runs or stats.findings]
    if not ran:
        return
    mode = "fuzz" if harness.fuzz_seconds() is not None else "smoke"
    terminalreporter.section(f"fuzz targets ({mode})")
    for stats in ran:
        known = ", ".join(f"{key} x{count}" for key, count in stats.known.items())
        terminalreporter.write_line(
            f"{stats.name:24s} executions {stats.executions:8d}  runs {stats.runs:4d}  "
            f"findings {stats.findings}  {stats.seconds:7.1f} s"
            + (f"  known findings (others' code): {known}" if known else "")
        )
    total = sum(stats.executions for stats in ran)
    findings = sum(stats.findings for stats in ran)
    terminalreporter.write_line(f"{'total':24s} executions {total:8d}  findings {findings}")
    report = os.environ.get("FUZZ_REPORT")
    if report:
        os.makedirs(os.path.dirname(report) or ".", exist_ok=True)
        with open(report, "w") as out:
            json.dump([vars(stats) for stats in ran], out, indent=1)
