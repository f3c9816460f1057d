"""The BucketPusher against a real S3 protocol endpoint (moto_server on loopback), configured the
way production configures it: through the environment the executor runs in."""

from __future__ import annotations

import json
import os
import pathlib

import httpx
import pytest

from support.servers import InProcessModelServer, wait_for_version
from tfrelay.components import properties
from tfrelay.components.pusher import push
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.model_storage import ModelStorage

MODEL_NAME = "penguins"


def _objects(s3, s3_bucket: str, prefix: str) -> dict[str, int]:
    listing = s3.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)
    return {item["Key"][len(prefix) :]: item["Size"] for item in listing.get("Contents", [])}


def test_push_to_s3_publishes_a_complete_version_the_model_server_serves(
    s3_env, s3, s3_bucket, monkeypatch, make_model, make_blessing, run_pusher
):
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    base = f"s3://{s3_bucket}/serve/{MODEL_NAME}"

    pushed = run_pusher(make_model(), base, make_blessing(True, metrics={"accuracy": 0.95}))

    assert pushed.get_int_custom_property(properties.PUSHED) == 1
    assert pushed.get_string_custom_property(properties.PUSHED_VERSION) == "1"
    assert pushed.get_string_custom_property(properties.PUSHED_DESTINATION) == f"{base}/1"
    objects = _objects(s3, s3_bucket, f"serve/{MODEL_NAME}/1/")
    record = json.loads(
        s3.get_object(Bucket=s3_bucket, Key=f"serve/{MODEL_NAME}/1/{bucket.PUSH_RECORD_FILE}")[
            "Body"
        ].read()
    )
    del objects[bucket.PUSH_RECORD_FILE]
    assert objects == record["files"]
    assert bucket.SAVED_MODEL_PB in objects
    assert record["metrics"] == {"accuracy": 0.95}
    verdict, _ = ModelStorage(base, environ=s3_env).check_complete("1")
    assert verdict.complete, verdict.describe()

    options = ServerOptions(
        model_name=MODEL_NAME,
        model_base_path=base,
        file_system_poll_wait_seconds=0.2,
        environ={**os.environ, **s3_env},
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, MODEL_NAME, 1)
        response = httpx.post(
            f"{server.url}/v1/models/{MODEL_NAME}:predict",
            json={"instances": [1.0]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [2.5]}


def test_push_to_s3_twice_with_retention_keeps_one_complete_version(
    s3_env, s3, s3_bucket, monkeypatch, make_model, run_pusher
):
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    base = f"s3://{s3_bucket}/retain/{MODEL_NAME}"

    run_pusher(make_model("half_plus_two"), base, run_id="run-1", keep_last=1)
    second = run_pusher(make_model("half_plus_three"), base, run_id="run-2", keep_last=1)
    again = run_pusher(make_model("half_plus_three"), base, run_id="run-3", keep_last=1)

    assert second.get_string_custom_property(properties.PUSHED_VERSION) == "2"
    assert again.get_string_custom_property(properties.PUSH_REASON).startswith("already pushed")
    # Version 2 and the pusher's high-water mark (which remembers that 1 and 2 were used).
    assert {key.split("/")[0] for key in _objects(s3, s3_bucket, f"retain/{MODEL_NAME}/")} == {
        "2",
        ".tfrelay_high_water_mark",
    }
    assert ModelStorage(base, environ=s3_env).check_complete("2")[0].complete


def test_push_from_a_model_in_s3_downloads_it_first(s3_env, s3, s3_bucket, make_model):
    model = make_model()
    source = pathlib.Path(model.uri) / "Format-Serving"
    for path in source.rglob("*"):
        if path.is_file():
            key = f"pipeline-root/Trainer/model/7/Format-Serving/{path.relative_to(source)}"
            s3.upload_file(str(path), s3_bucket, key)
    base = f"s3://{s3_bucket}/from-s3/{MODEL_NAME}"

    result = push.push_model(
        push.PushRequest(
            model_dir=f"s3://{s3_bucket}/pipeline-root/Trainer/model/7/Format-Serving",
            base_path=base,
            model_name=MODEL_NAME,
        ),
        environ=s3_env,
    )

    local_files = push.list_model_files(str(source))
    assert result.record["files"] == local_files
    assert result.record["checksum"] == push.model_checksum(str(source), local_files)
    assert ModelStorage(base, environ=s3_env).check_complete("1")[0].complete


def test_push_to_s3_without_credentials_says_which_variables_to_set(
    s3_env, s3, s3_bucket, monkeypatch, make_model, run_pusher, tmp_path
):
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # Nothing else in boto's chain may supply keys: no files, no instance metadata.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    base = f"s3://{s3_bucket}/no-credentials/{MODEL_NAME}"

    with pytest.raises(push.PushError) as raised:
        run_pusher(make_model(), base)

    message = str(raised.value)
    assert "AWS_ACCESS_KEY_ID" in message
    assert "S3_ENDPOINT" in message
    assert _objects(s3, s3_bucket, "no-credentials/") == {}
