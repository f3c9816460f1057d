"""Fixtures of the operations tests: Debian's Prometheus binaries, a live tfrelay server that has
served traffic (errors included) and has a model that fails to load, and a real Prometheus on
loopback scraping it every second with deploy/prometheus/tfrelay-alerts.yml loaded.

The binaries come from `bash scripts/install-prometheus.sh` (build/tools/prometheus/usr/bin),
$PROMETHEUS_BIN or PATH. They are part of the project's set-up, so a missing one fails the tests
with the command to run rather than skipping them: a skip would hide that the alerts and the
dashboard went unchecked.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from support.models import write_half_plus_two
from support.paths import REPO_ROOT, TF_SERVING_TESTDATA
from support.servers import LOOPBACK, ModelServerProcess, free_port, wait_for_version, wait_until

INSTALL_COMMAND = "bash scripts/install-prometheus.sh"
SCRAPE_JOB = "tfrelay-model-server"  # the job deploy/prometheus/prometheus.yml names
METRICS_PATH = "/monitoring/prometheus/metrics"
ALERT_RULES = REPO_ROOT / "deploy" / "prometheus" / "tfrelay-alerts.yml"
GOOD_MODEL = "half_plus_two"
GOOD_VERSION = 123
BROKEN_MODEL = "broken"


@dataclass(frozen=True)
class PrometheusTools:
    """Paths of the two binaries of Debian's `prometheus` package."""

    prometheus: pathlib.Path
    promtool: pathlib.Path


def _find_tools() -> PrometheusTools | None:
    candidates: list[pathlib.Path] = []
    if os.environ.get("PROMETHEUS_BIN"):
        candidates.append(pathlib.Path(os.environ["PROMETHEUS_BIN"]).parent)
    candidates.append(REPO_ROOT / "build" / "tools" / "prometheus" / "usr" / "bin")
    on_path = shutil.which("prometheus")
    if on_path:
        candidates.append(pathlib.Path(on_path).parent)
    for folder in candidates:
        prometheus, promtool = folder / "prometheus", folder / "promtool"
        if os.access(prometheus, os.X_OK) and os.access(promtool, os.X_OK):
            return PrometheusTools(prometheus, promtool)
    return None


@pytest.fixture(scope="session")
def prometheus_tools() -> PrometheusTools:
    """prometheus and promtool; fails (never skips) with the install command when missing."""
    tools = _find_tools()
    if tools is None:
        pytest.fail(
            "prometheus/promtool not found in $PROMETHEUS_BIN's folder, "
            "build/tools/prometheus/usr/bin or PATH. Install them (Debian's package, unpacked "
            f"under build/tools/, nothing installed system-wide) with:\n    {INSTALL_COMMAND}",
            pytrace=False,
        )
    return tools


def _half_plus_two_base_path(tmp: pathlib.Path) -> pathlib.Path:
    shared = TF_SERVING_TESTDATA / "saved_model_half_plus_two_cpu"
    if shared.is_dir():
        return shared
    base = tmp / GOOD_MODEL
    write_half_plus_two(base / str(GOOD_VERSION))
    return base


def _broken_base_path(tmp: pathlib.Path) -> pathlib.Path:
    """A version whose saved_model.pb is not a SavedModel: every load attempt fails."""
    version = tmp / BROKEN_MODEL / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"this is not a SavedModel protocol buffer")
    return version.parent


def _load_failures(url: str) -> float:
    text = httpx.get(f"{url}{METRICS_PATH}", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f':tfrelay:serving:load_failures{{model_name="{BROKEN_MODEL}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="session")
def tfrelay_server(tmp_path_factory) -> Iterator[ModelServerProcess]:
    """`tfrelay-model-server` with metrics: half_plus_two AVAILABLE, `broken` failing to load
    and retrying every fraction of a second (so load failures grow while Prometheus scrapes),
    and storage polled every second."""
    tmp = tmp_path_factory.mktemp("ops-server")
    config = tmp / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "{GOOD_MODEL}" base_path: "{_half_plus_two_base_path(tmp)}" '
        'model_platform: "tensorflow" }\n'
        f'  config {{ name: "{BROKEN_MODEL}" base_path: "{_broken_base_path(tmp)}" '
        'model_platform: "tensorflow" }\n'
        "}\n"
    )
    monitoring = tmp / "monitoring.config"
    monitoring.write_text(f'prometheus_config: {{ enable: true, path: "{METRICS_PATH}" }}\n')
    server = ModelServerProcess(
        [
            f"--model_config_file={config}",
            f"--monitoring_config_file={monitoring}",
            "--file_system_poll_wait_seconds=1",
            "--max_num_load_retries=100000",
            "--load_retry_interval_micros=200000",
        ],
        log_path=tmp / "server.log",
    )
    with server:
        wait_for_version(server.url, GOOD_MODEL, GOOD_VERSION)
        wait_until(lambda: _load_failures(server.url) >= 1, 60, interval=0.2, what="a failed load")
        yield server


class Prometheus:
    """A running Prometheus and its HTTP API (every call bounded by a timeout)."""

    def __init__(self, url: str, process: subprocess.Popen, log_path: pathlib.Path) -> None:
        self.url = url
        self.process = process
        self.log_path = log_path

    def api(self, path: str, **params: str) -> dict:
        """GETs /api/v1/<path> and returns its `data`; raises on an error status."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """The result vector of an instant query at now."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return data["result"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _send_traffic(url: str) -> int:
    """Requests of every API against the good model, plus client errors (400, 404) and requests
    to the broken model (404), so success and error series exist. Returns how many were sent."""
    sent = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(30):
            model = f"/v1/models/{GOOD_MODEL}"
            client.post(f"{model}:predict", json={"instances": [[float(i)], [2.0]]})
            client.post(f"{model}:regress", json={"examples": [{"x": float(i)}]})
            client.post(
                f"{model}:classify",
                json={"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}]},
            )
            client.get(model)
            client.get(f"{model}/metadata")
            client.post(f"{model}:predict", json={"instances": "not a list"})  # 400
            client.get("/v1/models/no_such_model")  # 404
            client.post(f"/v1/models/{BROKEN_MODEL}:predict", json={"instances": [[1.0]]})  # 404
            sent += 8
            time.sleep(0.05)
    return sent


@pytest.fixture(scope="session")
def prometheus(prometheus_tools, tfrelay_server, tmp_path_factory) -> Iterator[Prometheus]:
    """Prometheus on loopback scraping the tfrelay server every second, with the alert rules
    evaluated every second, after the server answered traffic while being scraped."""
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {ALERT_RULES}\n"
        "scrape_configs:\n"
        f"  - job_name: {SCRAPE_JOB}\n"
        f"    metrics_path: {METRICS_PATH}\n"
        f"    static_configs:\n      - targets: ['{LOOPBACK}:{tfrelay_server.rest_port}']\n"
    )
    log_path = tmp / "prometheus.log"
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [
            str(prometheus_tools.prometheus),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://{LOOPBACK}:{port}", process, log_path)
    try:
        wait_until(lambda: _ready(server), 30, interval=0.2, what="Prometheus to be ready")
        wait_until(
            lambda: _scraped(server) >= 1, 30, interval=0.2, what="the first successful scrape"
        )
        expected = _send_traffic(tfrelay_server.url)
        # The counters Prometheus holds include all of it, and a few more scrapes followed, so
        # every rate window has samples on both sides of the traffic.
        wait_until(lambda: _requests_seen(server) >= expected, 30, interval=0.5, what="the traffic")
        scrapes = _scraped(server)
        wait_until(
            lambda: _scraped(server) >= scrapes + 3, 30, interval=0.5, what="three more scrapes"
        )
        yield server
    except Exception:
        print(server.log())
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(server: Prometheus) -> bool:
    if server.process.poll() is not None:
        raise RuntimeError(f"prometheus exited with {server.process.returncode}:\n{server.log()}")
    try:
        return httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _scraped(server: Prometheus) -> int:
    """Successful scrapes of the tfrelay target so far (the sum of `up` over its samples)."""
    result = server.query(f'sum(sum_over_time(up{{job="{SCRAPE_JOB}"}}[10m]))')
    return int(float(result[0]["value"][1])) if result else 0


def _requests_seen(server: Prometheus) -> float:
    result = server.query(f'sum(:tensorflow:serving:request_count{{job="{SCRAPE_JOB}"}})')
    return float(result[0]["value"][1]) if result else 0.0
