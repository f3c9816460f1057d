"""Access denied is not an outage (issue 13 review): a version whose files storage refuses
(403 AccessDenied) uses up --max_num_load_retries and ends, its status naming the denial, instead
of "Waiting for storage" forever; the serving version stays."""

from __future__ import annotations

import os

from support.fault_proxy import DENY, Rule
from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.serving.options import ServerOptions

MAX_RETRIES = 1


def test_access_denied_ends_after_the_retry_budget(lc, proxy, server_env, models):
    prefix = "denied/m"
    assert lc.push(models[3.0], prefix) == 1
    options = ServerOptions(
        model_name="m",
        model_base_path=f"s3://models/{prefix}",
        file_system_poll_wait_seconds=lc.poll_seconds,
        max_num_load_retries=MAX_RETRIES,
        load_retry_interval_micros=100_000,
        storage_timeout_seconds=10,
        environ={**os.environ, **server_env},
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        # The listing and saved_model.pb are readable (the version is judged complete), its
        # variables are not.
        deny = proxy.add(Rule(DENY, method="GET", path_contains=f"/{prefix}/2/variables/"))
        assert lc.push(models[4.0], prefix) == 2
        wait_until(lambda: lc.state_of(server.url, 2) == "END", 60, what="2 ended")
        entry = lc.version_states(server.url)[2]
        assert deny.hits >= MAX_RETRIES + 1
        assert entry["load_attempts"] == MAX_RETRIES + 1, entry
        assert entry["storage_failures"] == 0, entry
        assert entry["load_failure"] == "storage", entry
        message = entry["status"]["error_message"]
        assert "denied" in message and "Waiting for storage" not in message, entry
        assert lc.state_of(server.url, 1) == "AVAILABLE"
