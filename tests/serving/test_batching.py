"""Server-side batching: concurrent single-instance REST and gRPC requests merge into batches
(visible in TF Serving's batching metrics), answers are identical to unbatched ones, a full
queue answers 429 / RESOURCE_EXHAUSTED at once, and allowed_batch_sizes padding and
pad_variable_length_inputs behave as TF Serving's batching session."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families

from support import grpc_clients as clients
from support.paths import TF_SERVING_TESTDATA
from support.servers import InProcessModelServer, wait_for_version
from tfrelay.serving.batching.batcher import Batcher
from tfrelay.serving.config.batching import BatchingConfig, read_batching_parameters
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.servables.saved_model import SavedModelServable

# Conformance on TF Serving's test models, which `make test` runs on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks

METRICS_PATH = "/monitoring/prometheus/metrics"


def _options(model_root, tmp_path, batching: str | None) -> ServerOptions:
    tmp_path.mkdir(parents=True, exist_ok=True)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}')
    options = ServerOptions(
        model_name="half_plus_two",
        model_base_path=str(model_root / "half_plus_two"),
        monitoring_config_file=str(monitoring),
        rest_api_num_threads=4,
        enable_batching=False,  # the unbatched reference; batching below when asked
    )
    if batching is not None:
        parameters = tmp_path / "batching.config"
        parameters.write_text(batching)
        options.enable_batching = True
        options.batching_parameters_file = str(parameters)
    return options


def _fire(server: InProcessModelServer, xs: list[float]) -> dict[float, tuple]:
    """Sends every x at once: half over REST (one instance each), half over gRPC."""
    answers: dict[float, tuple] = {}
    rest_xs, grpc_xs = xs[::2], xs[1::2]
    start = threading.Barrier(len(rest_xs) + 1)

    def rest(x: float) -> None:
        with httpx.Client(timeout=30) as client:
            start.wait()
            response = client.post(
                f"{server.url}/v1/models/half_plus_two:predict", json={"instances": [[x]]}
            )
            answers[x] = ("REST", response.status_code, response.content)

    with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
        prediction, _ = clients.stubs(channel)
        with concurrent.futures.ThreadPoolExecutor(len(rest_xs)) as pool:
            jobs = [pool.submit(rest, x) for x in rest_xs]
            start.wait()
            futures = {x: prediction.Predict.future(_grpc_row(x), 30) for x in grpc_xs}
            for x, future in futures.items():
                answers[x] = ("GRPC", 200, future.result().outputs["y"].SerializeToString())
            for job in jobs:
                job.result()
    return answers


def _grpc_row(x: float):
    """A one-row request shaped like the REST instances ([1, 1]), so both share a queue."""
    request = clients.predict_request("half_plus_two")
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[x]], tf.float32))
    return request


def _families(server: InProcessModelServer) -> dict:
    text = httpx.get(f"{server.url}{METRICS_PATH}").text
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_concurrent_single_requests_merge_and_answer_exactly_as_unbatched(model_root, tmp_path):
    xs = [float(i) / 8 for i in range(48)]
    batching = (
        "max_batch_size { value: 32 } batch_timeout_micros { value: 30000 } "
        "max_enqueued_batches { value: 100 } num_batch_threads { value: 2 }"
    )
    with InProcessModelServer(_options(model_root, tmp_path / "a", None)) as unbatched:
        wait_for_version(unbatched.url, "half_plus_two", 123)
        expected = _fire(unbatched, xs)
    with InProcessModelServer(_options(model_root, tmp_path / "b", batching)) as batched:
        wait_for_version(batched.url, "half_plus_two", 123)
        actual = _fire(batched, xs)
        families = _families(batched)

    assert actual == expected  # byte-identical REST bodies and gRPC tensors
    assert all(status == 200 for _, status, _ in actual.values())
    runs = families[":tensorflow:serving:batching_session:wrapped_run_count"].samples[0].value
    assert runs < len(xs)
    processed = {
        s.labels["le"]: s.value
        for s in families[":tensorflow:serving:batching_session:processed_batch_size"].samples
        if s.name.endswith("_bucket")
    }
    # Some run held more than one request: fewer runs than rows, and rows beyond bucket "1".
    assert processed["+Inf"] == runs and processed["1"] < runs
    queuing = families[":tensorflow:serving:batching_session:queuing_latency"]
    count = next(s for s in queuing.samples if s.name.endswith("_count"))
    assert count.labels == {"thread_pool_name": "batch_threads"} and count.value == len(xs)


def test_full_queue_answers_429_and_resource_exhausted_at_once(model_root, tmp_path):
    # One batch may wait (2 s) and it holds 2 rows: a 2-row request cannot join it and the queue
    # has no room for another batch.
    batching = (
        "max_batch_size { value: 2 } batch_timeout_micros { value: 2000000 } "
        "max_enqueued_batches { value: 1 } num_batch_threads { value: 1 }"
    )
    with InProcessModelServer(_options(model_root, tmp_path, batching)) as server:
        wait_for_version(server.url, "half_plus_two", 123)
        url = f"{server.url}/v1/models/half_plus_two:predict"

        for protocol in ("REST", "GRPC"):
            waiting = concurrent.futures.ThreadPoolExecutor(1).submit(
                httpx.post, url, json={"instances": [[1.0]]}, timeout=30
            )
            time.sleep(0.5)
            started = time.monotonic()
            if protocol == "REST":
                response = httpx.post(url, json={"instances": [[1.0], [2.0]]}, timeout=30)
                assert response.status_code == 429
                assert response.json() == {
                    "error": "The batch scheduling queue to which this task was submitted is full"
                }
            else:
                with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
                    prediction, _ = clients.stubs(channel)
                    request = clients.predict_request("half_plus_two")
                    # Rows shaped like the waiting REST request's ([1]), so they share a queue.
                    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[1.0], [2.0]], tf.float32))
                    with pytest.raises(grpc.RpcError) as info:
                        prediction.Predict(request, 30)
                assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() - started < 1.0  # refused at once, not after the timeout
            # The waiting batch is untouched and runs when its timeout expires.
            assert waiting.result().json() == {"predictions": [[2.5]]}

        too_big = httpx.post(url, json={"instances": [[1.0], [2.0], [3.0]]})
        assert too_big.status_code == 400
        assert too_big.json() == {"error": "Task size 3 is larger than maximum input batch size 2"}


def _run_concurrently(batcher: Batcher, servable, requests):
    signature = servable.signatures["serving_default"]

    async def main():
        return await asyncio.gather(
            *(batcher.run(servable, signature, {"x": x}, ["y"]) for x in requests)
        )

    return asyncio.run(main())


@pytest.fixture
def servable(model_root):
    servable = SavedModelServable("half_plus_two", 123, str(model_root / "half_plus_two" / "123"))
    servable.load()
    yield servable
    servable.unload()


def test_allowed_batch_sizes_pad_with_the_first_row_and_drop_the_padding(servable):
    metrics = ServingMetrics()
    config = BatchingConfig(
        max_batch_size=8, batch_timeout_micros=100_000, allowed_batch_sizes=(4, 8)
    )
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        batcher = Batcher(config, executor, metrics)
        requests = [np.array([[1.0]], np.float32), np.array([[2.0], [3.0]], np.float32)]
        results = _run_concurrently(batcher, servable, requests)
    np.testing.assert_array_equal(results[0]["y"], [[2.5]])
    np.testing.assert_array_equal(results[1]["y"], [[3.0], [3.5]])
    assert metrics.wrapped_run_count.value() == 1
    assert metrics.processed_batch_size.snapshot("half_plus_two")[4] == 1  # 3 rows padded to 4
    assert metrics.padding_size.count("half_plus_two", "4") == 1


def test_pad_variable_length_inputs_merges_different_shapes(servable):
    metrics = ServingMetrics()
    config = BatchingConfig(
        max_batch_size=8, batch_timeout_micros=100_000, pad_variable_length_inputs=True
    )
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        batcher = Batcher(config, executor, metrics)
        requests = [np.array([[1.0, 2.0, 3.0]], np.float32), np.array([[4.0, 5.0]], np.float32)]
        results = _run_concurrently(batcher, servable, requests)
    assert metrics.wrapped_run_count.value() == 1
    np.testing.assert_array_equal(results[0]["y"], [[2.5, 3.0, 3.5]])
    # Padded with the tensor's first element, as batching_util.cc does; rows are not trimmed.
    np.testing.assert_array_equal(results[1]["y"], [[4.0, 4.5, 4.0]])


def test_padding_that_would_blow_up_the_batch_runs_the_request_in_its_own_batch(servable):
    # [1, 10000, 1] and [1, 1, 10000] padded together: 2 x 10^8 floats (800 MB) for 80 kB of
    # input (issue 12). Each runs unpadded in a batch of its own and gets its own answer.
    metrics = ServingMetrics()
    config = BatchingConfig(
        max_batch_size=8, batch_timeout_micros=100_000, pad_variable_length_inputs=True
    )
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        batcher = Batcher(config, executor, metrics)
        tall = np.full((1, 10_000, 1), 2.0, np.float32)
        wide = np.full((1, 1, 10_000), 4.0, np.float32)
        results = _run_concurrently(batcher, servable, [tall, wide])
    assert metrics.wrapped_run_count.value() == 2
    assert results[0]["y"].shape == (1, 10_000, 1) and float(results[0]["y"].max()) == 3.0
    assert results[1]["y"].shape == (1, 1, 10_000) and float(results[1]["y"].max()) == 4.0


def test_different_row_shapes_never_merge_without_padding(servable):
    metrics = ServingMetrics()
    config = BatchingConfig(max_batch_size=8, batch_timeout_micros=50_000)
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        batcher = Batcher(config, executor, metrics)
        requests = [np.array([[1.0, 2.0]], np.float32), np.array([[4.0]], np.float32)]
        results = _run_concurrently(batcher, servable, requests)
    assert metrics.wrapped_run_count.value() == 2
    np.testing.assert_array_equal(results[1]["y"], [[4.0]])


def test_batching_parameters_defaults_and_validation(tmp_path, tf_serving_testdata):
    config = read_batching_parameters(str(tf_serving_testdata / "batching_config.txt"))
    assert (config.max_batch_size, config.batch_timeout_micros) == (128, 0)
    assert (config.max_enqueued_batches, config.num_batch_threads) == (1_000_000, 8)
    empty = tmp_path / "empty.config"
    empty.write_text("")
    defaults = read_batching_parameters(str(empty))
    assert (defaults.max_batch_size, defaults.batch_timeout_micros) == (1000, 0)
    assert defaults.max_enqueued_batches == 10 and defaults.num_batch_threads >= 1
    bad = tmp_path / "bad.config"
    bad.write_text("max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 6")
    with pytest.raises(ValueError, match="must equal max_batch_size"):
        read_batching_parameters(str(bad))


def test_task_larger_than_max_batch_size_is_invalid_argument(servable):
    config = BatchingConfig(max_batch_size=2)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        batcher = Batcher(config, executor)
        with pytest.raises(ServingError) as info:
            _run_concurrently(batcher, servable, [np.zeros((3, 1), np.float32)])
    assert info.value.code == Code.INVALID_ARGUMENT


def test_tf_serving_batching_config_serves_its_model(tf_serving_testdata, tmp_path):
    options = ServerOptions(
        model_name="default",
        model_base_path=str(tf_serving_testdata / "saved_model_half_plus_two_cpu"),
        enable_batching=True,
        batching_parameters_file=str(tf_serving_testdata / "batching_config.txt"),
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "default", 123)
        response = httpx.post(
            f"{server.url}/v1/models/default:predict", json={"instances": [1.0, 2.0, 5.0]}
        )
        assert response.json() == {"predictions": [2.5, 3.0, 4.5]}


assert TF_SERVING_TESTDATA  # the module's TF Serving test runs only when ../shared is present


def test_a_rest_and_a_grpc_request_share_one_model_call(model_root, tmp_path):
    batching = (
        "max_batch_size { value: 2 } batch_timeout_micros { value: 2000000 } "
        "num_batch_threads { value: 1 }"
    )
    with InProcessModelServer(_options(model_root, tmp_path, batching)) as server:
        wait_for_version(server.url, "half_plus_two", 123)
        metrics = server.server.metrics
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            rest = pool.submit(
                httpx.post,
                f"{server.url}/v1/models/half_plus_two:predict",
                json={"instances": [[1.0]]},
                timeout=30,
            )
            time.sleep(0.2)
            with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
                prediction, _ = clients.stubs(channel)
                answer = prediction.Predict(_grpc_row(3.0), 30)
            assert rest.result().json() == {"predictions": [[2.5]]}
        # The two rows filled the batch, so neither waited for the 2 s timeout.
        assert time.monotonic() - started < 1.5
    assert list(answer.outputs["y"].float_val) == [3.5]
    assert metrics.wrapped_run_count.value() == 1
    assert metrics.processed_batch_size.snapshot("half_plus_two")[2] == 1


def test_default_batching_answers_requests_larger_than_max_batch_size(model_root, tmp_path):
    # Batching is tfrelay's default, not something the user asked for: a request over
    # max_batch_size runs as its own batch instead of failing (TF Serving, unbatched, answers it).
    options = ServerOptions(
        model_name="half_plus_two", model_base_path=str(model_root / "half_plus_two")
    )
    assert options.enable_batching is None
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "half_plus_two", 123)
        response = httpx.post(
            f"{server.url}/v1/models/half_plus_two:predict",
            json={"instances": [1.0] * 1500},
            timeout=30,
        )
        assert response.status_code == 200
        assert response.json()["predictions"] == [2.5] * 1500
