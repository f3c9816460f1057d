"""Compiling for Kubeflow Pipelines 2.x: a PipelineSpec 2.1 YAML that self-hosted KFP accepts."""

from __future__ import annotations

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tfrelay.pipelines.cli import main as pipeline_main

IMAGE = "registry.example.com/tfrelay-pipeline:1.2.3"
COMPONENTS = {
    "CsvExampleGen",
    "StatisticsGen",
    "SchemaGen",
    "Trainer",
    "Validator",
    "BucketPusher",
    "ServingDeployer",
}


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    path = tmp_path_factory.mktemp("kfp") / "pipeline.yaml"
    code = pipeline_main(
        [
            "compile",
            f"--output={path}",
            f"--image={IMAGE}",
            "--pipeline-root=gs://tfrelay-ci/pipeline-root",
            "--data-root=gs://tfrelay-ci/data",
            "--base-path=gs://tfrelay-ci/models/penguins",
            "--target=kubernetes",
            '--set=kubernetes_config={"namespace": "serving", "image": "registry.example.com/tfrelay-server:1.2.3"}',
            "--epochs=25",
        ]
    )
    assert code == 0
    return path


def _spec(path) -> pipeline_spec_pb2.PipelineSpec:
    with open(path) as f:
        return json_format.ParseDict(
            yaml.safe_load(f), pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False
        )


def test_package_is_a_pipeline_spec_2_1_running_the_configured_image(package):
    spec = _spec(package)
    assert spec.schema_version == "2.1.0"
    assert spec.pipeline_info.name == "penguins"
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    assert {name.removesuffix("_executor") for name in executors} == COMPONENTS
    assert {e["container"]["image"] for e in executors.values()} == {IMAGE}
    assert any(
        "tfrelay.components.trainer.executor.Executor" in " ".join(e["container"]["args"])
        for e in executors.values()
    )


def test_every_component_is_there_with_its_parameters(package):
    tasks = _spec(package).root.dag.tasks
    assert set(tasks) == COMPONENTS

    def parameter(task: str, name: str):
        value = tasks[task].inputs.parameters[name].runtime_value.constant
        return json_format.MessageToDict(value)

    assert parameter("Trainer", "label_key") == "species"
    assert parameter("Trainer", "epochs") == 25
    assert parameter("Validator", "baseline_base_path") == "gs://tfrelay-ci/models/penguins"
    assert parameter("BucketPusher", "base_path") == "gs://tfrelay-ci/models/penguins"
    assert parameter("ServingDeployer", "target") == "kubernetes"
    assert "tfrelay-server:1.2.3" in parameter("ServingDeployer", "kubernetes_config")
    assert parameter("CsvExampleGen", "input_base") == "gs://tfrelay-ci/data"


def test_kfps_own_loader_accepts_the_package(package):
    from kfp import components

    loaded = components.load_component_from_file(str(package))
    assert loaded.name == "penguins"


def test_only_yaml_packages_are_written(tmp_path):
    from tfrelay.pipelines.pipeline import PipelineConfig
    from tfrelay.pipelines.runners.kubeflow import compile_pipeline

    with pytest.raises(ValueError, match="KFP uploads .yaml pipeline packages"):
        compile_pipeline(PipelineConfig(), str(tmp_path / "pipeline.json"), IMAGE)


def test_a_pipeline_with_the_optimizer_compiles_with_its_techniques(tmp_path):
    path = tmp_path / "optimized.yaml"
    assert (
        pipeline_main(
            [
                "compile",
                f"--output={path}",
                f"--image={IMAGE}",
                "--pipeline-root=gs://tfrelay-ci/pipeline-root",
                "--base-path=gs://tfrelay-ci/models/penguins",
                '--set=optimize=[{"technique": "prune", "target_sparsity": 0.5, "epochs": 2}, {"technique": "quantize", "mode": "int8"}]',
                "--set=prefer_tflite=true",
            ]
        )
        == 0
    )
    tasks = _spec(path).root.dag.tasks
    assert "Optimizer" in tasks
    techniques = json_format.MessageToDict(
        tasks["Optimizer"].inputs.parameters["techniques"].runtime_value.constant
    )
    assert '"quantize"' in techniques and '"int8"' in techniques


def test_every_step_runs_tfrelays_entrypoint_with_the_arguments_tfx_compiled(package):
    executors = json_format.MessageToDict(_spec(package).deployment_spec)["executors"]
    for executor in executors.values():
        container = executor["container"]
        # tfrelay's entrypoint stages s3:// artifacts, then runs TFX's own on the same args.
        assert container["command"] == [
            "python",
            "-m",
            "tfrelay.pipelines.runners.kubeflow_entrypoint",
        ]
        args = container["args"]
        assert args[args.index("--json_serialized_invocation_args") + 1] == "{{$}}"
    # Only Vertex AI runs the ExampleGen driver (self-hosted KFP has no code for preCacheCheck):
    # it is left as TFX wrote it.
    driver = executors["CsvExampleGen_executor"]["container"]["lifecycle"]["preCacheCheck"]
    assert driver["command"][-1] == "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"


def test_beam_steps_are_told_the_image_has_tfx_so_they_build_no_tfx_sdist(package, tmp_path):
    executors = json_format.MessageToDict(_spec(package).deployment_spec)["executors"]
    for executor in executors.values():
        assert f"--sdk_container_image={IMAGE}" in executor["container"]["args"]
    own = tmp_path / "own.yaml"
    assert (
        pipeline_main(
            [
                "compile",
                f"--output={own}",
                f"--image={IMAGE}",
                "--beam-arg=--direct_running_mode=in_memory",
                "--beam-arg=--setup_file=/opt/tfrelay/setup.py",
            ]
        )
        == 0
    )
    for executor in json_format.MessageToDict(_spec(own).deployment_spec)["executors"].values():
        args = executor["container"]["args"]
        assert "--setup_file=/opt/tfrelay/setup.py" in args
        assert not any(a.startswith("--sdk_container_image") for a in args)


def test_a_step_secret_gives_every_step_the_bucket_credentials_by_kfps_platform_spec(tmp_path):
    from kfp.client.client import _extract_pipeline_yaml

    path = tmp_path / "with-secret.yaml"
    assert (
        pipeline_main(
            [
                "compile",
                f"--output={path}",
                f"--image={IMAGE}",
                "--pipeline-root=s3://tfrelay-ci/pipeline-root",
                "--set=step_secret=bucket-credentials",
                '--set=step_secret_keys=["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_ENDPOINT"]',
            ]
        )
        == 0
    )
    # kfp's own client reads the package as the PipelineSpec and a PlatformSpec.
    document = _extract_pipeline_yaml(str(path))
    executors = json_format.MessageToDict(document.platform_spec)["platforms"]["kubernetes"][
        "deploymentSpec"
    ]["executors"]
    assert set(executors) == {f"{name}_executor" for name in COMPONENTS}
    for config in executors.values():
        (secret_as_env,) = config["secretAsEnv"]
        assert secret_as_env["secretName"] == "bucket-credentials"
        assert [k["envVar"] for k in secret_as_env["keyToEnv"]] == [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "S3_ENDPOINT",
        ]
    assert document.pipeline_spec.pipeline_info.name == "penguins"
