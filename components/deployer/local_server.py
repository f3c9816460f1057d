"""The `local` target: reuse the model server already answering at the endpoint, or start one as
a detached process that outlives the pipeline run (so a dev loop needs nothing started first)."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
from urllib.parse import urlparse

import httpx
from absl import logging

from tfrelay.components.deployer import server_command as server_command_module

DEFAULT_STATE_DIR = os.path.join(os.path.expanduser("~"), ".tfrelay", "servers")


@dataclasses.dataclass(frozen=True)
class LocalServer:
    """A model server process this machine runs for a model.

    Attributes:
      endpoint: its REST base URL.
      model_name: the model it serves.
      base_path: the bucket path it polls.
      pid: its process id (None when it was already running and not started by us).
      log_path: where its output goes.
      started: whether this call started it.
    """

    endpoint: str
    model_name: str
    base_path: str
    pid: int | None
    log_path: str | None
    started: bool


def _answers(endpoint: str) -> bool:
    try:
        return httpx.get(f"{endpoint}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _same_path(a: str, b: str) -> bool:
    def normal(path: str) -> str:
        path = path.rstrip("/")
        return os.path.abspath(path) if "://" not in path else path

    return normal(a) == normal(b)


def _check_serves(endpoint: str, model_name: str, base_path: str) -> None:
    models = httpx.get(f"{endpoint}/v1/models", timeout=5).json().get("models", [])
    for model in models:
        if model["name"] == model_name:
            if not _same_path(model["base_path"], base_path):
                raise ValueError(
                    f"The model server at {endpoint} serves {model_name} from {model['base_path']}, "
                    f"not from {base_path}. Use another endpoint (port) or stop that server."
                )
            return
    names = ", ".join(m["name"] for m in models) or "no model"
    raise ValueError(
        f"The model server at {endpoint} serves {names}, not {model_name}. Use another endpoint "
        "(port) for this model, or give that server a model config with both."
    )


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _state_file(state_dir: str, port: int) -> pathlib.Path:
    return pathlib.Path(state_dir) / f"server-{port}.json"


def find_or_start(
    endpoint: str,
    model_name: str,
    base_path: str,
    poll_seconds: float,
    state_dir: str = DEFAULT_STATE_DIR,
    start_timeout_seconds: float = 120,
    prefer_tflite: bool = False,
    server_command: str | None = None,
) -> LocalServer:
    """Returns the server at `endpoint`, starting one if none answers.

    Args:
      endpoint: `http://host:port` where the server's REST API answers.
      model_name: the model it must serve.
      base_path: the bucket path it must poll.
      poll_seconds: `--file_system_poll_wait_seconds` for a server started here.
      state_dir: where a started server's log and pid file go.
      start_timeout_seconds: how long a new server may take to answer.
      prefer_tflite: start the server with --prefer_tflite_model.
      server_command: the tfrelay-model-server executable to start (default: see
        `server_command.resolve`, the serving environment when there is one).

    Returns:
      The server.

    Raises:
      ValueError: a server answers there but serves something else, or `server_command` is not
        an executable.
      RuntimeError: a new server did not start (its log is quoted).
    """
    if _answers(endpoint):
        _check_serves(endpoint, model_name, base_path)
        logging.info("ServingDeployer: reusing the model server at %s", endpoint)
        return LocalServer(endpoint, model_name, base_path, None, None, False)

    parsed = urlparse(endpoint)
    if parsed.scheme != "http" or not parsed.port:
        raise ValueError(f"A local endpoint looks like http://127.0.0.1:8501, got {endpoint!r}")
    host = parsed.hostname or "127.0.0.1"
    os.makedirs(state_dir, exist_ok=True)
    log_path = os.path.join(state_dir, f"server-{parsed.port}.log")
    command = [
        server_command_module.resolve(server_command),
        f"--rest_api_port={parsed.port}",
        f"--port={_free_port(host)}",
        f"--host={host}",
        f"--model_name={model_name}",
        f"--model_base_path={base_path}",
        f"--file_system_poll_wait_seconds={poll_seconds:g}",
        # A development server: a broken version should show its error in seconds, not after
        # TF Serving's five one-minute retries.
        "--max_num_load_retries=2",
        "--load_retry_interval_micros=2000000",
    ]
    if prefer_tflite:
        command.append("--prefer_tflite_model")
    logging.info("ServingDeployer: starting %s (log: %s)", " ".join(command), log_path)
    with open(log_path, "ab") as log:
        # A new session: the server must outlive this pipeline run and its signals.
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + start_timeout_seconds
    while not _answers(endpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.terminate()
            with open(log_path, errors="replace") as log:
                tail = "".join(log.readlines()[-20:])
            raise RuntimeError(
                f"The model server did not start at {endpoint}. Its log ({log_path}) ends:\n{tail}"
            )
        time.sleep(0.5)
    _state_file(state_dir, parsed.port).write_text(
        json.dumps(
            {
                "pid": process.pid,
                "endpoint": endpoint,
                "model_name": model_name,
                "base_path": base_path,
                "log": log_path,
                "command": command,
            }
        )
    )
    return LocalServer(endpoint, model_name, base_path, process.pid, log_path, True)


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our own child (the demo starts and stops servers in one process),
        # since a zombie still answers kill(pid, 0).
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_local_server(
    endpoint: str, state_dir: str = DEFAULT_STATE_DIR, timeout_seconds: float = 30
) -> bool:
    """Stops a server `find_or_start` started at `endpoint` (SIGTERM, then SIGKILL).

    Returns:
      Whether a server was stopped.
    """
    port = urlparse(endpoint).port
    state = _state_file(state_dir, port) if port else None
    if state is None or not state.exists():
        return False
    pid = json.loads(state.read_text())["pid"]
    state.unlink()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return True
