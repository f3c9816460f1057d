"""Servers the tests start on 127.0.0.1 with free ports, and stop again: tfrelay's model server
(as a real `tfrelay-model-server` process, or in-process for speed), moto's S3 endpoint and the
GCS emulator."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

import httpx

from tfrelay.components.deployer import server_command
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.server import ModelServer

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False


def model_server_executable() -> str:
    """The `tfrelay-model-server` the tests start: the one the ServingDeployer would start.

    That is the serving stack's (`.venv-serving`) after `make setup`, whichever stack runs the
    tests; `make test` points $TFRELAY_MODEL_SERVER at the pipeline stack's own server for the
    serving tests it runs there too (issue 14: the conformance tests pass on both stacks).
    """
    return server_command.resolve()


class ModelServerProcess:
    """`tfrelay-model-server` as a child process (the real command line, flags and all).

    Args:
      flags: TF Serving style flags, without the ports (added here).
      env: extra environment variables.
      log_path: where the server's output goes (printed when a test fails to start it).
    """

    def __init__(
        self,
        flags: Sequence[str],
        log_path: pathlib.Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.rest_port = free_port()
        self.grpc_port = free_port()
        self.log_path = log_path
        self.flags = [
            f"--rest_api_port={self.rest_port}",
            f"--port={self.grpc_port}",
            f"--host={LOOPBACK}",
            *flags,
        ]
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.rest_port}"

    def start(self, timeout: float = 60) -> ModelServerProcess:
        log = open(self.log_path, "ab")
        self._log = log
        self.process = subprocess.Popen(
            [model_server_executable(), *self.flags],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        try:
            wait_until(
                lambda: self.process.poll() is not None or _answers(f"{self.url}/healthz"),
                timeout,
                what="the model server to answer",
            )
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"model server did not start:\n{self.log()}") from None
        if self.process.poll() is not None:
            raise RuntimeError(f"model server exited with {self.process.returncode}:\n{self.log()}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> ModelServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class InProcessModelServer:
    """A ModelServer running in a thread of the test process (no TensorFlow start-up per test).

    Args:
      options: server options; ports and host are filled in here.
    """

    def __init__(self, options: ServerOptions) -> None:
        options.rest_api_port = free_port()
        options.port = free_port()
        options.host = LOOPBACK
        self.server = ModelServer(options)
        self._thread = threading.Thread(target=self._run, name="test-model-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server.options.rest_api_port}"

    @property
    def manager(self):
        return self.server.manager

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def start(self) -> InProcessModelServer:
        self.server.start()
        self._thread.start()
        wait_until(lambda: _answers(f"{self.url}/healthz"), 30, what="the in-process server")
        return self

    def stop(self) -> None:
        self.server.request_stop()
        self._thread.join(timeout=30)
        self.server.stop()

    def __enter__(self) -> InProcessModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_for_version(url: str, model: str, version: int, timeout: float = 60) -> None:
    """Waits until `model` reports `version` AVAILABLE over REST."""

    def available() -> bool:
        response = httpx.get(f"{url}/v1/models/{model}/versions/{version}", timeout=2)
        if response.status_code != 200:
            return False
        return response.json()["model_version_status"][0]["state"] == "AVAILABLE"

    wait_until(available, timeout, interval=0.1, what=f"{model} version {version} AVAILABLE")


def _venv_executable(name: str) -> str:
    """A console script of this environment (a PATH lookup could find another Python's copy)."""
    local = pathlib.Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


@contextlib.contextmanager
def moto_s3(log_dir: pathlib.Path) -> Iterator[dict[str, str]]:
    """A real S3 protocol endpoint (moto_server) on loopback.

    Yields:
      The environment a TF Serving user would set to reach it (TensorFlow's S3 variables plus
      AWS credentials).
    """
    executable = _venv_executable("moto_server")
    port = free_port()
    log = open(log_dir / "moto_server.log", "ab")
    process = subprocess.Popen(
        [executable, "-H", LOOPBACK, "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: _answers(f"http://{LOOPBACK}:{port}/moto-api/"), 30, what="moto_server")
        yield {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "S3_ENDPOINT": f"{LOOPBACK}:{port}",
            "S3_USE_HTTPS": "0",
            "S3_VERIFY_SSL": "0",
        }
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def s3_client(env: dict[str, str]):
    """A boto3 S3 client for the endpoint `moto_s3` yields (tests write to it directly)."""
    import boto3  # here, so importing this module does not need boto3

    return boto3.client(
        "s3",
        endpoint_url=f"http://{env['S3_ENDPOINT']}",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )


@contextlib.contextmanager
def gcs_emulator(log_dir: pathlib.Path) -> Iterator[dict[str, str]]:
    """A GCS JSON-API emulator (gcp-storage-emulator) on loopback.

    Yields:
      {"STORAGE_EMULATOR_HOST": ...}, the variable Google's clients and gcsfs read.
    """
    executable = _venv_executable("gcp-storage-emulator")
    port = free_port()
    log = open(log_dir / "gcs_emulator.log", "ab")
    process = subprocess.Popen(
        [executable, "start", "--host", LOOPBACK, "--port", str(port), "--in-memory"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: _answers(f"http://{LOOPBACK}:{port}/storage/v1/b"), 30, what="GCS emulator"
        )
        yield {"STORAGE_EMULATOR_HOST": f"http://{LOOPBACK}:{port}"}
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
