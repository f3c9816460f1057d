"""Processes, ports, CPU pinning and small HTTP helpers the scenarios share.

Servers run on one core (`taskset -c SERVER_CPU`), everything else the harness runs (load
generators, prober, moto, the harness itself) on the other; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

LOOPBACK = "127.0.0.1"
REPO = pathlib.Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
# The pipeline stack (Python 3.10, TF 2.16, TFX): the harness itself, moto, and what needs TFX
# (exporting the penguin model). The serving stack (Python 3.13, TF 2.21, protobuf's upb
# backend): tfrelay's server, as deployed since issue 14, and the ceiling measured beside it.
PROJECT_BIN = REPO / ".venv" / "bin"
SERVING_BIN = REPO / ".venv-serving" / "bin"

_STACK_CODE = (
    "import json, platform, google.protobuf as p, tensorflow as tf;"
    "from google.protobuf.internal import api_implementation as a;"
    "print(json.dumps({'python': platform.python_version(), 'tensorflow': tf.__version__,"
    " 'protobuf': p.__version__, 'protobuf_backend': a.Type()}))"
)


def stack_of(bin_dir: pathlib.Path) -> dict[str, str]:
    """The Python, TensorFlow and protobuf (version and backend) of a venv, as its interpreter
    reports them.

    Args:
      bin_dir: the venv's bin directory.

    Returns:
      {"python", "tensorflow", "protobuf", "protobuf_backend"}, or {"error": ...} when the
      interpreter cannot import them.
    """
    done = subprocess.run(
        [str(bin_dir / "python"), "-c", _STACK_CODE],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=False,
        timeout=120,
    )
    try:
        return {"bin": str(bin_dir), **json.loads(done.stdout.strip().splitlines()[-1])}
    except (IndexError, ValueError):
        return {"bin": str(bin_dir), "error": done.stderr.strip()[-500:]}


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> float:
    """Polls `predicate` until true; returns the seconds it took. Raises TimeoutError."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def pin_self(cpu: int) -> None:
    """Pins the harness (and every child not pinned elsewhere) to `cpu`."""
    os.sched_setaffinity(0, {cpu})


_TICK = os.sysconf("SC_CLK_TCK")


def core_busy_seconds(cpu: int) -> float:
    """CPU seconds core `cpu` spent on anything but idle and iowait, from /proc/stat."""
    for line in pathlib.Path("/proc/stat").read_text().splitlines():
        fields = line.split()
        if fields[0] == f"cpu{cpu}":
            ticks = [int(v) for v in fields[1:]]
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _TICK
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process and all its live descendants (a server and
    the workers it started, whatever their session)."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        # After the name: state, ppid, ..., utime (14th field of the line), stime (15th).
        children.setdefault(int(fields[1]), []).append(child)
        ticks[child] = int(fields[11]) + int(fields[12])
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += ticks.get(current, 0)
        todo.extend(children.get(current, []))
    return total / _TICK


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Process:
    """A child process in its own session (so its own children stop with it), logging to a file.

    Args:
      argv: the command line.
      log_path: stdout and stderr go here.
      cpu: if set, the command runs under `taskset -c cpu`.
      env: extra environment variables.
      cwd: working directory.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: pathlib.Path,
        cpu: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: pathlib.Path | None = None,
    ) -> None:
        self.argv = [*(["taskset", "-c", str(cpu)] if cpu is not None else []), *argv]
        self.log_path = log_path
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, "not started"
        return self.popen.pid

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the process group this process leads, then SIGKILL after `timeout`."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        except ProcessLookupError:
            pass

    def __enter__(self) -> Process:
        return self if self.popen is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def http_request(
    url: str,
    body: bytes | None = None,
    timeout: float = 10.0,
    content_type: str = "application/json",
) -> tuple[int, bytes]:
    """One HTTP request (POST when `body` is given): (status, body); status 0 if unreachable."""
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (OSError, http.client.HTTPException):
        return 0, b""


def http_json(url: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    """`http_request`, with the answer parsed as JSON (None when it is not JSON)."""
    status, data = http_request(url, body, timeout)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, None
