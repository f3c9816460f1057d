"""Request logging on the real server (issue 16): `logging_config` in the model config writes
sampled PredictionLog records of REST and gRPC calls as rotated TFRecord files, locally or to a
bucket; a full queue drops records, never requests; files are whole when they appear, on
rotation, on a config change and at shutdown; the records replay as a version's warmup."""

from __future__ import annotations

import pathlib
import shutil
import time

import numpy as np
import pytest
import tensorflow as tf

from support import grpc_clients as clients
from support.servers import moto_s3, s3_client, wait_until
from tfrelay.serving.request_log.files import TEMP_SUFFIX

from .conftest import (
    MODEL,
    logging_to,
    metric,
    model_config,
    read_logs,
    rest,
    start_server,
)

pytestmark = pytest.mark.both_stacks


def _send_every_kind(server, stub) -> dict[str, int]:
    """REST predict/classify/regress and gRPC predict/classify/regress/multi-inference calls;
    returns how many of each kind of log record they should make."""
    for i in range(10):
        answer = rest(server, "predict", {"instances": [float(i)]})
        assert answer == {"predictions": [i * 0.5 + 2.0]}
    rest(server, "classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}]})
    rest(server, "regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}]})
    for i in range(10):
        stub.Predict(clients.predict_request(MODEL, [float(i)]), timeout=10)
    stub.Classify(clients.classify_request(MODEL), timeout=10)
    stub.Regress(clients.regress_request(MODEL), timeout=10)
    stub.MultiInference(clients.multi_inference_request(MODEL), timeout=10)
    return {"predict_log": 20, "classify_log": 2, "regress_log": 2, "multi_inference_log": 1}


def test_every_call_at_rate_one_is_logged_and_files_are_whole_at_shutdown(
    tmp_path, half_plus_two, grpc_stub
):
    logs = tmp_path / "logs"
    server = start_server(tmp_path, model_config(half_plus_two, logging_to(f"{logs}/requests")))
    try:
        expected = _send_every_kind(server, grpc_stub(server))
        wait_until(
            lambda: (
                metric(server, ":tfrelay:serving:request_log_records", f'model_name="{MODEL}"')
                == sum(expected.values())
            ),
            10,
            what="every record written",
        )
        # Still open: only a partial file exists, which no reader of *.tfrecord picks up.
        assert read_logs(logs) == []
        assert [p.name.endswith(TEMP_SUFFIX) for p in logs.iterdir()] == [True]
    finally:
        assert server.stop() == 0
    assert not list(logs.glob(f"*{TEMP_SUFFIX}"))
    records = read_logs(logs)
    kinds = {}
    for record in records:
        kinds[record.WhichOneof("log_type")] = kinds.get(record.WhichOneof("log_type"), 0) + 1
        assert record.log_metadata.model_spec.name == MODEL
        assert record.log_metadata.model_spec.version.value == 123
        assert record.log_metadata.sampling_config.sampling_rate == 1.0
        assert list(record.log_metadata.saved_model_tags) == ["serve"]
    assert kinds == expected
    predictions = [r.predict_log for r in records if r.WhichOneof("log_type") == "predict_log"]
    for log in predictions:
        x = tf.make_ndarray(log.request.inputs["x"])
        y = tf.make_ndarray(log.response.outputs["y"])
        np.testing.assert_allclose(y, x * 0.5 + 2.0)
    rest_spec = predictions[0].request.model_spec
    assert rest_spec.name == MODEL and not rest_spec.HasField("version")


def test_logged_requests_replay_as_a_new_versions_warmup(tmp_path, half_plus_two, grpc_stub):
    logs = tmp_path / "logs"
    server = start_server(tmp_path, model_config(half_plus_two, logging_to(f"{logs}/requests")))
    try:
        _send_every_kind(server, grpc_stub(server))
    finally:
        server.stop()
    (log_file,) = logs.glob("*.tfrecord")
    version = half_plus_two / "124"
    shutil.copytree(half_plus_two / "123", version)
    (version / "assets.extra").mkdir(exist_ok=True)
    shutil.copy(log_file, version / "assets.extra" / "tf_serving_warmup_requests")
    second = tmp_path / "second"
    second.mkdir()
    server = start_server(second, model_config(half_plus_two), version=124)
    try:
        # AVAILABLE only after its warmup ran: every logged call of every kind was replayed.
        assert "Warmed up half_plus_two version 124 with 25 records" in server.log()
    finally:
        server.stop()


def test_a_full_queue_drops_records_and_never_a_request(tmp_path, half_plus_two):
    logs = tmp_path / "logs"
    server = start_server(
        tmp_path,
        model_config(half_plus_two, logging_to(f"{logs}/requests")),
        "--request_log_max_queued_bytes=1",
    )
    try:
        for i in range(30):
            assert rest(server, "predict", {"instances": [float(i)]}) == {
                "predictions": [i * 0.5 + 2.0]
            }
        # Counted when the loop encodes them, a few milliseconds after their answers.
        wait_until(
            lambda: (
                metric(
                    server,
                    ":tfrelay:serving:request_log_dropped",
                    f'model_name="{MODEL}",reason="queue_full"',
                )
                == 30
            ),
            10,
            what="30 records dropped",
        )
    finally:
        server.stop()
    assert read_logs(logs) == []


def test_half_the_calls_are_sampled_at_rate_one_half(tmp_path, half_plus_two):
    logs = tmp_path / "logs"
    server = start_server(
        tmp_path, model_config(half_plus_two, logging_to(f"{logs}/requests", rate=0.5))
    )
    try:
        for i in range(400):
            rest(server, "predict", {"instances": [float(i)]})
    finally:
        server.stop()
    # Binomial(400, 0.5): 200 +- 10; outside 140..260 has a probability below 1e-9.
    assert 140 <= len(read_logs(logs)) <= 260


def test_files_rotate_by_size_and_when_the_config_stops_logging(tmp_path, half_plus_two):
    logs = tmp_path / "logs"
    config = tmp_path / "models.config"
    server = start_server(
        tmp_path,
        model_config(half_plus_two, logging_to(f"{logs}/requests")),
        "--request_log_file_max_bytes=300",
        "--model_config_file_poll_wait_seconds=1",
    )
    try:
        sent = 0
        for _ in range(20):
            rest(server, "predict", {"instances": [float(sent)]})
            sent += 1
        wait_until(lambda: len(read_logs(logs)) >= 15, 10, what="rotated files")
        # Calls logged within a few milliseconds share a chunk, and a file closes after the
        # chunk that takes it past 300 bytes: 20 records of ~110 bytes make at least two files.
        assert len(list(logs.glob("*.tfrecord"))) >= 2
        # Until a file is open (a record in it, not yet rotated), so the reload has one to close.
        for _ in range(20):
            if list(logs.glob(f"*{TEMP_SUFFIX}")):
                break
            rest(server, "predict", {"instances": [float(sent)]})
            sent += 1
            time.sleep(0.2)  # one record per chunk, written (5 ms to encode, 50 ms to write)
        wait_until(lambda: list(logs.glob(f"*{TEMP_SUFFIX}")), 10, what="an open file")
        config.write_text(model_config(half_plus_two))  # logging off: the open file is closed
        wait_until(lambda: not list(logs.glob(f"*{TEMP_SUFFIX}")), 15, what="the file closed")
        assert len(read_logs(logs)) == sent
        rest(server, "predict", {"instances": [1.0]})  # not logged any more
    finally:
        server.stop()
    assert len(read_logs(logs)) == sent


def test_logs_to_a_bucket_appear_as_whole_objects_on_rotation(tmp_path, half_plus_two):
    with moto_s3(tmp_path) as env:
        s3 = s3_client(env)
        s3.create_bucket(Bucket="logs")
        server = start_server(
            tmp_path,
            model_config(half_plus_two, logging_to("s3://logs/half_plus_two/requests")),
            "--request_log_file_max_seconds=1",
            f"--request_log_spool_dir={tmp_path / 'spool'}",
            env=env,
        )
        try:
            for i in range(10):
                rest(server, "predict", {"instances": [float(i)]})

            def objects() -> list[str]:
                listing = s3.list_objects_v2(Bucket="logs", Prefix="half_plus_two/")
                return [o["Key"] for o in listing.get("Contents", [])]

            wait_until(lambda: objects(), 20, what="a log object in the bucket")
            keys = objects()
            assert all(k.startswith("half_plus_two/requests-") for k in keys)
            assert all(k.endswith(".tfrecord") for k in keys)
            downloaded = tmp_path / "downloaded"
            downloaded.mkdir()
            for key in keys:
                s3.download_file("logs", key, str(downloaded / pathlib.PurePosixPath(key).name))
            records = read_logs(downloaded)
            assert len(records) == 10
            assert metric(server, ":tfrelay:serving:request_log_files", 'status="published"') >= 1
        finally:
            server.stop()
        # Every spooled file was uploaded and removed.
        assert [p for p in (tmp_path / "spool").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("logging", "message"),
    [
        (
            'log_collector_config { type: "kafka" filename_prefix: "/tmp/x" }',
            "type 'kafka' is not supported: tfrelay writes TFRecord files",
        ),
        (
            'log_collector_config { type: "tfrecord" filename_prefix: "/tmp/x" } '
            "sampling_config { sampling_rate: 2 }",
            "sampling_rate is 2.0; it must be between 0 and 1",
        ),
    ],
)
def test_an_unservable_logging_config_stops_the_server_with_the_fix(
    tmp_path, half_plus_two, logging, message
):
    with pytest.raises(RuntimeError, match=message):
        start_server(tmp_path, model_config(half_plus_two, logging))
