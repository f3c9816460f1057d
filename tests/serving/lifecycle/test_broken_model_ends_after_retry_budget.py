"""A broken model (here an unparseable saved_model.pb) still ends after --max_num_load_retries:
only storage failures are retried without limit (issue 13). The status says which it was."""

from __future__ import annotations

import os

from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.serving.options import ServerOptions

MAX_RETRIES = 1


def test_unparseable_model_ends_after_the_retry_budget_and_says_model(
    lc, server_env, models, tmp_path
):
    prefix = "broken/m"
    assert lc.push(models[3.0], prefix) == 1
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"this is not a protocol buffer")
    options = ServerOptions(
        model_name="m",
        model_base_path=f"s3://models/{prefix}",
        file_system_poll_wait_seconds=lc.poll_seconds,
        max_num_load_retries=MAX_RETRIES,
        load_retry_interval_micros=100_000,
        environ={**os.environ, **server_env},
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        assert lc.push(broken, prefix) == 2
        wait_until(lambda: lc.state_of(server.url, 2) == "END", 30, what="2 ended")
        entry = lc.version_states(server.url)[2]
        assert entry["load_failure"] == "model", entry
        assert entry["load_attempts"] == MAX_RETRIES + 1, entry
        assert entry["storage_failures"] == 0, entry
        assert entry["status"]["error_code"] != "OK" and entry["status"]["error_message"]
        assert lc.state_of(server.url, 1) == "AVAILABLE"
        # It stays ended (the same files are not retried again every poll).
        polls = server.server.source.poll_count
        wait_until(lambda: server.server.source.poll_count >= polls + 3, 10)
        assert lc.version_states(server.url)[2]["load_attempts"] == MAX_RETRIES + 1
