"""tfrelay's Kubeflow step entrypoint stages `s3://` artifacts through local directories (the
image's TensorFlow cannot open `s3://`) and gives KFP back the `s3://` URIs; against moto_server.
The whole path, TFX executors included, runs in tests/kubeflow."""

from __future__ import annotations

import json
import os

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from support.servers import moto_s3, s3_client
from tfrelay.pipelines.runners import kubeflow_entrypoint
from tfrelay.pipelines.runners.kubeflow_entrypoint import Staging, is_staged

BUCKET = "tfrelay-entrypoint"


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    with moto_s3(tmp_path_factory.mktemp("moto")) as env:
        s3_client(env).create_bucket(Bucket=BUCKET)
        yield env


@pytest.fixture
def s3(s3_env, monkeypatch):
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    return s3_client(s3_env)


def _executor_input(**uris: str) -> pipeline_spec_pb2.ExecutorInput:
    executor_input = pipeline_spec_pb2.ExecutorInput()
    for key, uri in uris.items():
        side = executor_input.outputs if key.startswith("out_") else executor_input.inputs
        side.artifacts[key].artifacts.add(name="7", uri=uri)
    return executor_input


def test_only_schemes_tensorflow_cannot_open_are_staged():
    assert is_staged("s3://bucket/key")
    assert is_staged("S3://bucket/key")
    assert not is_staged("gs://bucket/key")  # tensorflow-io-gcs-filesystem opens these
    assert not is_staged("/local/path")
    assert not is_staged("relative/path")


def test_inputs_are_downloaded_and_outputs_point_at_local_directories(s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="root/Gen/1/examples/Split-train/data.gz", Body=b"train")
    s3.put_object(Bucket=BUCKET, Key="root/Gen/1/examples/Split-eval/data.gz", Body=b"eval")
    s3.put_object(Bucket=BUCKET, Key="data/penguins.csv", Body=b"a,b\n1,2\n")
    executor_input = _executor_input(
        examples=f"s3://{BUCKET}/root/Gen/1/examples",
        schema="gs://elsewhere/schema",
        out_model=f"s3://{BUCKET}/root/Trainer/2/out_model",
    )
    executor_input.inputs.parameter_values["input_base"].string_value = f"s3://{BUCKET}/data"
    staging = Staging(str(tmp_path))
    staging.stage(executor_input)

    examples_artifact = executor_input.inputs.artifacts["examples"].artifacts[0]
    examples = examples_artifact.uri
    assert examples.startswith(str(tmp_path))
    assert examples_artifact.metadata["tfrelay_remote_uri"] == f"s3://{BUCKET}/root/Gen/1/examples"
    with open(f"{examples}/Split-train/data.gz", "rb") as f:
        assert f.read() == b"train"
    assert executor_input.inputs.artifacts["schema"].artifacts[0].uri == "gs://elsewhere/schema"
    input_base = executor_input.inputs.parameter_values["input_base"].string_value
    with open(f"{input_base}/penguins.csv") as f:
        assert f.read() == "a,b\n1,2\n"
    model = executor_input.outputs.artifacts["out_model"].artifacts[0].uri
    assert os.path.isdir(model)  # as writable as a prefix in the bucket
    assert model.startswith(str(tmp_path)) and staging.outputs == {
        model: f"s3://{BUCKET}/root/Trainer/2/out_model"
    }


def test_an_empty_remote_artifact_becomes_an_empty_local_directory(s3, tmp_path):
    executor_input = _executor_input(run=f"s3://{BUCKET}/root/Trainer/2/model_run")
    Staging(str(tmp_path)).stage(executor_input)
    local = tmp_path / "inputs" / "run" / "0"
    assert local.is_dir() and not any(local.iterdir())


def test_publish_uploads_outputs_and_gives_kfp_the_s3_uris_back(s3, tmp_path):
    remote = f"s3://{BUCKET}/root/Validator/3/out_blessing"
    executor_input = _executor_input(
        model=f"s3://{BUCKET}/root/Trainer/2/model", out_blessing=remote
    )
    s3.put_object(Bucket=BUCKET, Key="root/Trainer/2/model/saved_model.pb", Body=b"pb")
    staging = Staging(str(tmp_path / "scratch"))
    staging.stage(executor_input)
    local_model = executor_input.inputs.artifacts["model"].artifacts[0].uri
    local_blessing = executor_input.outputs.artifacts["out_blessing"].artifacts[0].uri
    # What TFX's entrypoint leaves behind: the files, and an ExecutorOutput naming local paths.
    with open(f"{local_blessing}/BLESSED", "w") as f:
        f.write("")
    executor_output = pipeline_spec_pb2.ExecutorOutput()
    artifact = executor_output.artifacts["out_blessing"].artifacts.add(uri=local_blessing)
    json_format.ParseDict(
        {"current_model": local_model, "reason": f"{local_model}/Format-Serving ok", "blessed": 1},
        artifact.metadata,
    )
    output_file = tmp_path / "output_metadata.json"
    output_file.write_text(json_format.MessageToJson(executor_output))

    staging.publish(str(output_file))

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="root/Validator/3/out_blessing/")
    assert [o["Key"] for o in listed["Contents"]] == ["root/Validator/3/out_blessing/BLESSED"]
    published = json.loads(output_file.read_text())["artifacts"]["out_blessing"]["artifacts"][0]
    assert published["uri"] == remote
    assert published["metadata"] == {
        "current_model": f"s3://{BUCKET}/root/Trainer/2/model",
        "reason": f"s3://{BUCKET}/root/Trainer/2/model/Format-Serving ok",
        "blessed": 1.0,
    }


def test_tfrelays_artifact_types_resolve_from_their_schema_titles():
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.utils import import_utils

    from tfrelay.components.deployer.artifacts import ServingEndpoint

    kubeflow_entrypoint.register_artifact_types()
    class_path = compiler_utils.TITLE_TO_CLASS_PATH[ServingEndpoint.TYPE_NAME]
    assert import_utils.import_class_by_path(class_path) is ServingEndpoint
    for title, path in kubeflow_entrypoint.ARTIFACT_CLASS_PATHS.items():
        assert import_utils.import_class_by_path(path).TYPE_NAME == title


def test_the_executor_input_argument_is_required():
    with pytest.raises(ValueError, match="--json_serialized_invocation_args is missing"):
        kubeflow_entrypoint.main(["--executor_class_path", "x.Executor"])
