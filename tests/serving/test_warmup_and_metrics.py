"""Warmup before AVAILABLE (TF Serving's saved_model_warmup) and the Prometheus endpoint with TF
Serving's metric names, on fixture models the tests build (a warmup TFRecord of PredictionLog)."""

from __future__ import annotations

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support import grpc_clients as clients
from support.models import write_half_plus_two
from support.servers import InProcessModelServer, wait_for_version, wait_until
from support.warmup_files import classify_log, predict_log, regress_log, write_warmup_file
from tfrelay.serving.core.states import VersionState
from tfrelay.serving.options import ServerOptions

# The pipeline relies on this code (the Validator and the pusher run it on the pipeline stack), so
# `make test` runs these tests on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks

METRICS_PATH = "/monitoring/prometheus/metrics"


def _monitoring_config(tmp_path, path: str = METRICS_PATH):
    config = tmp_path / "monitoring.config"
    config.write_text(f'prometheus_config: {{\n  enable: true,\n  path: "{path}"\n}}\n')
    return str(config)


def _families(url: str, path: str = METRICS_PATH) -> dict:
    response = httpx.get(f"{url}{path}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def test_version_becomes_available_only_after_its_warmup_records_ran(tmp_path):
    base = tmp_path / "m"
    version_dir = write_half_plus_two(base / "1")
    write_warmup_file(
        version_dir,
        [predict_log([1.0, 2.0]), regress_log(3.0), classify_log(4.0), predict_log([5.0])],
    )
    options = ServerOptions(
        model_name="m",
        model_base_path=str(base),
        monitoring_config_file=_monitoring_config(tmp_path),
        num_request_iterations_for_warmup=2,
    )
    server = InProcessModelServer(options)
    warmups_seen_when_available: list[int] = []
    metrics = server.server.metrics

    def on_state(model: str, version: int, state: VersionState) -> None:
        if state == VersionState.AVAILABLE:
            warmups_seen_when_available.append(
                metrics.model_warmup_latency.count(str(version_dir), "OK")
            )

    server.server.manager.add_listener(on_state)
    with server:
        wait_for_version(server.url, "m", 1)
        families = _families(server.url)
    # The warmup had been recorded (it ran to completion) at the moment of AVAILABLE.
    assert warmups_seen_when_available == [1]
    warmup = families[":tensorflow:serving:model_warmup_latency"]
    count = next(s for s in warmup.samples if s.name.endswith("_count"))
    assert count.labels == {"model_path": str(version_dir), "status": "OK"}
    assert count.value == 1


def test_a_failing_warmup_record_fails_the_load(tmp_path):
    base = tmp_path / "m"
    version_dir = write_half_plus_two(base / "1")
    write_warmup_file(version_dir, [predict_log([1.0], signature_name="no_such_signature")])
    options = ServerOptions(
        model_name="m",
        model_base_path=str(base),
        max_num_load_retries=0,
        monitoring_config_file=_monitoring_config(tmp_path),
    )
    with InProcessModelServer(options) as server:
        wait_until(
            lambda: (
                httpx.get(f"{server.url}/v1/models/m").json()["model_version_status"][0]["state"]
                == "END"
            ),
            60,
        )
        status = httpx.get(f"{server.url}/v1/models/m").json()["model_version_status"][0]
        families = _families(server.url)
    assert status["status"]["error_code"] == "FAILED_PRECONDITION"
    assert (
        'Serving signature key "no_such_signature" not found.' in status["status"]["error_message"]
    )
    attempts = families[":tensorflow:cc:saved_model:load_attempt_count"]
    assert [(s.labels["status"], s.value) for s in attempts.samples] == [("fail", 1)]
    warmup = families[":tensorflow:serving:model_warmup_latency"]
    count = next(s for s in warmup.samples if s.name.endswith("_count"))
    assert count.labels["status"] == "FAILED_PRECONDITION"


def test_warmup_can_be_turned_off(tmp_path):
    base = tmp_path / "m"
    write_warmup_file(write_half_plus_two(base / "1"), [predict_log([1.0], "no_such_signature")])
    options = ServerOptions(model_name="m", model_base_path=str(base), enable_model_warmup=False)
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        assert server.server.metrics.model_warmup_latency.count(str(base / "1"), "OK") == 0


def test_prometheus_endpoint_has_tf_serving_names_after_traffic(model_root, tmp_path):
    options = ServerOptions(
        model_name="half_plus_two",
        model_base_path=str(model_root / "half_plus_two"),
        monitoring_config_file=_monitoring_config(tmp_path, "/custom/metrics"),
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "half_plus_two", 123)
        url = f"{server.url}/v1/models/half_plus_two"
        for _ in range(3):
            assert httpx.post(f"{url}:predict", json={"instances": [1.0]}).status_code == 200
        assert (
            httpx.post(
                f"{url}:regress",
                json={"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}, {"x": 2.0}]},
            ).status_code
            == 200
        )
        assert (
            httpx.post(
                f"{server.url}/v1/models/nope:predict", json={"instances": [1.0]}
            ).status_code
            == 404
        )
        with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
            prediction, _ = clients.stubs(channel)
            prediction.Predict(clients.predict_request("half_plus_two"), 5)
        assert httpx.get(f"{server.url}{METRICS_PATH}").status_code == 404  # path is configurable
        families = _families(server.url, "/custom/metrics")
        text = httpx.get(f"{server.url}/custom/metrics").text

    # TF Serving's exporter names, exactly: no `_total` appended to counters.
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="half_plus_two",status="OK"} ' in text

    def samples(name: str) -> dict:
        return {
            tuple(sorted(s.labels.items())): s.value
            for s in families[name].samples
            if not s.name.endswith(("_bucket", "_sum"))
        }

    counts = samples(":tensorflow:serving:request_count")
    # 5 inference requests plus the status polls of wait_for_version.
    assert counts[(("model_name", "half_plus_two"), ("status", "OK"))] >= 5
    assert counts[(("model_name", "nope"), ("status", "NOT_FOUND"))] == 1
    latency = samples(":tensorflow:serving:request_latency")
    assert (
        latency[(("API", "predict"), ("entrypoint", "REST"), ("model_name", "half_plus_two"))] == 3
    )
    assert (
        latency[(("API", "Predict"), ("entrypoint", "GRPC"), ("model_name", "half_plus_two"))] == 1
    )
    assert (
        latency[(("API", "regress"), ("entrypoint", "REST"), ("model_name", "half_plus_two"))] == 1
    )
    buckets = [
        s
        for s in families[":tensorflow:serving:request_latency"].samples
        if s.name.endswith("_bucket")
    ]
    assert len({s.labels["le"] for s in buckets}) == 34  # exp(10, 1.8, 33) bounds plus +Inf
    runtime = samples(":tensorflow:serving:runtime_latency")
    assert runtime[(("API", "predict"), ("model_name", "half_plus_two"), ("runtime", "TF1"))] == 3
    # The parser names a counter family without its `_total` suffix.
    assert ":tensorflow:serving:request_example_count_total{" in text
    assert samples(":tensorflow:serving:request_example_count") == {
        (("model", "half_plus_two"),): 2
    }
    model_path = str(model_root / "half_plus_two" / "123")
    assert samples(":tensorflow:cc:saved_model:load_attempt_count") == {
        (("model_path", model_path), ("status", "success")): 1
    }
    assert samples(":tensorflow:cc:saved_model:load_latency")[(("model_path", model_path),)] > 0
    assert samples(":tfrelay:serving:loaded_versions") == {(("model_name", "half_plus_two"),): 1}
    assert samples(":tfrelay:serving:storage_polls")[(("model_name", "half_plus_two"),)] >= 1
    listings = samples(":tfrelay:serving:storage_listings")
    assert listings[(("kind", "delimiter"), ("model_name", "half_plus_two"))] >= 1
    assert ":tfrelay:serving:storage_bytes_copied" in families


def test_tf_serving_monitoring_config_file(model_root, tf_serving_testdata):
    options = ServerOptions(
        model_name="half_plus_two",
        model_base_path=str(model_root / "half_plus_two"),
        monitoring_config_file=str(tf_serving_testdata / "monitoring_config.txt"),
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "half_plus_two", 123)
        text = httpx.get(f"{server.url}{METRICS_PATH}").text
    assert "# TYPE" in text  # TF Serving's testPrometheusEndpoint


def test_metrics_endpoint_is_off_without_a_monitoring_config(model_root):
    options = ServerOptions(model_name="m", model_base_path=str(model_root / "half_plus_two"))
    with InProcessModelServer(options) as server:
        assert httpx.get(f"{server.url}{METRICS_PATH}").status_code == 404


def test_metrics_of_two_servers_in_one_process_are_separate(model_root, tmp_path):
    options = [
        ServerOptions(
            model_name=name,
            model_base_path=str(model_root / "half_plus_two"),
            monitoring_config_file=_monitoring_config(tmp_path),
        )
        for name in ("a", "b")
    ]
    with InProcessModelServer(options[0]) as a, InProcessModelServer(options[1]) as b:
        wait_for_version(a.url, "a", 123)
        httpx.post(f"{a.url}/v1/models/a:predict", json={"instances": [1.0]})
        wait_for_version(b.url, "b", 123)
        assert 'model_name="a"' not in httpx.get(f"{b.url}{METRICS_PATH}").text
        assert 'model_name="a"' in httpx.get(f"{a.url}{METRICS_PATH}").text
