"""A storage outage longer than the load-retry budget (issue 13, TF Serving #1738): the version
keeps waiting for storage (it does not go END), the status says so, the serving version stays,
and it serves within a poll of storage coming back."""

from __future__ import annotations

import os
import time

import httpx

from support.fault_proxy import CUT, SLOW_DOWN, Rule
from support.load import ContinuousClient
from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.serving.options import ServerOptions

RETRY_INTERVAL_SECONDS = 0.2
MAX_RETRIES = 1
OUTAGE_SECONDS = 10.0


def test_version_failing_only_on_storage_serves_within_a_poll_of_recovery(
    lc, proxy, server_env, models
):
    prefix = "outage/m"
    assert lc.push(models[3.0], prefix) == 1
    options = ServerOptions(
        model_name="m",
        model_base_path=f"s3://models/{prefix}",
        file_system_poll_wait_seconds=lc.poll_seconds,
        max_num_load_retries=MAX_RETRIES,
        load_retry_interval_micros=int(RETRY_INTERVAL_SECONDS * 1e6),
        storage_timeout_seconds=5,
        environ={**os.environ, **server_env},
    )
    with InProcessModelServer(options) as server:

        def failures() -> int:
            return lc.version_states(server.url).get(2, {}).get("storage_failures", 0)

        wait_for_version(server.url, "m", 1)
        with ContinuousClient(server.url, "m", threads=2) as client:
            # Version 2's variables cannot be downloaded (bodies cut mid-way)...
            cut = proxy.add(Rule(CUT, method="GET", path_contains=f"/{prefix}/2/variables/"))
            assert lc.push(models[4.0], prefix) == 2
            outage_start = time.monotonic()
            wait_until(lambda: failures() >= 2, 30, what="2 storage failures")
            # ...then no file of version 2 can (503 SlowDown), while its listing still works.
            slow_down = proxy.add(Rule(SLOW_DOWN, method="GET", path_contains=f"/{prefix}/2/"))
            reached = failures()
            wait_until(lambda: failures() >= reached + 2, 30, what="2 more storage failures")
            # Far longer than the budget (1 retry after 0.2 s used to end it in ~0.5 s).
            time.sleep(max(0.0, outage_start + OUTAGE_SECONDS - time.monotonic()))
            # Between two attempts (not LOADING) the version waits in START, not END.
            seen: list[dict] = []
            wait_until(
                lambda: (
                    seen.append(lc.version_states(server.url)[2]) or seen[-1]["state"] != "LOADING"
                ),
                10,
            )
            entry = seen[-1]
            assert entry["state"] == "START", entry
            assert entry["load_failure"] == "storage", entry
            assert entry["storage_failures"] > MAX_RETRIES + 1, entry
            assert "Waiting for storage" in entry["status"]["error_message"], entry
            assert entry["status"]["error_code"] == "UNAVAILABLE"
            # TF Serving's status API says the same.
            statuses: list[str] = []
            wait_until(
                lambda: (
                    statuses.append(
                        str(httpx.get(f"{server.url}/v1/models/m/versions/2", timeout=5).json())
                    )
                    or "does not use up --max_num_load_retries" in statuses[-1]
                ),
                10,
            )
            assert cut.hits >= 1 and slow_down.hits >= 1
            assert lc.state_of(server.url, 1) == "AVAILABLE"

            proxy.clear()
            recovered_at = time.monotonic()
            wait_for_version(server.url, "m", 2, timeout=30)
            pickup = time.monotonic() - recovered_at
            load = server.manager.load_seconds("m", 2)
            print(
                f"outage: {recovered_at - outage_start:.1f}s outage, "
                f"{entry['storage_failures']} storage failures; version 2 AVAILABLE "
                f"{pickup:.2f}s after recovery (load {load:.2f}s)"
            )
            # Several polls of slack: a loaded 2-core CI machine must pass (issue 13 review).
            assert pickup <= 3 * lc.poll_seconds + load + 5.0, (pickup, load)
            wait_until(lambda: client.first_answer(4.0, recovered_at) is not None, 10)
        assert client.failures == [], client.failures[:3]
        errors = server.server.source.watched()["m"].storage.calls.errors_by_kind()
        assert errors.get("short_read", 0) + errors.get("connection", 0) >= 1, errors
        assert errors.get("server_error", 0) >= 1, errors
