"""Bodies that are not what the bucket holds (issue 13): a short body with a matching
Content-Length, and a corrupted one of the right length. Only tfrelay's own verification (the
listing's sizes, the push record's checksum) can catch them; they are storage errors, retried,
and never served."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from support.fault_proxy import CORRUPT, CUT, Rule
from support.load import ContinuousClient
from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.serving.options import ServerOptions

METRICS_PATH = "/monitoring/prometheus/metrics"


@pytest.mark.parametrize(
    ("case", "rule", "kind"),
    [
        ("short", Rule(CUT, method="GET", cut_to=5, consistent_length=True), "short_read"),
        ("corrupt", Rule(CORRUPT, method="GET"), "mismatch"),
    ],
)
def test_body_that_differs_from_the_bucket_is_caught_retried_and_never_served(
    case, rule, kind, lc, proxy, server_env, models, tmp_path
):
    prefix = f"body-{case}/m"
    assert lc.push(models[3.0], prefix) == 1
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}\n')
    options = ServerOptions(
        model_name="m",
        model_base_path=f"s3://models/{prefix}",
        file_system_poll_wait_seconds=lc.poll_seconds,
        max_num_load_retries=0,
        monitoring_config_file=str(monitoring),
        environ={**os.environ, **server_env},
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        with ContinuousClient(server.url, "m", threads=2) as client:
            rule.path_contains = f"/{prefix}/2/variables/variables.data"
            proxy.add(rule)
            assert lc.push(models[4.0], prefix) == 2
            wait_until(
                lambda: lc.version_states(server.url).get(2, {}).get("storage_failures", 0) >= 2,
                30,
                what="2 failed copies",
            )
            entry = lc.version_states(server.url)[2]
            assert entry["state"] == "START" and entry["load_failure"] == "storage", entry
            assert rule.hits >= 2
            errors = server.server.source.watched()["m"].storage.calls.errors_by_kind()
            assert errors.get(kind, 0) >= 2, errors
            assert not client.first_answer(4.0), "the bad copy was served"
            scraped = httpx.get(f"{server.url}{METRICS_PATH}", timeout=5).text
            assert f':tfrelay:serving:storage_errors{{model_name="m",kind="{kind}"}}' in scraped
            proxy.clear()
            healed_at = time.monotonic()
            wait_for_version(server.url, "m", 2, timeout=30)
            print(
                f"{case} body: caught as {kind} {errors[kind]} times; version 2 AVAILABLE "
                f"{time.monotonic() - healed_at:.2f}s after the store was fixed"
            )
            wait_until(lambda: client.first_answer(4.0, healed_at) is not None, 10)
        assert client.failures == [], client.failures[:3]
