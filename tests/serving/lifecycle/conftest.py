"""The version lifecycle under storage faults (issue 13): a real S3 endpoint (moto_server), the
test suite's own fault-injecting proxy in front of it for the model server, and pushes made with
tfrelay's real pusher straight to moto (so faults only hit the server's reads).

Each scenario is one file; every one polls every second and keeps its retry settings small so
it runs in well under a minute.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import httpx
import pytest

from support.fault_proxy import FaultProxy
from support.load import ContinuousClient
from support.models import write_half_plus_two
from support.servers import moto_s3, s3_client
from tfrelay.components.pusher import push

BUCKET = "models"
POLL_SECONDS = 1.0


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """moto_server's environment (what the pusher uses), with the bucket created."""
    with moto_s3(tmp_path_factory.mktemp("moto")) as env:
        s3_client(env).create_bucket(Bucket=BUCKET)
        yield env


@pytest.fixture
def proxy(s3_env) -> Iterator[FaultProxy]:
    """The fault proxy in front of moto; the model server reads through it."""
    with FaultProxy(s3_env["S3_ENDPOINT"]) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def server_env(s3_env, proxy) -> dict[str, str]:
    """The model server's environment: S3 through the fault proxy."""
    return {**os.environ, **s3_env, "S3_ENDPOINT": proxy.endpoint}


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[float, pathlib.Path]:
    """Real SavedModels by their answer to x=2: y = 0.5x + b for b = 2, 3, 4."""
    root = tmp_path_factory.mktemp("lifecycle_models")
    return {2 * 0.5 + b: write_half_plus_two(root / f"b{b:g}", a=0.5, b=b) for b in (2.0, 3.0, 4.0)}


def single_thread_clients(url: str, count: int = 2) -> list[ContinuousClient]:
    """`count` clients of one thread each (not entered yet).

    Order is only meaningful within one thread: a request sent later on thread B can be routed
    before a switch that thread A's earlier request already saw (issue 13 review). So scenarios
    check "never the old answer again" per single-thread client.
    """
    return [ContinuousClient(url, "m", threads=1) for _ in range(count)]


def other_answers_after_first(client: ContinuousClient, value: float, after: float) -> list:
    """Answers of a single-thread `client` sent after its first `value` (sent >= `after`) that
    were not `value`: each of its requests starts after the previous one was answered."""
    first = client.first_answer(value, after)
    if first is None:
        return []
    return [a for a in client.answers if a.sent > first.sent and a.value != value]


class Lifecycle:
    """What the scenarios do to the bucket and ask the servers (a fixture: test modules are
    imported by path, so they cannot import each other).

    Args:
      s3_env: moto's environment (writes go straight to moto, not through the proxy).
    """

    poll_seconds = POLL_SECONDS
    bucket = BUCKET
    single_thread_clients = staticmethod(single_thread_clients)
    other_answers_after_first = staticmethod(other_answers_after_first)

    def __init__(self, s3_env: dict[str, str]) -> None:
        self.s3_env = s3_env
        self.client = s3_client(s3_env)

    def push(self, model_dir: pathlib.Path, prefix: str) -> int:
        """Pushes with tfrelay's pusher to s3://models/<prefix>; returns the version it took."""
        request = push.PushRequest(
            model_dir=str(model_dir), base_path=f"s3://{BUCKET}/{prefix}", model_name="m"
        )
        return push.push_model(request, environ=self.s3_env).version

    def upload(self, model_dir: pathlib.Path, prefix: str) -> None:
        """Writes a model as another tool would (boto3, no push record), marker last."""
        files = sorted(p for p in model_dir.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == "saved_model.pb")
        for path in files:
            key = f"{prefix}/{path.relative_to(model_dir).as_posix()}"
            self.client.upload_file(str(path), BUCKET, key)

    def delete_version(self, prefix: str, version: int) -> int:
        """Deletes every object of a version (an operator's rollback); returns how many."""
        listing = self.client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/{version}/")
        keys = [{"Key": item["Key"]} for item in listing.get("Contents", [])]
        if keys:
            self.client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})
        return len(keys)

    @staticmethod
    def version_states(url: str, model: str = "m") -> dict[int, dict]:
        """{version: its entry in GET /v1/models} (state, status, load_failure, ...)."""
        response = httpx.get(f"{url}/v1/models", timeout=5)
        response.raise_for_status()
        for entry in response.json()["models"]:
            if entry["name"] == model:
                return {int(v["version"]): v for v in entry["model_version_status"]}
        return {}

    def state_of(self, url: str, version: int, model: str = "m") -> str | None:
        entry = self.version_states(url, model).get(version)
        return entry["state"] if entry else None


@pytest.fixture
def lc(s3_env) -> Lifecycle:
    """The scenarios' helper (see Lifecycle)."""
    return Lifecycle(s3_env)
