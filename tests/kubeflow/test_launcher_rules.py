"""The harness's KFP rules on their own (fast): placeholders, parameter formatting, output URIs,
metadata round trips through "ML Metadata", dependency order, and what it refuses."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2
from kubeflow.launcher import (
    Launcher,
    RecordedArtifact,
    TaskFailed,
    Unsupported,
    format_parameter,
    generate_output_uri,
    local_path_for_uri,
    record_artifact,
    topological_order,
)


def _value(python: object) -> struct_pb2.Value:
    value = struct_pb2.Value()
    json_format.ParseDict(python, value)
    return value


@pytest.mark.parametrize(
    ("python", "text"),
    [
        ("s3://b/k", "s3://b/k"),
        (3.0, "3"),  # Go's FormatFloat(v, 'f', -1, 64): no ".0"
        (0.01, "0.01"),
        (1e16, "10000000000000000"),  # never an exponent
        (1.5e-7, "0.00000015"),
        (True, "true"),
        ([1, "a", 0.5], '[1,"a",0.5]'),
        ({"k": "v"}, '{"k":"v"}'),
    ],
)
def test_parameters_are_substituted_as_kfps_launcher_formats_them(python, text):
    assert format_parameter(_value(python)) == text


def test_output_uris_and_local_paths_follow_kfp():
    run_root = generate_output_uri("s3://bucket/root/", "penguins", "run-1")
    assert run_root == "s3://bucket/root/penguins/run-1"
    assert (
        generate_output_uri(run_root, "Trainer", "u-1")
        == "s3://bucket/root/penguins/run-1/Trainer/u-1"
    )
    assert local_path_for_uri("s3://bucket/k") == "/s3/bucket/k"
    assert local_path_for_uri("gs://bucket/k") == "/gcs/bucket/k"
    assert local_path_for_uri("minio://bucket/k") == "/minio/bucket/k"
    assert local_path_for_uri("/local/k") is None


def test_metadata_comes_back_as_mlmd_returns_it():
    artifact = pipeline_spec_pb2.RuntimeArtifact(uri="s3://b/k")
    artifact.type.instance_schema = "title: tfx.ModelBlessing\ntype: object\n"
    json_format.ParseDict(
        {"blessed": 1, "flag": True, "name": "x", "splits": ["a"], "nested": {"k": 1}},
        artifact.metadata,
    )
    recorded = record_artifact({}, "blessing", artifact)
    runtime = recorded.to_runtime_artifact()
    assert runtime.name == "1" and runtime.uri == "s3://b/k"
    assert runtime.type.instance_schema == artifact.type.instance_schema
    assert recorded.metadata == {
        "blessed": 1.0,
        "flag": 1.0,  # a bool is stored as an int, and read back as a number
        "name": "x",
        "splits": {"list": ["a"]},  # lists and structs come back wrapped
        "nested": {"struct": {"k": 1.0}},
        "display_name": "blessing",
        "store_session_info": json.dumps({"Provider": "s3", "Params": {"fromEnv": "true"}}),
    }


def test_tasks_run_after_what_they_depend_on_and_cycles_are_refused():
    spec = pipeline_spec_pb2.PipelineSpec()
    tasks = spec.root.dag.tasks
    tasks["c"].dependent_tasks.append("b")
    tasks["b"].inputs.artifacts["x"].task_output_artifact.producer_task = "a"
    tasks["a"].component_ref.name = "a"
    assert topological_order(tasks) == ["a", "b", "c"]
    tasks["a"].dependent_tasks.append("c")
    with pytest.raises(Unsupported, match="dependency cycle"):
        topological_order(tasks)


def _package(tmp_path: pathlib.Path, args: list[str]) -> pathlib.Path:
    spec = {
        "pipelineInfo": {"name": "p"},
        "schemaVersion": "2.1.0",
        "sdkVersion": "test",
        "components": {
            "comp-a": {
                "executorLabel": "exec-a",
                "inputDefinitions": {
                    "parameters": {
                        "n": {"parameterType": "NUMBER_INTEGER"},
                        "d": {"parameterType": "STRING", "defaultValue": "dflt"},
                    }
                },
                "outputDefinitions": {
                    "artifacts": {"out": {"artifactType": {"schemaTitle": "system.Artifact"}}}
                },
            }
        },
        "deploymentSpec": {
            "executors": {
                "exec-a": {"container": {"image": "i", "command": ["echo"], "args": args}}
            }
        },
        "root": {
            "dag": {
                "tasks": {
                    "a": {
                        "componentRef": {"name": "comp-a"},
                        "taskInfo": {"name": "a"},
                        "inputs": {"parameters": {"n": {"runtimeValue": {"constant": 2.0}}}},
                    }
                }
            }
        },
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_placeholders_and_defaults_are_filled_as_the_launcher_does(tmp_path):
    args = [
        "{{$}}",
        "--n={{$.inputs.parameters['n']}}",
        "--d={{$.inputs.parameters['d']}}",
        "--out={{$.outputs.artifacts['out'].uri}}",
        "--out-path={{$.outputs.artifacts['out'].path}}",
    ]
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x\nENV A=1 B=2\n")
    launcher = Launcher(
        _package(tmp_path, args),
        "s3://bucket/root",
        tmp_path / "work",
        pathlib.Path("/usr/bin"),
        dockerfile,
        {},
        s3_client=None,  # the task writes no output, so nothing is uploaded
    )
    (run,) = launcher.run("r").values()
    pod = tmp_path / "work" / "r" / "a-pod"
    command = run.command
    assert command[0] == "echo"
    given = json.loads(command[1])
    assert given == run.executor_input
    assert given["inputs"]["parameterValues"] == {"n": 2, "d": "dflt"}
    (out,) = given["outputs"]["artifacts"]["out"]["artifacts"]
    assert out["name"] == "out" and out["type"] == {"schemaTitle": "system.Artifact"}
    task_root = out["uri"].removesuffix("/out")
    assert task_root.startswith("s3://bucket/root/p/r/a/")  # <root>/<pipeline>/<run>/<task>/<uuid>
    local_root = f"{pod}/s3/{task_root.removeprefix('s3://')}"
    assert given["outputs"]["outputFile"] == f"{local_root}/output_metadata.json"
    assert command[2:] == [
        "--n=2",
        "--d=dflt",
        f"--out={out['uri']}",
        f"--out-path={local_root}/out",
    ]
    assert run.log.read_text().startswith("{")  # echo ran, in the pod
    assert run.outputs["out"].uri == out["uri"]  # recorded though the task wrote nothing
    assert launcher.image_env == {"A": "1", "B": "2"}


def test_conditions_are_refused_rather_than_guessed(tmp_path):
    path = _package(tmp_path, ["{{$}}"])
    spec = yaml.safe_load(path.read_text())
    spec["root"]["dag"]["tasks"]["a"]["triggerPolicy"] = {"condition": "1 == 1"}
    path.write_text(yaml.safe_dump(spec))
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x\n")
    launcher = Launcher(
        path, "s3://b/r", tmp_path / "w", pathlib.Path("/usr/bin"), dockerfile, {}, None
    )
    with pytest.raises(Unsupported, match="conditions and loops"):
        launcher.run("r")


def test_a_recorded_artifact_keeps_a_schema_title_as_kfp_does():
    artifact = pipeline_spec_pb2.RuntimeArtifact(uri="s3://b/k")
    artifact.type.schema_title = "system.Model"
    mlmd: dict[int, RecordedArtifact] = {}
    recorded = record_artifact(mlmd, "model", artifact)
    assert mlmd == {1: recorded}
    assert recorded.schema == "title: system.Model"


def test_a_platform_specs_secret_becomes_the_pods_environment_and_a_missing_key_stops_it(tmp_path):
    path = _package(tmp_path, ["{{$}}"])
    spec = yaml.safe_load(path.read_text())
    platform = {
        "platforms": {
            "kubernetes": {
                "deploymentSpec": {
                    "executors": {
                        "exec-a": {
                            "secretAsEnv": [
                                {
                                    "secretName": "creds",
                                    "keyToEnv": [{"secretKey": "KEY", "envVar": "AWS_KEY"}],
                                }
                            ]
                        }
                    }
                }
            }
        }
    }
    path.write_text(yaml.safe_dump_all([spec, platform]))
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x\n")

    def launcher(secrets):
        return Launcher(
            path, "s3://b/r", tmp_path / "w", pathlib.Path("/usr/bin"), dockerfile, {}, None,
            secrets=secrets,
        )  # fmt: skip

    assert launcher({"creds": {"KEY": "v"}})._secret_env("exec-a") == {"AWS_KEY": "v"}
    with pytest.raises(TaskFailed, match="CreateContainerConfigError"):
        launcher({"creds": {}}).run("r")
