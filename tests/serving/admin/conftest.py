"""`tfrelay models` against real parts: a moto_server S3 bucket, real model server processes,
versions published with the bucket contract's writer, and the command itself (in process through
its `main`, or as the installed `tfrelay` executable).
"""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import grpc
import httpx
import pytest

from support.grpc_clients import predict_request, stubs
from support.models import write_half_plus_two
from support.servers import moto_s3, s3_client
from tfrelay.serving.admin import models_cli
from tfrelay.serving.storage.bucket_writer import BucketWriter

BUCKET = "models"


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """moto_server's environment, with the bucket created."""
    with moto_s3(tmp_path_factory.mktemp("moto")) as env:
        s3_client(env).create_bucket(Bucket=BUCKET)
        yield env


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[float, pathlib.Path]:
    """Real SavedModels by their answer to x=2: 3.0 (b=2) and 4.0 (b=3)."""
    root = tmp_path_factory.mktemp("admin_models")
    return {1.0 + b: write_half_plus_two(root / f"b{b:g}", a=0.5, b=b) for b in (2.0, 3.0)}


@pytest.fixture
def storage_env(s3_env, monkeypatch) -> dict[str, str]:
    """The process environment pointed at moto (the command reads storage settings from it)."""
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    return s3_env


@dataclass
class Run:
    """One `tfrelay models` run: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    def one_error_line(self, action: str) -> str:
        """The single error line (asserting there is exactly one and no traceback)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert self.code == 2, self
        assert len(lines) == 1 and "Traceback" not in self.err, self.err
        assert lines[0].startswith(f"tfrelay models {action}: error: "), lines[0]
        return lines[0]


def run_models(capsys, *argv: str) -> Run:
    """Runs `tfrelay models ARGV` in this process (its real `main`).

    `main` sets up logging as a command line does (a root handler, quieter storage loggers);
    that is undone afterwards, or the storage layer's warnings would be missing from every later
    test in the session (test_hanging_list waits for "Storage is slow").
    """
    root = logging.getLogger()
    handlers, root_level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in _QUIETED}
    capsys.readouterr()
    try:
        code = models_cli.main(list(argv))
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


# The loggers models_cli.main quiets.
_QUIETED = (*models_cli._NOISY_LOGGERS, "tfrelay.serving.storage.calls")


def run_tfrelay(env: dict[str, str], *argv: str, timeout: float = 120) -> Run:
    """Runs the installed `tfrelay` executable (the umbrella command) as a child process."""
    executable = str(pathlib.Path(sys.executable).parent / "tfrelay")
    done = subprocess.run(
        [executable, *argv],
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def publish(s3_env: dict[str, str], model_dir: pathlib.Path, prefix: str, run_id: str) -> int:
    """Publishes a model to s3://models/<prefix> with the bucket contract's writer."""
    writer = BucketWriter(f"s3://{BUCKET}/{prefix}", environ=s3_env)
    return writer.publish(
        str(model_dir),
        "m",
        run_id=run_id,
        description={"pipeline_run_id": run_id, "metrics": {"accuracy": 0.9}},
    ).version


def put_objects(s3_env: dict[str, str], prefix: str, files: dict[str, bytes]) -> None:
    """Writes objects as another tool would (tests build unfinished versions with it)."""
    client = s3_client(s3_env)
    for relative, data in files.items():
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{relative}", Body=data)


def model_files(model_dir: pathlib.Path) -> dict[str, bytes]:
    """{relative path: bytes} of a local model."""
    return {
        p.relative_to(model_dir).as_posix(): p.read_bytes()
        for p in sorted(model_dir.rglob("*"))
        if p.is_file()
    }


def states(url: str, model: str = "m") -> dict[int, str]:
    """{version: state} from GET /v1/models/<model>."""
    response = httpx.get(f"{url}/v1/models/{model}", timeout=5)
    if response.status_code != 200:
        return {}
    return {int(v["version"]): v["state"] for v in response.json()["model_version_status"]}


def load_seconds(url: str, version: int, model: str = "m") -> float:
    """How long the server took to load `version` (copy from the bucket, load, warm up)."""
    response = httpx.get(f"{url}/v1/models", timeout=5)
    for entry in response.json()["models"]:
        if entry["name"] == model:
            for status in entry["model_version_status"]:
                if int(status["version"]) == version:
                    return float(status["load_seconds"])
    raise AssertionError(f"{model} version {version} has no load time")


@dataclass
class Answer:
    sent: float
    value: float | None
    error: str = ""


@dataclass
class SteadyLoad:
    """Bounded, steady REST + gRPC Predict traffic to several replicas.

    One REST and one gRPC thread per replica send back to back, each request bounded by a
    timeout, the whole run by `max_seconds` and `max_requests` per thread (whichever first).

    Attributes:
      replicas: (REST base URL, gRPC port) of each replica.
    """

    replicas: Sequence[tuple[str, int]]
    max_seconds: float = 120.0
    max_requests: int = 20_000
    answers: dict[tuple[int, str], list[Answer]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, key: tuple[int, str], answer: Answer) -> None:
        with self._lock:
            self.answers.setdefault(key, []).append(answer)

    def _rest(self, index: int, url: str) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=10) as client:
            for _ in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                sent = time.monotonic()
                try:
                    response = client.post(f"{url}/v1/models/m:predict", json={"instances": [2.0]})
                    if response.status_code == 200:
                        answer = Answer(sent, response.json()["predictions"][0])
                    else:
                        answer = Answer(sent, None, f"{response.status_code} {response.text}")
                except Exception as err:  # noqa: BLE001 - every failure is a finding
                    answer = Answer(sent, None, repr(err))
                self._record((index, "rest"), answer)

    def _grpc(self, index: int, port: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            prediction, _ = stubs(channel)
            request = predict_request("m", [2.0])
            for _ in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                sent = time.monotonic()
                try:
                    response = prediction.Predict(request, timeout=10)
                    answer = Answer(sent, response.outputs["y"].float_val[0])
                except grpc.RpcError as err:
                    answer = Answer(sent, None, f"{err.code()} {err.details()}")
                self._record((index, "grpc"), answer)

    def __enter__(self) -> SteadyLoad:
        for index, (url, port) in enumerate(self.replicas):
            for target, arg in ((self._rest, url), (self._grpc, port)):
                thread = threading.Thread(target=target, args=(index, arg), daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def count(self) -> int:
        with self._lock:
            return sum(len(a) for a in self.answers.values())

    def failures(self) -> list[tuple[tuple[int, str], Answer]]:
        with self._lock:
            return [
                (k, a) for k, answers in self.answers.items() for a in answers if a.value is None
            ]

    def first(self, index: int, kind: str, value: float, after: float) -> Answer | None:
        """The first answer `value` from replica `index` over `kind` sent after `after`."""
        with self._lock:
            for answer in self.answers.get((index, kind), []):
                if answer.sent >= after and answer.value == value:
                    return answer
        return None

    def after_first(self, index: int, kind: str, value: float, after: float) -> list[Answer]:
        """Answers other than `value` sent after the first `value` (one thread: in order)."""
        first = self.first(index, kind, value, after)
        if first is None:
            return []
        with self._lock:
            return [
                a
                for a in self.answers.get((index, kind), [])
                if a.sent > first.sent and a.value != value
            ]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    """Polls `predicate` until truthy (returns it) or `timeout` seconds (TimeoutError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


@contextlib.contextmanager
def started(servers: Sequence) -> Iterator[None]:
    """Starts model server processes concurrently (each pays TensorFlow's start-up) and stops
    them all at the end."""
    errors: list[BaseException] = []

    def start(server) -> None:
        try:
            server.start(timeout=90)
        except BaseException as err:  # noqa: BLE001 - re-raised below
            errors.append(err)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        if errors:
            raise errors[0]
        yield
    finally:
        for server in servers:
            server.stop()


def object_bytes(s3_env: dict[str, str], key: str) -> bytes:
    """An object's bytes, straight from moto."""
    return s3_client(s3_env).get_object(Bucket=BUCKET, Key=key)["Body"].read()


def versions_in(s3_env: dict[str, str], prefix: str) -> list[int]:
    """The version directories under s3://models/<prefix> (the writer's listing)."""
    return sorted(BucketWriter(f"s3://{BUCKET}/{prefix}", environ=s3_env).list_versions())


def json_of(run: Run) -> dict:
    return json.loads(run.out)


class Admin:
    """The helpers above, for the scenario modules (a fixture: test modules are imported by
    path, so they cannot import this one)."""

    bucket = BUCKET
    Run = Run
    SteadyLoad = SteadyLoad
    run_models = staticmethod(run_models)
    run_tfrelay = staticmethod(run_tfrelay)
    publish = staticmethod(publish)
    put_objects = staticmethod(put_objects)
    model_files = staticmethod(model_files)
    states = staticmethod(states)
    load_seconds = staticmethod(load_seconds)
    wait_for = staticmethod(wait_for)
    started = staticmethod(started)
    object_bytes = staticmethod(object_bytes)
    versions_in = staticmethod(versions_in)
    json_of = staticmethod(json_of)


@pytest.fixture(scope="session")
def admin() -> type[Admin]:
    """The scenarios' helpers (see Admin)."""
    return Admin


@dataclass
class AppearanceWatch:
    """Notes when an object first appears in the bucket (HEAD every 20 ms, bounded), so a
    figure is measured from the moment a version was published, not from when the command that
    published it returned.

    Attributes:
      s3_env: moto's environment.
      key: the object's key.
      max_seconds: how long to watch at most.
    """

    s3_env: dict[str, str]
    key: str
    max_seconds: float = 120.0
    seen_at: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        client = s3_client(self.s3_env)
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                client.head_object(Bucket=BUCKET, Key=self.key)
                self.seen_at = time.monotonic()
                return
            except Exception:  # noqa: BLE001 - not there yet
                time.sleep(0.02)

    def __enter__(self) -> AppearanceWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


Admin.AppearanceWatch = AppearanceWatch
