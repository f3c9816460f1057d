"""What `tfrelay models` says when it cannot do what was asked: one line on stderr naming what
to do next, exit code 2, no traceback, and nothing written. Storage faults are real: moto's S3
behind the test suite's fault proxy answering 403 AccessDenied exactly as S3 does (moto_server
enforces no IAM or bucket policy without its IAM mode), and an immutable local directory
(`chattr +i`: EPERM even for root, who ignores file modes)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from support.fault_proxy import DENY, FaultProxy, Rule
from support.servers import free_port
from tfrelay.serving.storage.bucket_writer import BucketWriter

PREFIX = "errors/m"


@pytest.fixture(scope="module")
def base_path(admin, s3_env, models) -> str:
    """s3://models/errors/m: 1 published, 2 incomplete (marker without variables), 3 uploading
    (the writer's claim)."""
    assert admin.publish(s3_env, models[3.0], PREFIX, run_id="run-1") == 1
    files = admin.model_files(models[3.0])
    admin.put_objects(s3_env, f"{PREFIX}/2", {"saved_model.pb": files["saved_model.pb"]})
    claim = {"model_name": "m", "version": 3, "status": "uploading", "files": {}}
    admin.put_objects(
        s3_env, f"{PREFIX}/3", {"assets.extra/tfrelay_push.json": json.dumps(claim).encode()}
    )
    return f"s3://{admin.bucket}/{PREFIX}"


def test_rollback_to_a_missing_version_names_the_versions_present(
    admin, base_path, storage_env, capsys
):
    line = admin.run_models(capsys, "rollback", base_path, "--to", "9").one_error_line("rollback")
    assert "version 9 does not exist" in line and "versions present: 1, 2, 3" in line
    assert "tfrelay models list" in line


@pytest.mark.parametrize(
    ("version", "says"),
    [(2, "waiting for variables/variables.index"), (3, "no saved_model.pb or model.tflite yet")],
)
def test_rollback_to_an_unpublished_version_is_refused(
    admin, base_path, storage_env, capsys, version, says
):
    run = admin.run_models(capsys, "rollback", base_path, "--to", str(version))
    line = run.one_error_line("rollback")
    assert f"version {version} at {base_path}/{version} is not published" in line and says in line
    assert admin.versions_in(storage_env, PREFIX) == [1, 2, 3]


@pytest.fixture
def denied_env(s3_env, monkeypatch):
    """The command's S3 endpoint is the fault proxy in front of moto."""
    with FaultProxy(s3_env["S3_ENDPOINT"]) as proxy:
        for name, value in {**s3_env, "S3_ENDPOINT": proxy.endpoint}.items():
            monkeypatch.setenv(name, value)
        yield proxy


def test_s3_access_denied_on_write_says_which_credentials_to_fix_and_writes_nothing(
    admin, base_path, s3_env, denied_env, capsys
):
    denied = denied_env.add(Rule(DENY, method="PUT", path_contains=f"/{PREFIX}/"))
    line = admin.run_models(capsys, "rollback", base_path, "--to", "1").one_error_line("rollback")
    assert line.startswith("tfrelay models rollback: error: permission denied:"), line
    assert "bucket 'models'" in line and "run the same command again" in line
    assert denied.hits >= 1
    assert admin.versions_in(s3_env, PREFIX) == [1, 2, 3]


def test_s3_access_denied_on_list(admin, base_path, denied_env, capsys):
    denied_env.add(Rule(DENY, method="GET", query_contains="list-type"))
    line = admin.run_models(capsys, "list", base_path).one_error_line("list")
    assert "permission denied: could not list the versions in" in line, line


def test_a_read_only_local_base_path_is_a_permission_error(admin, models, tmp_path, capsys):
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: no way to deny root a write here")
    base = tmp_path / "m"
    BucketWriter(str(base)).publish(str(models[3.0]), "m")
    BucketWriter(str(base)).publish(str(models[4.0]), "m")
    if subprocess.run(["chattr", "+i", str(base)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support the immutable attribute")
    try:
        line = admin.run_models(capsys, "rollback", str(base), "--to", "1").one_error_line(
            "rollback"
        )
    finally:
        subprocess.run(["chattr", "-i", str(base)], check=True)
    assert "permission denied:" in line and "PermissionError" in line, line
    assert sorted(p.name for p in base.iterdir() if p.name.isdigit()) == ["1", "2"]


def test_an_unreachable_endpoint_fails_after_showing_the_bucket(
    admin, base_path, storage_env, capsys
):
    dead = f"127.0.0.1:{free_port()}"
    run = admin.run_models(capsys, "list", base_path, "--endpoint", dead, "--endpoint-timeout", "2")
    line = run.one_error_line("list")
    assert f"{dead}: unreachable" in line and "--rest_api_port" in line, line
    assert "published" in run.out and "unreachable" in run.out  # the table is still shown


def test_a_malformed_config_is_reported_with_its_line_and_left_alone(
    admin, base_path, storage_env, capsys
):
    admin.put_objects(storage_env, "errors", {"bad.config": b"model_config_list { config { nme"})
    url = f"s3://{admin.bucket}/errors/bad.config"
    line = admin.run_models(capsys, "label", url, "m", "stable=1").one_error_line("label")
    assert f"malformed model config {url}: " in line and "1:" in line, line
    assert (
        admin.object_bytes(storage_env, "errors/bad.config") == b"model_config_list { config { nme"
    )
