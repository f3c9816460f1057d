"""A rollback is one publication, whatever happens to it: a retry after it was cut off resumes
its own unpublished claim (same idempotency key: "rollback-of-N" + N's checksum) instead of
taking a second number, a repeat after it succeeded does nothing, and a version another tool
wrote (no push record) is named by its checksum computed from the bucket."""

from __future__ import annotations

import json

import pytest

from support.fault_proxy import DENY, FaultProxy, Rule
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.bucket_writer import BucketWriter


@pytest.fixture
def proxied(s3_env, monkeypatch):
    with FaultProxy(s3_env["S3_ENDPOINT"]) as proxy:
        for name, value in {**s3_env, "S3_ENDPOINT": proxy.endpoint}.items():
            monkeypatch.setenv(name, value)
        yield proxy


def _record(admin, s3_env, prefix: str, version: int) -> dict:
    key = f"{prefix}/{version}/{bucket.PUSH_RECORD_FILE}"
    return json.loads(admin.object_bytes(s3_env, key))


def test_a_cut_off_rollback_resumes_into_its_own_claim(admin, s3_env, models, proxied, capsys):
    prefix = "resume/m"
    base_path = f"s3://{admin.bucket}/{prefix}"
    admin.publish(s3_env, models[3.0], prefix, run_id="run-1")
    admin.publish(s3_env, models[4.0], prefix, run_id="run-2")
    # The server-side copy of the variables is refused: the claim is written, no marker.
    cut = proxied.add(Rule(DENY, method="PUT", path_contains=f"/{prefix}/3/variables/"))
    failed = admin.run_models(capsys, "rollback", base_path, "--to", "1")
    assert "permission denied" in failed.one_error_line("rollback")
    assert cut.hits >= 1
    assert _record(admin, s3_env, prefix, 3)["status"] == "uploading"
    listing = admin.run_models(capsys, "list", base_path, "--json")
    assert admin.json_of(listing)["versions"][0]["state"] == "uploading"

    proxied.remove(cut)
    resumed = admin.run_models(capsys, "rollback", base_path, "--to", "1")
    assert resumed.code == 0, resumed
    assert "version 3" in resumed.out and "resumed an interrupted rollback" in resumed.out
    assert admin.versions_in(s3_env, prefix) == [1, 2, 3]
    # Server-side copies: the variables were never downloaded, only copied (PUT + copy source).
    requests = [(method, target) for _, method, target, _ in proxied.requests]
    assert not [r for r in requests if r[0] == "GET" and "/variables/variables.data" in r[1]]
    assert [r for r in requests if r[0] == "PUT" and f"{prefix}/3/variables/variables.data" in r[1]]
    record = _record(admin, s3_env, prefix, 3)
    original = _record(admin, s3_env, prefix, 1)
    assert record["status"] == "uploaded" and record["rollback_of"] == 1
    assert record["checksum"] == original["checksum"]
    assert record["idempotency_key"] == f"rollback-of-1/{original['checksum']}"
    assert record["pipeline_run_id"] == "run-1" and record["original_version"] == 1

    # Rolling back to 2 and then to 1 again makes two more versions: each is a new publication.
    assert "version 4" in admin.run_models(capsys, "rollback", base_path, "--to", "2").out
    again = admin.run_models(capsys, "rollback", base_path, "--to", "1")
    assert "version 5" in again.out, again
    assert _record(admin, s3_env, prefix, 5)["original_version"] == 1


def test_a_version_without_a_push_record_is_rolled_back_by_its_computed_checksum(
    admin, s3_env, models, storage_env, capsys
):
    prefix = "foreign/m"
    base_path = f"s3://{admin.bucket}/{prefix}"
    files = admin.model_files(models[3.0])
    marker = files.pop("saved_model.pb")
    admin.put_objects(storage_env, f"{prefix}/1", files)
    admin.put_objects(storage_env, f"{prefix}/1", {"saved_model.pb": marker})
    admin.publish(storage_env, models[4.0], prefix, run_id="run-2")
    run = admin.run_models(capsys, "rollback", base_path, "--to", "1")
    assert run.code == 0 and "version 3" in run.out, run
    expected = bucket.model_checksum(
        str(models[3.0]), {path: len(data) for path, data in admin.model_files(models[3.0]).items()}
    )
    assert _record(admin, storage_env, prefix, 3)["checksum"] == expected
    again = admin.run_models(capsys, "rollback", base_path, "--to", "1")
    assert again.code == 0 and "nothing to do" in again.out, again
    # The server's completeness rule accepts the copy, record and all.
    writer = BucketWriter(base_path, environ=storage_env)
    assert writer.storage.inspect_version("3").verdict.complete


def test_a_local_rollback_copies_through_temporary_names(admin, models, tmp_path, capsys):
    base = tmp_path / "m"
    BucketWriter(str(base)).publish(str(models[3.0]), "m")
    BucketWriter(str(base)).publish(str(models[4.0]), "m")
    run = admin.run_models(capsys, "rollback", str(base), "--to", "1")
    assert run.code == 0 and "version 3" in run.out, run
    copied = {p.relative_to(base / "3").as_posix() for p in (base / "3").rglob("*") if p.is_file()}
    original = {
        p.relative_to(base / "1").as_posix() for p in (base / "1").rglob("*") if p.is_file()
    }
    assert copied == original  # and no temporary file left behind
    assert (base / "3" / "saved_model.pb").read_bytes() == (
        base / "1" / "saved_model.pb"
    ).read_bytes()
    assert "nothing to do" in admin.run_models(capsys, "rollback", str(base), "--to", "1").out
