"""Serving from buckets: a real S3 protocol endpoint (moto_server) and the GCS emulator, both on
loopback, configured through the environment variables TF Serving users already set."""

from __future__ import annotations

import os
import pathlib
import time

import httpx
import pytest

from support.load import ContinuousClient
from support.servers import (
    InProcessModelServer,
    ModelServerProcess,
    gcs_emulator,
    moto_s3,
    s3_client,
    wait_for_version,
    wait_until,
)
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.storage.filesystem import filesystem_for

# The pipeline relies on this code (the Validator and the pusher run it on the pipeline stack), so
# `make test` runs these tests on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks

BUCKET = "models"
POLL_SECONDS = 0.5


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    with moto_s3(tmp_path_factory.mktemp("moto")) as env:
        s3_client(env).create_bucket(Bucket=BUCKET)
        yield env


def _files_marker_last(local_dir: pathlib.Path) -> list[pathlib.Path]:
    files = sorted(p for p in local_dir.rglob("*") if p.is_file())
    return [p for p in files if p.name != "saved_model.pb"] + [
        p for p in files if p.name == "saved_model.pb"
    ]


def upload_s3(
    env, local_dir: pathlib.Path, prefix: str, skip_marker: bool = False, only_marker: bool = False
):
    client = s3_client(env)
    for path in _files_marker_last(local_dir):
        is_marker = path.name == "saved_model.pb"
        if (skip_marker and is_marker) or (only_marker and not is_marker):
            continue
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(local_dir).as_posix()}")


def _predict(url: str, model: str = "m") -> float:
    response = httpx.post(f"{url}/v1/models/{model}:predict", json={"instances": [2.0]}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]


def test_s3_version_is_discovered_and_served_with_tf_servings_s3_variables(
    s3_env, model_root, tmp_path
):
    upload_s3(s3_env, model_root / "half_plus_two" / "123", "discover/m/1")
    flags = [
        "--model_name=m",
        f"--model_base_path=s3://{BUCKET}/discover/m",
        "--file_system_poll_wait_seconds=0.5",
    ]
    with ModelServerProcess(flags, log_path=tmp_path / "server.log", env=s3_env) as server:
        wait_for_version(server.url, "m", 1)
        assert _predict(server.url) == 3.0
        upload_s3(s3_env, model_root / "half_plus_three" / "123", "discover/m/00000002")
        wait_for_version(server.url, "m", 2)
        assert _predict(server.url) == 4.0


def test_s3_hot_swap_under_load_fails_no_request_and_cleans_the_cache(s3_env, model_root, tmp_path):
    upload_s3(s3_env, model_root / "half_plus_two" / "123", "swap/m/1")
    cache = tmp_path / "cache"
    options = ServerOptions(
        model_name="m",
        model_base_path=f"s3://{BUCKET}/swap/m",
        file_system_poll_wait_seconds=POLL_SECONDS,
        model_cache_dir=str(cache),
        environ={**os.environ, **s3_env},
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        with ContinuousClient(server.url, "m", threads=4) as client:
            wait_until(lambda: client.count() > 50, 30)
            published = time.monotonic()
            upload_s3(s3_env, model_root / "half_plus_three" / "123", "swap/m/2")
            wait_until(lambda: client.first_answer(4.0, published) is not None, 30)
            pickup = client.first_answer(4.0, published).sent - published
            load = server.manager.load_seconds("m", 2)
            assert pickup <= POLL_SECONDS + load + 1.0, (pickup, load)
            wait_until(lambda: server.manager.version_state("m", 1).state.name == "END", 30)
        assert client.failures == []
        # Remote versions are copied into the cache to load and removed after unload.
        assert [p.name.split("-")[0] for p in (cache / "m").iterdir()] == ["2"]


def test_s3_half_uploaded_version_is_never_served(s3_env, model_root, tmp_path):
    upload_s3(s3_env, model_root / "half_plus_two" / "123", "partial/m/1")
    options = ServerOptions(
        model_name="m",
        model_base_path=f"s3://{BUCKET}/partial/m",
        file_system_poll_wait_seconds=POLL_SECONDS,
        environ={**os.environ, **s3_env},
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        # gsutil/aws s3 cp order: saved_model.pb may land before the variables (TF Serving #1086).
        upload_s3(s3_env, model_root / "half_plus_three" / "123", "partial/m/2", only_marker=True)
        polls = server.server.source.poll_count
        wait_until(lambda: server.server.source.poll_count >= polls + 4, 10)
        assert _predict(server.url) == 3.0
        assert server.manager.version_state("m", 2) is None
        upload_s3(s3_env, model_root / "half_plus_three" / "123", "partial/m/2", skip_marker=True)
        wait_for_version(server.url, "m", 2)
        assert _predict(server.url) == 4.0


def test_one_listing_per_model_per_poll_however_many_versions_and_files(
    s3_env, model_root, tmp_path
):
    for version in range(1, 6):
        upload_s3(s3_env, model_root / "half_plus_two" / "123", f"cost/m/{version}")
    options = ServerOptions(
        model_name="m",
        model_base_path=f"s3://{BUCKET}/cost/m",
        file_system_poll_wait_seconds=0.2,
        environ={**os.environ, **s3_env},
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 5)
        storage = server.server.source.storage_of("m")
        polls_before, stats_before = (
            server.server.source.poll_count,
            (
                storage.stats.listings,
                storage.stats.recursive_listings,
                storage.stats.heads,
            ),
        )
        wait_until(lambda: server.server.source.poll_count >= polls_before + 10, 20)
        polls = server.server.source.poll_count - polls_before
        listings = storage.stats.listings - stats_before[0]
        recursive = storage.stats.recursive_listings - stats_before[1]
        assert recursive == 0  # versions already judged complete are never listed again
        # Plus one HEAD of the serving version's saved_model.pb per poll (issue 13: a number
        # deleted and rewritten between two polls is noticed).
        assert polls - 1 <= storage.stats.heads - stats_before[2] <= polls + 1
        assert (
            polls <= listings <= polls + 1
        )  # one delimiter listing per poll (one may be in flight)


def test_gcs_version_is_discovered_and_served(model_root, tmp_path):
    with gcs_emulator(tmp_path) as env:
        # The server's own client configuration (gcsfs's JSON API client, anonymous against the
        # emulator).
        fs = filesystem_for(f"gs://{BUCKET}", environ=env)
        fs.mkdir(BUCKET)
        local = model_root / "half_plus_two" / "123"
        for path in _files_marker_last(local):
            fs.put_file(str(path), f"{BUCKET}/gcs/m/7/{path.relative_to(local).as_posix()}")
        flags = [
            "--model_name=m",
            f"--model_base_path=gs://{BUCKET}/gcs/m",
            "--file_system_poll_wait_seconds=0.5",
        ]
        with ModelServerProcess(flags, log_path=tmp_path / "server.log", env=env) as server:
            wait_for_version(server.url, "m", 7)
            assert _predict(server.url) == 3.0


def test_storage_errors_are_classified_by_type_and_status_not_by_path_text():
    """Real exception objects as the clients raise them (issue 13 review): a path holding "500"
    is no server error, and only passing trouble is retried without a budget."""
    from botocore.exceptions import ClientError

    from tfrelay.serving.storage import errors

    def client_error(code: str, status: int) -> ClientError:
        return ClientError(
            {
                "Error": {"Code": code, "Message": code},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            "GetObject",
        )

    missing = FileNotFoundError(2, "No such file", "/models/m/1500/saved_model.pb")
    assert errors.classify(missing) == errors.NOT_FOUND
    assert errors.classify(OSError(5, "odd failure reading /models/m/500/x")) == errors.OTHER
    assert errors.classify(client_error("SlowDown", 503)) == errors.SERVER_ERROR
    assert errors.classify(client_error("InternalError", 500)) == errors.SERVER_ERROR
    assert errors.classify(client_error("AccessDenied", 403)) == errors.DENIED
    assert errors.classify(client_error("NoSuchKey", 404)) == errors.NOT_FOUND
    # s3fs's translation keeps the ClientError as the cause: the status still decides.
    try:
        try:
            raise client_error("ServiceUnavailable", 503)
        except ClientError as err:
            raise OSError(5, "Service unavailable for /models/m/1/variables") from err
    except OSError as wrapped:
        assert errors.classify(wrapped) == errors.SERVER_ERROR
    assert errors.classify(PermissionError(13, "denied", "/models/m/1")) == errors.DENIED
    assert errors.classify(AttributeError("a bug in our own call")) == errors.OTHER
    transient = {kind for kind in errors.KINDS if errors.StorageError("x", kind).transient}
    assert transient == {
        "timeout",
        "connection",
        "server_error",
        "short_read",
        "mismatch",
        "changed",
    }


def test_a_hanging_model_config_file_read_ends_at_its_deadline(s3_env, monkeypatch):
    """--model_config_file in a bucket that stops answering: the read fails at its deadline with
    the file named, instead of holding the config reload forever (issue 13 review)."""
    from support.fault_proxy import HOLD, FaultProxy, Rule
    from tfrelay.serving.config.config_file import ConfigFileError, read_config_text

    s3_client(s3_env).put_object(Bucket=BUCKET, Key="config/hang.config", Body=b"x")
    with FaultProxy(s3_env["S3_ENDPOINT"]) as proxy:
        for name, value in {**s3_env, "S3_ENDPOINT": proxy.endpoint}.items():
            monkeypatch.setenv(name, value)
        assert read_config_text(f"s3://{BUCKET}/config/hang.config", timeout_seconds=10) == "x"
        hold = proxy.add(Rule(HOLD, method="GET", path_contains="/config/hang.config"))
        started = time.monotonic()
        try:
            with pytest.raises(ConfigFileError, match=r"hang\.config.*no answer within 2s"):
                read_config_text(f"s3://{BUCKET}/config/hang.config", timeout_seconds=2)
        finally:
            hold.release()
        assert hold.hits >= 1
        # Well before the proxy's own 120 s hold limit: the deadline ended it.
        assert time.monotonic() - started < 60
