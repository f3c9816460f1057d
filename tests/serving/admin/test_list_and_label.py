"""`tfrelay models list` and `tfrelay models label` against two real model server processes.

One base path (moto S3) holds published, broken, uploading and incomplete versions. Replica A
reads its `--model_config_file` from the bucket (re-read every second) and serves versions 1 and
2; replica B reads a local config that serves version 1 only. The listing shows every version
as the servers judge it and what each replica serves; a label edit in the bucket reaches
replica A without a restart; bad edits are refused before anything is written.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from support.servers import ModelServerProcess, wait_for_version

PREFIX = "fleet/m"
CONFIG_KEY = "config/models.config"
POLL_SECONDS = 1.0


def _config(base_path: str, versions: list[int]) -> str:
    listed = " ".join(f"versions: {v}" for v in versions)
    return (
        f'model_config_list {{ config {{ name: "m" base_path: "{base_path}" '
        f'model_platform: "tensorflow" model_version_policy {{ specific {{ {listed} }} }} }} }}\n'
    )


@pytest.fixture(scope="module")
def fleet(admin, s3_env, models, tmp_path_factory):
    """(replica A, replica B) serving s3://models/fleet/m, and the bucket's versions:
    1, 2 published; 3 broken (a push record that is not one); 4 uploading (the writer's claim,
    no marker); 5 incomplete (saved_model.pb without its variables)."""
    base_path = f"s3://{admin.bucket}/{PREFIX}"
    assert admin.publish(s3_env, models[3.0], PREFIX, run_id="run-1") == 1
    assert admin.publish(s3_env, models[4.0], PREFIX, run_id="run-2") == 2
    files = admin.model_files(models[3.0])
    admin.put_objects(s3_env, f"{PREFIX}/3", {**files, "assets.extra/tfrelay_push.json": b"[]"})
    claim = {"model_name": "m", "version": 4, "status": "uploading", "files": {}}
    variables = {k: v for k, v in files.items() if k.startswith("variables/")}
    admin.put_objects(
        s3_env,
        f"{PREFIX}/4",
        {**variables, "assets.extra/tfrelay_push.json": json.dumps(claim).encode()},
    )
    admin.put_objects(s3_env, f"{PREFIX}/5", {"saved_model.pb": files["saved_model.pb"]})
    admin.put_objects(s3_env, "config", {"models.config": _config(base_path, [1, 2]).encode()})

    root = tmp_path_factory.mktemp("fleet")
    local_config = root / "b.config"
    local_config.write_text(_config(base_path, [1]))
    a = ModelServerProcess(
        [
            f"--model_config_file=s3://{admin.bucket}/{CONFIG_KEY}",
            f"--model_config_file_poll_wait_seconds={POLL_SECONDS:g}",
            f"--file_system_poll_wait_seconds={POLL_SECONDS:g}",
        ],
        log_path=root / "a.log",
        env=s3_env,
    )
    b = ModelServerProcess(
        [
            f"--model_config_file={local_config}",
            f"--file_system_poll_wait_seconds={POLL_SECONDS:g}",
        ],
        log_path=root / "b.log",
        env=s3_env,
    )
    with admin.started([a, b]):
        wait_for_version(a.url, "m", 1)
        wait_for_version(a.url, "m", 2)
        wait_for_version(b.url, "m", 1)
        yield a, b


def _endpoint(server: ModelServerProcess) -> str:
    return f"127.0.0.1:{server.rest_port}"


def test_list_shows_every_state_the_lineage_and_what_each_replica_serves(
    admin, fleet, storage_env, capsys
):
    a, b = fleet
    base_path = f"s3://{admin.bucket}/{PREFIX}"
    args = ["list", base_path, "--endpoint", _endpoint(a), "--endpoint", _endpoint(b)]
    run = admin.run_models(capsys, *args, "--json")
    assert run.code == 0, run
    document = json.loads(run.out)
    by_version = {v["version"]: v for v in document["versions"]}
    assert {n: v["state"] for n, v in by_version.items()} == {
        5: "incomplete",
        4: "uploading",
        3: "broken",
        2: "published",
        1: "published",
    }
    assert "variables" in by_version[5]["detail"]
    assert "not a JSON object" in by_version[3]["detail"]
    first = by_version[1]
    assert first["run_id"] == "run-1" and first["metrics"] == {"accuracy": 0.9}
    assert first["pushed_at"] and first["rollback_of"] is None
    assert first["size_bytes"] > 10_000 and first["files"] == 5
    assert document["high_water_mark"] == 2
    served = {e["endpoint"]: e["serving"] for e in document["endpoints"]}
    assert served == {_endpoint(a): [2, 1], _endpoint(b): [1]}

    table = admin.run_models(capsys, *args)
    assert table.code == 0, table
    lines = table.out.splitlines()
    assert lines[0].split()[:3] == ["VERSION", "STATE", "SIZE"]
    row2 = next(line for line in lines if line.startswith("2 "))
    assert "published" in row2 and "run run-2" in row2 and "AVAILABLE" in row2
    assert row2.rstrip().endswith("-")  # replica B does not serve version 2
    assert f"{_endpoint(b)} serves m 1" in table.out


def _predict(url: str, label: str) -> float | None:
    response = httpx.post(
        f"{url}/v1/models/m/labels/{label}:predict", json={"instances": [2.0]}, timeout=5
    )
    return response.json()["predictions"][0] if response.status_code == 200 else None


def test_label_in_the_bucket_reaches_the_server_without_a_restart(
    admin, fleet, storage_env, capsys
):
    a, _ = fleet
    config_url = f"s3://{admin.bucket}/{CONFIG_KEY}"
    run = admin.run_models(capsys, "label", config_url, "m", "stable=1", "canary=2")
    assert run.code == 0, run
    written = time.monotonic()
    assert "labelled: m" in run.out and "canary=2, stable=1" in run.out
    admin.wait_for(lambda: _predict(a.url, "canary") == 4.0, 20, "canary to reach version 2")
    with capsys.disabled():
        print(f"\nlabel canary=2 served {time.monotonic() - written:.2f} s after the write")
    assert _predict(a.url, "stable") == 3.0
    text = admin.object_bytes(storage_env, CONFIG_KEY).decode()
    assert 'key: "canary"' in text and "value: 2" in text and "specific" in text

    again = admin.run_models(capsys, "label", config_url, "m", "stable=1", "canary=2")
    assert again.code == 0 and "nothing to do" in again.out, again


@pytest.mark.parametrize(
    ("assignment", "says"),
    [
        ("bad-label=1", "must match [a-zA-Z0-9_]+"),
        ("canary=3", "canary=3: version 3 is not published"),  # broken
        ("canary=5", "canary=5: version 5 is not published"),  # incomplete
        ("canary=9", "canary=9: version 9 is not published"),  # missing
    ],
)
def test_an_invalid_label_or_an_unservable_version_is_refused_before_writing(
    admin, fleet, storage_env, capsys, assignment, says
):
    config_url = f"s3://{admin.bucket}/{CONFIG_KEY}"
    before = admin.object_bytes(storage_env, CONFIG_KEY)
    run = admin.run_models(capsys, "label", config_url, "m", assignment)
    line = run.one_error_line("label")
    assert says in line, line
    assert admin.object_bytes(storage_env, CONFIG_KEY) == before
