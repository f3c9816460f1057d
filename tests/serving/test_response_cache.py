"""The response cache (`--response_cache_mb`, issue 16): repeated identical predict, classify and
regress requests are answered from memory by REST and gRPC alike, within a byte budget; a new
version never answers from the old one's entries, and an unloaded version's entries go."""

from __future__ import annotations

import json
import shutil
import urllib.request

import grpc
import pytest

from support import grpc_clients as clients
from support.servers import ModelServerProcess, wait_for_version, wait_until
from tfrelay.serving.api.response_cache import ResponseCache, cache_key
from tfrelay.serving.core.manager import VersionEvent
from tfrelay.serving.core.states import VersionState, VersionStatus

MODEL = "half_plus_two"
METRICS_PATH = "/monitoring/prometheus/metrics"


def test_least_recently_used_entries_go_first_within_the_budget():
    # Each entry takes 10 + 700 + 200 (bookkeeping) = 910 bytes: eight fit in 8000.
    cache = ResponseCache(max_bytes=8000)
    keys = [cache_key("rest", "predict", "m", 1, bytes([i]) * 10) for i in range(8)]
    for key in keys:
        cache.put(key, b"a" * 700, 700)
    assert cache.size_bytes == 8 * 910
    assert cache.get(keys[0]) == b"a" * 700  # now the most recently used
    cache.put(cache_key("rest", "predict", "m", 1, b"new"), b"b" * 700, 700)
    assert cache.get(keys[1]) is None  # the least recently used went
    assert all(cache.get(key) is not None for key in [keys[0], *keys[2:]])
    assert cache.size_bytes <= cache.max_bytes


def test_an_answer_over_an_eighth_of_the_budget_is_not_cached():
    cache = ResponseCache(max_bytes=8000)
    key = cache_key("rest", "predict", "m", 1, b"{}")
    cache.put(key, b"x" * 1000, 1000)
    assert cache.get(key) is None and cache.size_bytes == 0


def test_a_version_that_stops_being_served_loses_its_entries():
    cache = ResponseCache(max_bytes=100_000)
    old, new = (
        cache_key("grpc", "Predict", "m", 1, b"r"),
        cache_key("grpc", "Predict", "m", 2, b"r"),
    )
    cache.put(old, b"1", 1)
    cache.put(new, b"2", 1)
    cache._on_event(VersionEvent("m", VersionStatus(1, VersionState.UNLOADING)))
    assert cache.get(old) is None and cache.get(new) == b"2"


def _metric(server: ModelServerProcess, line_prefix: str) -> float | None:
    with urllib.request.urlopen(f"{server.url}{METRICS_PATH}", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


def _predict(server: ModelServerProcess, body: dict) -> dict:
    request = urllib.request.Request(
        f"{server.url}/v1/models/{MODEL}:predict", data=json.dumps(body).encode()
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def cached_server(model_root, tmp_path):
    base = tmp_path / MODEL
    shutil.copytree(model_root / MODEL, base)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}')
    server = ModelServerProcess(
        [
            f"--model_name={MODEL}",
            f"--model_base_path={base}",
            f"--monitoring_config_file={monitoring}",
            "--response_cache_mb=16",
            "--file_system_poll_wait_seconds=1",
        ],
        log_path=tmp_path / "server.log",
    ).start()
    wait_for_version(server.url, MODEL, 123)
    yield server, base
    server.stop()


pytestmark = pytest.mark.both_stacks


def test_rest_and_grpc_repeats_are_answered_from_the_cache(cached_server):
    server, _ = cached_server
    hits = f':tfrelay:serving:response_cache_hits{{model_name="{MODEL}"}}'
    misses = f':tfrelay:serving:response_cache_misses{{model_name="{MODEL}"}}'
    assert _predict(server, {"instances": [1.0, 2.0]}) == {"predictions": [2.5, 3.0]}
    assert _predict(server, {"instances": [1.0, 2.0]}) == {"predictions": [2.5, 3.0]}
    assert _predict(server, {"instances": [3.0]}) == {"predictions": [3.5]}
    assert (_metric(server, hits), _metric(server, misses)) == (1, 2)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = clients.stubs(channel)[0]
        answers = [stub.Predict(clients.predict_request(MODEL, [4.0]), timeout=10) for _ in "ab"]
        assert answers[0] == answers[1]
        assert list(answers[1].outputs["y"].float_val) == [4.0]
        classes = [stub.Classify(clients.classify_request(MODEL), timeout=10) for _ in "ab"]
        assert classes[0] == classes[1]
        regressions = [stub.Regress(clients.regress_request(MODEL), timeout=10) for _ in "ab"]
        assert regressions[1].result.regressions[0].value == 3.0
    assert _metric(server, hits) == 4
    assert _metric(server, ":tfrelay:serving:response_cache_bytes") > 0


def test_a_new_version_never_answers_from_the_old_versions_entries(cached_server, model_root):
    server, base = cached_server
    body = {"instances": [1.0]}
    assert _predict(server, body) == {"predictions": [2.5]}
    assert _predict(server, body) == {"predictions": [2.5]}  # from the cache
    held = _metric(server, ":tfrelay:serving:response_cache_bytes")
    # Version 124 computes x/2 + 3: the cached x/2 + 2 must not answer for it.
    shutil.copytree(model_root / "half_plus_three" / "123", base / "124")
    wait_for_version(server.url, MODEL, 124)
    wait_until(lambda: _predict(server, body) == {"predictions": [3.5]}, 10, what="version 124")
    # Version 123 unloaded: its entries went with it.
    wait_until(
        lambda: _metric(server, ":tfrelay:serving:response_cache_bytes") < 2 * held,
        10,
        what="version 123's entries dropped",
    )
    assert _predict(server, body) == {"predictions": [3.5]}


def test_no_cache_unless_asked(model_root, tmp_path):
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}')
    with ModelServerProcess(
        [
            f"--model_name={MODEL}",
            f"--model_base_path={model_root / MODEL}",
            f"--monitoring_config_file={monitoring}",
        ],
        log_path=tmp_path / "server.log",
    ) as server:
        wait_for_version(server.url, MODEL, 123)
        for _ in range(3):
            assert _predict(server, {"instances": [1.0]}) == {"predictions": [2.5]}
        assert (
            _metric(server, f':tfrelay:serving:response_cache_hits{{model_name="{MODEL}"}}') is None
        )
        assert _metric(server, ":tfrelay:serving:response_cache_bytes") is None
