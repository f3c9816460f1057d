"""`tfrelay push SAVED_MODEL_DIR BASE_PATH` (issue 13): the real command, against a local
directory and an S3 endpoint; progress on stderr, the result on stdout, errors that say what to
do, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from tfrelay.serving.storage import bucket

TFRELAY = str(pathlib.Path(sys.executable).parent / "tfrelay")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TFRELAY, "push", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_push_command_publishes_to_a_local_dir_then_is_idempotent(saved_models, tmp_path):
    base = tmp_path / "models" / "half_plus_two"
    first = _run(str(saved_models["half_plus_two"]), str(base))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("pushed: half_plus_two version 1 published at ")
    assert "tfrelay push: uploaded 1/" in first.stderr  # progress lines
    assert "saved_model.pb" in first.stderr.splitlines()[-2]  # the marker goes last
    record = json.loads((base / "1" / bucket.PUSH_RECORD_FILE).read_text())
    assert record["selection_reason"] == "pushed by hand with `tfrelay push`"

    again = _run(str(saved_models["half_plus_two"]), str(base), "--quiet")
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout.startswith("already pushed: version 1 ")

    other = _run(str(saved_models["half_plus_three"]), str(base), "--model_name", "hp")
    assert other.returncode == 0 and "hp version 2" in other.stdout


def test_push_command_publishes_to_s3_from_the_environment(saved_models, s3_env, s3, s3_bucket):
    base = f"s3://{s3_bucket}/cli/half_plus_two"
    result = _run(str(saved_models["half_plus_two"]), base, env=s3_env)
    assert result.returncode == 0, result.stderr
    assert f"published at {base}/1" in result.stdout
    keys = {
        item["Key"]
        for item in s3.list_objects_v2(Bucket=s3_bucket, Prefix="cli/half_plus_two/")["Contents"]
    }
    assert "cli/half_plus_two/1/saved_model.pb" in keys
    assert f"cli/half_plus_two/{bucket.HIGH_WATER_MARK_FILE}" in keys


def test_push_command_errors_say_what_to_do(tmp_path):
    missing = _run(str(tmp_path / "nope"), str(tmp_path / "m"))
    assert missing.returncode == 1
    assert "tfrelay push: failed:" in missing.stderr and "does not exist" in missing.stderr

    version_dir = _run(str(tmp_path), str(tmp_path / "m" / "3"))
    assert version_dir.returncode == 2
    assert "point it at the directory that holds the versions" in version_dir.stderr

    usage = _run()
    assert usage.returncode == 2 and "SAVED_MODEL_DIR BASE_PATH" in usage.stderr

    described = _run("--help")
    assert described.returncode == 0 and "AWS_ACCESS_KEY_ID" in described.stdout
