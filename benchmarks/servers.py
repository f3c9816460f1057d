"""Starting the servers under test, each pinned to the server core, on free loopback ports.

- tfrelay: `tfrelay-model-server` with TF Serving flags (the harness adds ports, `--host`, and a
  Prometheus monitoring config unless the flags bring their own).
- kserve, fastapi, bentoml: benchmarks/peers/, each in its own venv, serving the same SavedModel
  on `/v1/models/<name>:predict` with the same request and response JSON.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from collections.abc import Mapping, Sequence

from benchmarks.procs import (
    BENCH,
    LOOPBACK,
    SERVING_BIN,
    Process,
    free_port,
    http_json,
    http_request,
    wait_until,
)

PEERS = ("kserve", "fastapi", "bentoml")
SERVERS = ("tfrelay", *PEERS)
METRICS_PATH = "/monitoring/prometheus/metrics"
START_TIMEOUT = 180.0


@dataclasses.dataclass
class Server:
    """A started server.

    Attributes:
      kind: "tfrelay" or a peer's name.
      process: its process (for tfrelay, the server itself; peers may have children).
      rest_port: its HTTP port.
      grpc_port: tfrelay's gRPC port (None for peers).
      metrics: whether `METRICS_PATH` serves Prometheus text.
      argv: the command line, as recorded in the results.
    """

    kind: str
    process: Process
    rest_port: int
    grpc_port: int | None = None
    metrics: bool = False

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.rest_port}"

    def predict_url(self, model: str) -> str:
        return f"{self.url}/v1/models/{model}:predict"

    @property
    def grpc_url(self) -> str:
        """The URL h2load posts gRPC Predict frames to."""
        return f"http://{LOOPBACK}:{self.grpc_port}/tensorflow.serving.PredictionService/Predict"

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def write_monitoring_config(work_dir: pathlib.Path) -> pathlib.Path:
    path = work_dir / "monitoring.config"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}\n')
    return path


def start_tfrelay(
    flags: Sequence[str],
    log_path: pathlib.Path,
    cpu: int,
    work_dir: pathlib.Path,
    env: Mapping[str, str] | None = None,
) -> Server:
    """Starts `tfrelay-model-server` with `flags` and waits until it answers /healthz."""
    rest_port, grpc_port = free_port(), free_port()
    metrics_flags = []
    if not any(flag.startswith("--monitoring_config_file") for flag in flags):
        metrics_flags = [f"--monitoring_config_file={write_monitoring_config(work_dir)}"]
    argv = [
        # The serving stack's server (issue 14), not the pipeline venv's.
        str(SERVING_BIN / "tfrelay-model-server"),
        f"--rest_api_port={rest_port}",
        f"--port={grpc_port}",
        f"--host={LOOPBACK}",
        *metrics_flags,
        *flags,
    ]
    server = Server("tfrelay", Process(argv, log_path, cpu=cpu, env=env), rest_port, grpc_port)
    server.metrics = bool(metrics_flags)
    server.process.start()
    _wait_healthy(server, f"{server.url}/healthz")
    return server


def start_peer(
    kind: str, model_name: str, version_dir: pathlib.Path, log_path: pathlib.Path, cpu: int
) -> Server:
    """Starts a peer serving `version_dir` as `model_name`; returns once it is listening."""
    port = free_port()
    venv = BENCH / ".venvs" / kind / "bin"
    peers = BENCH / "peers"
    env: dict[str, str] = {}
    if kind == "kserve":
        argv = [
            str(venv / "python"), str(peers / "kserve_server.py"),
            f"--model_name={model_name}", f"--model_path={version_dir}",
            f"--http_port={port}", "--enable_grpc=false", "--workers=1",
        ]  # fmt: skip
    elif kind == "fastapi":
        argv = [
            str(venv / "python"), str(peers / "fastapi_server.py"),
            "--model-name", model_name, "--model-path", str(version_dir),
            "--host", LOOPBACK, "--port", str(port),
        ]  # fmt: skip
    elif kind == "bentoml":
        argv = [
            str(venv / "bentoml"), "serve", "bentoml_service:SavedModelService",
            "--host", LOOPBACK, "--port", str(port),
        ]  # fmt: skip
        env = {
            "BENCH_MODEL_NAME": model_name,
            "BENCH_MODEL_PATH": str(version_dir),
            "BENTOML_HOME": str(BENCH / ".work" / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "true",
        }
    else:
        raise ValueError(f"unknown peer {kind!r}")
    if not (venv / "python").exists():
        raise RuntimeError(f"{venv.parent} is missing: run bash benchmarks/peers/setup.sh {kind}")
    server = Server(kind, Process(argv, log_path, cpu=cpu, env=env, cwd=peers), port)
    server.process.start()
    # Any HTTP answer means it listens; the caller checks the predictions.
    _wait_healthy(server, f"{server.url}/v1/models/{model_name}")
    return server


def _wait_healthy(server: Server, url: str) -> None:
    def up() -> bool:
        if not server.process.alive():
            raise RuntimeError(f"{server.kind} exited while starting:\n{server.process.log_tail()}")
        return http_request(url, timeout=2)[0] != 0

    try:
        wait_until(up, START_TIMEOUT, f"{server.kind} to listen", interval=0.25)
    except TimeoutError:
        server.stop()
        raise RuntimeError(f"{server.kind} did not start:\n{server.process.log_tail()}") from None


def version_states(server: Server, model: str) -> dict[int, str]:
    """{version: state} from tfrelay's (TF Serving's) model status."""
    status, body = http_json(f"{server.url}/v1/models/{model}", timeout=5)
    if status != 200 or not body:
        return {}
    return {int(v["version"]): v["state"] for v in body.get("model_version_status", [])}


def wait_available(server: Server, model: str, version: int | None, timeout: float) -> float:
    """Waits until `version` (any, if None) of `model` is AVAILABLE; returns the seconds waited."""

    def available() -> bool:
        if not server.process.alive():
            raise RuntimeError(f"tfrelay exited:\n{server.process.log_tail()}")
        states = version_states(server, model)
        if version is None:
            return "AVAILABLE" in states.values()
        return states.get(version) == "AVAILABLE"

    return wait_until(available, timeout, f"{model} version {version} AVAILABLE", interval=0.05)


_SAMPLE = re.compile(r"^([^\s{]+)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(server: Server) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the server's Prometheus text: (name, labels, value)."""
    status, data = http_request(server.url + METRICS_PATH, timeout=10)
    if status != 200:
        raise RuntimeError(f"metrics at {server.url}{METRICS_PATH} answered {status}")
    samples = []
    for line in data.decode().splitlines():
        match = _SAMPLE.match(line)
        if line.startswith("#") or not match:
            continue
        name, labels, value = match.groups()
        samples.append((name, dict(_LABEL.findall(labels or "")), float(value)))
    return samples


def metric_sum(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels` (`_total` optional)."""
    names = {name, f"{name}_total"}
    return sum(
        value
        for sample_name, sample_labels, value in samples
        if sample_name in names and all(sample_labels.get(k) == v for k, v in labels.items())
    )


def failed_requests(server: Server, model: str) -> float:
    """Requests tfrelay answered with a status other than OK (REST and gRPC alike)."""
    samples = scrape(server)
    total = metric_sum(samples, ":tensorflow:serving:request_count", model_name=model)
    ok = metric_sum(samples, ":tensorflow:serving:request_count", model_name=model, status="OK")
    return total - ok
