"""A LIST that hangs (issue 13): it is logged at once, times out at --storage_timeout_seconds,
and neither requests nor other models' polls and loads wait for it."""

from __future__ import annotations

import logging
import os
import time

from support.fault_proxy import HOLD, Rule
from support.load import ContinuousClient
from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.serving.options import ServerOptions

STORAGE_TIMEOUT_SECONDS = 10.0


def test_hanging_list_of_one_model_is_logged_and_stalls_nothing_else(
    lc, proxy, server_env, models, tmp_path, caplog
):
    lc.push(models[3.0], "hang/a")
    lc.push(models[3.0], "hang/b")
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{name}" base_path: "s3://models/hang/{name}" '
            'model_platform: "tensorflow" }\n'
            for name in ("a", "b")
        )
        + "}\n"
    )
    options = ServerOptions(
        model_config_file=str(config),
        file_system_poll_wait_seconds=lc.poll_seconds,
        storage_timeout_seconds=STORAGE_TIMEOUT_SECONDS,
        environ={**os.environ, **server_env},
    )
    caplog.set_level(logging.WARNING, logger="tfrelay.serving")
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "a", 1)
        wait_for_version(server.url, "b", 1)
        with ContinuousClient(server.url, "a", threads=2) as client:
            wait_until(lambda: client.count() > 20, 30)
            # Every LIST of model a's base path now hangs (far longer than the timeout).
            hold = proxy.add(Rule(HOLD, method="GET", query_contains="prefix=hang/a/"))
            held_at = time.monotonic()
            wait_until(lambda: hold.hits >= 1, 10, what="a LIST of model a held")
            # Said at once: slow after a quarter of the timeout, failed at the timeout.
            wait_until(lambda: "Storage is slow" in caplog.text, STORAGE_TIMEOUT_SECONDS)
            slow_logged = time.monotonic() - held_at
            wait_until(lambda: "no answer within" in caplog.text, STORAGE_TIMEOUT_SECONDS + 3)
            timeout_logged = time.monotonic() - held_at
            # Meanwhile model b gets a new version, found and loaded on time.
            pushed_at = time.monotonic()
            assert lc.push(models[4.0], "hang/b") == 2
            wait_for_version(server.url, "b", 2, timeout=30)
            pickup = time.monotonic() - pushed_at
            load = server.manager.load_seconds("b", 2)
            assert hold.hits >= 2  # a's polls kept hanging the whole time
            proxy.remove(hold)
        print(
            f"hanging LIST: slow logged after {slow_logged:.1f}s, timeout after "
            f"{timeout_logged:.1f}s; model b's version 2 AVAILABLE {pickup:.2f}s after its push "
            f"(load {load:.2f}s); {client.count()} requests to a, {len(client.failures)} failed"
        )
        # Several polls of slack for a loaded 2-core CI machine (issue 13 review), still below
        # the storage timeout that a poll blocked behind model a's LIST would add.
        assert pickup <= 3 * lc.poll_seconds + load + 5.0, (pickup, load)
        assert client.failures == [], client.failures[:3]
        errors = server.server.source.watched()["a"].storage.calls.errors_by_kind()
        assert errors.get("timeout", 0) >= 1, errors
