"""A model server whose model config turns request logging on, and the helpers that read the logs
back as a log consumer would (tf.data for the files, tensorflow-serving-api for the records)."""

from __future__ import annotations

import json
import pathlib
import shutil
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from support import grpc_clients as clients
from support.servers import ModelServerProcess, wait_for_version

MODEL = "half_plus_two"
METRICS_PATH = "/monitoring/prometheus/metrics"


def model_config(base_path: pathlib.Path, logging: str = "") -> str:
    """A ModelServerConfig text proto serving half_plus_two, with `logging` as its logging_config
    body ("" for none)."""
    logging_block = f"logging_config {{ {logging} }}" if logging else ""
    return (
        "model_config_list { config { "
        f'name: "{MODEL}" base_path: "{base_path}" model_platform: "tensorflow" '
        f"{logging_block} }} }}"
    )


def logging_to(prefix: str, rate: float = 1.0) -> str:
    """The logging_config body that logs to `prefix` at `rate`."""
    return (
        f'log_collector_config {{ type: "tfrecord" filename_prefix: "{prefix}" }} '
        f"sampling_config {{ sampling_rate: {rate} }}"
    )


@pytest.fixture
def half_plus_two(model_root, tmp_path) -> pathlib.Path:
    """A private copy of the fixture half_plus_two base path (tests add versions to it)."""
    base = tmp_path / "models" / MODEL
    shutil.copytree(model_root / MODEL, base)
    return base


def start_server(
    tmp_path: pathlib.Path, config: str, *flags: str, env=None, version: int = 123
) -> ModelServerProcess:
    """Starts the real server on `config` and waits for `version` to be AVAILABLE."""
    path = tmp_path / "models.config"
    path.write_text(config)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}')
    server = ModelServerProcess(
        [f"--model_config_file={path}", f"--monitoring_config_file={monitoring}", *flags],
        log_path=tmp_path / "server.log",
        env=env,
    ).start()
    try:
        wait_for_version(server.url, MODEL, version)
    except BaseException:
        server.stop()  # a server that never served is not left running
        raise
    return server


def rest(server: ModelServerProcess, action: str, body: dict) -> dict:
    """POSTs a REST call and returns its JSON answer (raises on a non-200 status)."""
    request = urllib.request.Request(
        f"{server.url}/v1/models/{MODEL}:{action}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def grpc_stub(request) -> Iterator:
    """Makes a PredictionService stub for a server (closed at the end of the test)."""
    channels = []

    def make(server: ModelServerProcess):
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        channels.append(channel)
        return clients.stubs(channel)[0]

    yield make
    for channel in channels:
        channel.close()


def read_logs(directory: pathlib.Path) -> list[prediction_log_pb2.PredictionLog]:
    """Every record of every log file under `directory`, read with tf.data."""
    logs = []
    for path in sorted(directory.rglob("*.tfrecord")):
        for record in tf.data.TFRecordDataset(str(path)):
            logs.append(prediction_log_pb2.PredictionLog.FromString(record.numpy()))
    return logs


def metric(server: ModelServerProcess, name: str, labels: str) -> float:
    """One sample of the server's Prometheus exposition (0 when absent)."""
    with urllib.request.urlopen(f"{server.url}{METRICS_PATH}", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
