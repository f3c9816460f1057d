"""The closed loop on a real S3 endpoint: the penguin pipeline (LocalDagRunner, Beam
DirectRunner) trains, validates against the bucket's serving version, pushes, and the deployer's
model server, polling the bucket, serves each new version without restarting."""

from __future__ import annotations

import json
import os
import tempfile

import boto3
import httpx
import pytest

from support.servers import free_port, moto_s3
from tfrelay.components.deployer.local_server import stop_local_server
from tfrelay.pipelines.datasets import penguins
from tfrelay.pipelines.pipeline import PipelineConfig
from tfrelay.pipelines.runners.local import run_local
from tfrelay.serving.storage.model_storage import ModelStorage
from tfrelay.serving.warmup import replay

pytestmark = pytest.mark.slow

BUCKET = "tfrelay-e2e"
ADELIE = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181,
    "body_mass_g": 3750,
    "island": "Torgersen",
    "sex": "male",
}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with moto_s3(tmp_path_factory.mktemp("moto")) as env:
        boto3.client(
            "s3",
            endpoint_url=f"http://{env['S3_ENDPOINT']}",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        ).create_bucket(Bucket=BUCKET)
        yield env


@pytest.fixture(scope="module")
def loop(s3, tmp_path_factory):
    """A workspace whose bucket is on S3; the deployer's server is stopped at the end."""
    work = tmp_path_factory.mktemp("closed-loop")
    saved = {k: os.environ.get(k) for k in s3}
    os.environ.update(s3)  # the pipeline's components and the server read TF Serving's variables
    config = PipelineConfig(
        pipeline_root=str(work / "pipeline"),
        data_root=str(work / "data"),
        base_path=f"s3://{BUCKET}/models/penguins",
        endpoint=f"http://127.0.0.1:{free_port()}",
        poll_seconds=1,
        server_state_dir=str(work / "servers"),
        epochs=10,
    )
    penguins.write_initial_data(config.data_root)
    try:
        yield config
    finally:
        stop_local_server(config.endpoint, config.server_state_dir)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _server_pid(config: PipelineConfig) -> int:
    port = config.endpoint.rsplit(":", 1)[1]
    with open(os.path.join(config.server_state_dir, f"server-{port}.json")) as f:
        return json.load(f)["pid"]


def _versions(config: PipelineConfig) -> list[int]:
    return sorted(ModelStorage(config.base_path).list_versions())


def test_two_runs_serve_n_then_n_plus_1_from_s3_without_a_restart(loop):
    first = run_local(loop)
    assert first.blessed and first.pushed, first
    assert first.serving_version == first.version == 1
    pid = _server_pid(loop)

    url = f"{loop.endpoint}/v1/models/penguins"
    prediction = httpx.post(f"{url}:predict", json={"instances": [ADELIE]}).json()["predictions"][0]
    assert prediction["classes"] == "Adelie"
    classified = httpx.post(
        f"{url}:classify", json={"signature_name": "classify", "examples": [ADELIE]}
    ).json()["results"][0]
    assert max(classified, key=lambda c: c[1])[0] == "Adelie"
    status = httpx.get(url).json()["model_version_status"]
    assert status[0]["version"] == "1" and status[0]["state"] == "AVAILABLE"

    penguins.write_new_data(loop.data_root)  # what a data scientist adds before a retrain
    second = run_local(loop)
    assert second.blessed and second.pushed, second
    assert second.version == 2 and second.serving_version == 2
    assert _server_pid(loop) == pid  # the same server, never restarted
    assert httpx.get(f"{url}/versions/2").json()["model_version_status"][0]["state"] == "AVAILABLE"
    assert (
        httpx.post(f"{url}:predict", json={"instances": [ADELIE]}).json()["predictions"][0][
            "classes"
        ]
        == "Adelie"
    )
    assert _versions(loop) == [1, 2]

    # The pushed version, as stored in the bucket, replays its warmup requests.
    storage = ModelStorage(loop.base_path)
    verdict, files = storage.check_complete("2")
    assert verdict.complete
    record = json.loads(storage.read_file("2", "assets.extra/tfrelay_push.json"))
    assert record["version"] == 2 and record["metrics"]["sparse_categorical_accuracy"] > 0.8
    from tfrelay.serving.servables.saved_model import SavedModelServable

    with tempfile.TemporaryDirectory() as local:
        servable = SavedModelServable(
            "penguins", 2, storage.copy_version("2", os.path.join(local, "2"), files)
        )
        servable.load()
        try:
            assert replay(servable)[0] == 2
        finally:
            servable.unload()


def test_a_candidate_failing_its_threshold_is_not_pushed_and_the_log_says_why(loop, caplog):
    versions_before = _versions(loop)
    strict = PipelineConfig(**{**loop.__dict__, "lower_bound": 1.01})
    summary = run_local(strict)
    assert not summary.blessed and not summary.pushed
    assert any("required >= 1.0100" in check for check in summary.failed_checks)
    assert "not blessed" in summary.push_reason.lower()
    assert _versions(loop) == versions_before
    assert summary.serving_version == versions_before[-1]  # the deployer reports what still serves
    assert any("required >= 1.0100" in record.getMessage() for record in caplog.records)
