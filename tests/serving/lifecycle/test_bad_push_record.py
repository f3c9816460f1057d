"""A push record that is no push record (valid JSON but not an object, nested 100k deep, paths
with `..`, sizes that are no byte counts, more than 1 MiB) makes its version broken: it is never
served, and the model keeps polling and serves the next good version (issue 13 review: `[]`
raised AttributeError out of every poll, so no version of the model was picked up again).

Local storage (a real directory), so the only thing under test is the record's handling."""

from __future__ import annotations

import logging
import os
import shutil

import httpx

from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.storage import bucket

POLL_SECONDS = 0.5

BAD_RECORDS = {
    "a list": b"[]",
    "a string": b'"x"',
    "null": b"null",
    "nested 100k deep": b"[" * 100_000 + b"]" * 100_000,
    "files with ..": b'{"files": {"../../etc/passwd": 1}}',
    "an absolute path": b'{"files": {"/etc/passwd": 1}}',
    "a backslash": b'{"files": {"variables\\\\variables.index": 1}}',
    "files not an object": b'{"files": ["saved_model.pb"]}',
    "a negative size": b'{"files": {"saved_model.pb": -1}}',
    "a size that is no integer": b'{"files": {"saved_model.pb": "12"}}',
    "a checksum that is no string": b'{"checksum": 7}',
    "more than 1 MiB": b'{"pad": "' + b"x" * (bucket.MAX_PUSH_RECORD_BYTES + 1) + b'"}',
}


def _publish(model_dir, base, version: int, record: bytes | None) -> None:
    """Writes the version under a temporary name and renames it into place (whole at once)."""
    staging = base / f".staging-{version}"
    shutil.copytree(model_dir, staging)
    if record is not None:
        (staging / "assets.extra").mkdir(exist_ok=True)
        (staging / "assets.extra" / "tfrelay_push.json").write_bytes(record)
    os.rename(staging, base / str(version))


def _predict(url: str) -> float:
    response = httpx.post(f"{url}/v1/models/m:predict", json={"instances": [2.0]}, timeout=10)
    response.raise_for_status()
    return response.json()["predictions"][0]


def _states(url: str) -> dict[int, dict]:
    statuses = httpx.get(f"{url}/v1/models", timeout=5).json()["models"]
    for entry in statuses:
        if entry["name"] == "m":
            return {int(v["version"]): v for v in entry["model_version_status"]}
    return {}


def test_each_bad_record_is_a_broken_version_and_polling_goes_on(models, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    base = tmp_path / "m"
    base.mkdir()
    _publish(models[3.0], base, 1, None)
    options = ServerOptions(
        model_name="m",
        model_base_path=str(base),
        file_system_poll_wait_seconds=POLL_SECONDS,
        max_num_load_retries=0,
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        version = 1
        for shape, record in BAD_RECORDS.items():
            version += 1
            _publish(models[4.0], base, version, record)
            wait_until(
                lambda version=version: (
                    (_states(server.url).get(version) or {}).get("state") == "END"
                ),
                60,
                what=f"version {version} ({shape}) ended",
            )
            entry = _states(server.url)[version]
            assert entry["load_failure"] == "model", (shape, entry)
            assert "tfrelay_push.json" in entry["status"]["error_message"], (shape, entry)
            # Never served: the answer is still version 1's (y = 0.5 * 2 + 2).
            assert _predict(server.url) == 3.0, shape
        # The model still polls: a good version after all of them is picked up and serves.
        good = version + 1
        _publish(models[5.0], base, good, None)
        wait_for_version(server.url, "m", good)
        wait_until(lambda: _predict(server.url) == 5.0, 30, what="the good version answers")
    failures = [r for r in caplog.records if r.getMessage().startswith("Polling model")]
    assert not failures, [r.getMessage() for r in failures]
