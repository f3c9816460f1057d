"""Runs a compiled PipelineSpec YAML task by task, as Kubeflow Pipelines' v2 driver and launcher
would, without a cluster: test code, not product code.

The rules followed are those of the Kubeflow Pipelines backend 2.17.0 (kubeflow/pipelines at
commit 7b70c7b, `VERSION` 2.17.0), read from its source:

- `backend/src/v2/metadata/client.go` `GetPipeline`: the run's root is
  `<pipeline_root>/<pipeline_name>/<run_id>` (`GenerateOutputURI`, which trims one `/`).
- `backend/src/v2/driver/driver.go` `provisionOutputs`: each task execution gets the task root
  `<run root>/<task_name>/<uuid>`; output artifact `k` is `{name: k, uri: <task root>/k, type,
  metadata}` from the component's output definitions; output parameters write to
  `/tmp/kfp/outputs/<name>`; `outputs.outputFile` is the launcher-local path of the task root
  (`LocalPathForURI`: `s3://b/k` -> `/s3/b/k`, `gs://` -> `/gcs/`, `minio://` -> `/minio/`)
  plus `/output_metadata.json` (`/tmp/kfp_outputs/output_metadata.json` for other schemes).
- `backend/src/v2/driver/resolve.go` `resolveInputs`: `runtimeValue.constant` parameters as
  given; `taskOutputArtifact` inputs are the producer's output as recorded in ML Metadata and
  converted back by `OutputArtifact.ToRuntimeArtifact`: `name` = the MLMD artifact id, `uri`,
  `type.instanceSchema` = the producer's output schema, and `metadata` = every property and
  custom property (`metadata/converter.go` `toRuntimeArtifact`: strings, ints and doubles as
  numbers, structs as they are).
- `backend/src/v2/component/launcher_v2.go`: `addDefaultParams`; `compileCmdAndArgs` replaces
  `{{$}}` by the ExecutorInput as JSON and then the `getPlaceholders` keys
  (`{{$.inputs.artifacts['k'].uri|path}}`, `{{$.outputs.artifacts['k'].uri|path}}`,
  `{{$.inputs.parameters['k']}}` with numbers formatted as Go's `FormatFloat(v, 'f', -1, 64)`,
  lists and structs as JSON, `{{$.outputs.parameters['k'].output_file}}`) in the command and in
  each argument; `prepareOutputFolders`; `downloadArtifacts` copies each input artifact to its
  local path; the command runs; the ExecutorOutput is read from `outputFile` (absent: empty);
  `collectOutputParameters`; `uploadOutputArtifacts` merges each ExecutorOutput artifact into
  the provisioned one (`mergeRuntimeArtifacts`: its `uri` if set, its metadata fields over the
  provisioned ones), uploads the local path (none written is allowed) and records the artifact
  (`RecordArtifact` -> `toMLMDArtifact`: every metadata field becomes a custom property -
  string, double for any number, int for a bool, `{"list": ...}` / `{"struct": ...}` wrappers -
  plus `display_name` = the output key and `store_session_info`).
- `backend/src/v2/driver/k8s.go`: a platform spec's `secretAsEnv` (kfp-kubernetes) becomes the
  pod's environment variables; a missing Secret key stops the pod unless `optional`.
- KFP's backend has no code for `lifecycle.preCacheCheck` (the TFX ExampleGen driver): it is not
  run (Vertex AI runs it; self-hosted KFP does not).

Where a pod and this machine differ, the harness says so rather than pretend:

- Each task runs in its own "pod root", a fresh directory standing for the container's file
  system: launcher-local paths (`/s3/...`, `/tmp/kfp/outputs/...`) are rebased under it, and the
  subprocess's `HOME`, `TMPDIR` and working directory are there. Nothing a task leaves on its
  local disk is visible to the next task, as in KFP.
- The container is the pipeline stack's Python (`python` on `PATH` is `.venv/bin/python`), the
  image's `ENV` lines from deploy/Dockerfile.pipeline, and only the environment a pod would get:
  the storage credentials, not this machine's environment.
- No ML Metadata server, Argo or Kubernetes: MLMD is an in-memory record of the conversions
  above; caching, retries, `executor-logs` publishing, conditions, loops, sub-DAGs, importer and
  resolver nodes are refused (the tfrelay pipeline compiles none of them), not imitated.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import os
import pathlib
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping

import yaml
from google.protobuf import json_format, struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

KFP_BACKEND_VERSION = "2.17.0"
LEGACY_OUTPUT_METADATA = "/tmp/kfp_outputs/output_metadata.json"
LOCAL_PREFIX = {"gs://": "/gcs/", "minio://": "/minio/", "s3://": "/s3/"}

ObjectStore = Callable[[], object]


class TaskFailed(RuntimeError):
    """A task's command exited non-zero (the run stops there, as KFP's does)."""


class Unsupported(NotImplementedError):
    """A PipelineSpec feature this harness does not implement (so it refuses to guess)."""


def local_path_for_uri(uri: str) -> str | None:
    """launcher_v2.go `LocalPathForURI`: the launcher-local path of a remote URI (None: none)."""
    for scheme, prefix in LOCAL_PREFIX.items():
        if uri.startswith(scheme):
            return prefix + uri[len(scheme) :]
    return None


def generate_output_uri(root: str, *paths: str) -> str:
    """metadata/client.go `GenerateOutputURI` (no query string in tfrelay's roots)."""
    joined = os.path.normpath("/".join(paths)).lstrip("/")
    return f"{root.rstrip('/')}/{joined}"


def format_parameter(value: struct_pb2.Value) -> str:
    """A parameter as `getPlaceholders` substitutes it into a command line."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        # Go's FormatFloat(v, 'f', -1, 64): the shortest decimal that round-trips, never an
        # exponent, no trailing zeros ("3", "0.01", "10000000000000000").
        text = format(decimal.Decimal(repr(value.number_value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind in ("list_value", "struct_value"):
        # json.Marshal of a structpb value is protojson: compact, integral numbers without ".0".
        return json.dumps(_integral(json_format.MessageToDict(value)), separators=(",", ":"))
    raise Unsupported(f"unknown PipelineSpec Value kind {kind}")


def _integral(data: object) -> object:
    """`data` with integral floats as ints, as protojson writes them."""
    if isinstance(data, float) and data.is_integer() and abs(data) < 1e21:
        return int(data)
    if isinstance(data, list):
        return [_integral(item) for item in data]
    if isinstance(data, dict):
        return {key: _integral(item) for key, item in data.items()}
    return data


def _to_mlmd_value(value: struct_pb2.Value) -> dict:
    """converter.go `StructValueToMLMDValue`, as a small tagged dict."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return {"string_value": value.string_value}
    if kind == "number_value":
        return {"double_value": value.number_value}
    if kind == "bool_value":
        return {"int_value": int(value.bool_value)}
    if kind == "list_value":
        return {"struct_value": {"list": json_format.MessageToDict(value)}}
    if kind == "struct_value":
        return {"struct_value": {"struct": json_format.MessageToDict(value)}}
    raise Unsupported(f"KFP does not record metadata of kind {kind}")


def _from_mlmd_value(value: dict) -> object:
    """converter.go `toRuntimeArtifact`'s property -> metadata conversion."""
    ((kind, raw),) = value.items()
    if kind == "int_value":
        return float(raw)
    return raw


@dataclasses.dataclass
class RecordedArtifact:
    """An output artifact as ML Metadata holds it after `RecordArtifact`."""

    id: int
    uri: str
    schema: str
    custom_properties: dict[str, dict]

    def to_runtime_artifact(self) -> pipeline_spec_pb2.RuntimeArtifact:
        """metadata/client.go `OutputArtifact.ToRuntimeArtifact`."""
        artifact = pipeline_spec_pb2.RuntimeArtifact(name=str(self.id), uri=self.uri)
        artifact.type.instance_schema = self.schema
        metadata = {k: _from_mlmd_value(v) for k, v in self.custom_properties.items()}
        json_format.ParseDict(metadata, artifact.metadata)
        return artifact

    @property
    def metadata(self) -> dict:
        """The artifact's metadata as the next task receives it."""
        return json_format.MessageToDict(self.to_runtime_artifact().metadata)


def record_artifact(
    mlmd: dict[int, RecordedArtifact], key: str, artifact: pipeline_spec_pb2.RuntimeArtifact
) -> RecordedArtifact:
    """metadata/client.go `RecordArtifact`: stores an output artifact as MLMD would.

    Args:
      mlmd: the recorded artifacts by id (the new one is added).
      key: the output key (the default `display_name`).
      artifact: the output artifact, ExecutorOutput merged in.

    Returns:
      The recorded artifact.
    """
    custom = {k: _to_mlmd_value(v) for k, v in artifact.metadata.fields.items()}
    custom.setdefault("display_name", {"string_value": key})
    # objectstore.SessionInfo as JSON: credentials come from the environment (kfp-launcher).
    custom.setdefault(
        "store_session_info",
        {"string_value": json.dumps({"Provider": "s3", "Params": {"fromEnv": "true"}})},
    )
    recorded = RecordedArtifact(
        id=len(mlmd) + 1,
        uri=artifact.uri,
        # getArtifactSchema: the instance schema, or "title: <schema title>".
        schema=artifact.type.instance_schema or f"title: {artifact.type.schema_title}",
        custom_properties=custom,
    )
    mlmd[recorded.id] = recorded
    return recorded


@dataclasses.dataclass
class TaskRun:
    """One executed task.

    Attributes:
      name: the task's name in the DAG.
      command: the command and arguments as the container ran them.
      executor_input: the ExecutorInput given, defaults added (as a dict).
      executor_output: the ExecutorOutput read back (as a dict).
      outputs: the recorded output artifacts by output key.
      seconds: how long the container ran.
      log: the container's stdout and stderr.
    """

    name: str
    command: list[str]
    executor_input: dict
    executor_output: dict
    outputs: dict[str, RecordedArtifact]
    seconds: float
    log: pathlib.Path


def _image_env(dockerfile: pathlib.Path) -> dict[str, str]:
    """The `ENV key=value ...` lines of the pipeline image's Dockerfile."""
    env: dict[str, str] = {}
    for line in dockerfile.read_text().splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def topological_order(tasks: Mapping[str, pipeline_spec_pb2.PipelineTaskSpec]) -> list[str]:
    """The tasks in an order where each runs after every task it depends on.

    Raises:
      Unsupported: a dependency cycle or an unknown task.
    """
    needs = {}
    for name, task in tasks.items():
        upstream = set(task.dependent_tasks)
        for spec in task.inputs.artifacts.values():
            if spec.HasField("task_output_artifact"):
                upstream.add(spec.task_output_artifact.producer_task)
        for spec in task.inputs.parameters.values():
            if spec.HasField("task_output_parameter"):
                upstream.add(spec.task_output_parameter.producer_task)
        if not upstream <= set(tasks):
            raise Unsupported(f"task {name} depends on unknown tasks {upstream - set(tasks)}")
        needs[name] = upstream
    order: list[str] = []
    for _ in range(len(tasks)):  # bounded: one task placed per round at least
        ready = sorted(n for n, up in needs.items() if n not in order and up <= set(order))
        if not ready:
            break
        order.extend(ready)
    if len(order) != len(tasks):
        raise Unsupported(f"dependency cycle among {sorted(set(tasks) - set(order))}")
    return order


class Launcher:
    """Runs the tasks of one compiled pipeline package.

    Args:
      package: the compiled PipelineSpec YAML.
      pipeline_root: the run's pipeline root (given at submit time, as `tfrelay pipeline
        submit` does).
      work_dir: where the pod roots and logs go.
      python_bin: the directory whose `python` the container command finds (the image's
        interpreter: the pipeline stack's `.venv/bin`).
      dockerfile: the pipeline image's Dockerfile (for its ENV lines).
      pod_env: the environment a pod gets beyond the image's (storage credentials).
      s3_client: a boto3 S3 client for the launcher's own downloads and uploads.
      task_timeout: seconds each task may run.
      secrets: the namespace's Kubernetes Secrets (name -> key -> value), for the platform
        spec's `secretAsEnv`.
    """

    def __init__(
        self,
        package: pathlib.Path,
        pipeline_root: str,
        work_dir: pathlib.Path,
        python_bin: pathlib.Path,
        dockerfile: pathlib.Path,
        pod_env: Mapping[str, str],
        s3_client: object,
        task_timeout: float = 300,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        documents = list(yaml.safe_load_all(package.read_text()))
        # A package is the PipelineSpec, then optionally the platform specs (kfp-kubernetes).
        self.package_yaml = documents[0]
        self.spec = json_format.ParseDict(self.package_yaml, pipeline_spec_pb2.PipelineSpec())
        self.platform = {}
        for document in documents[1:]:
            self.platform.update(document.get("platforms", {}))
        self.secrets = dict(secrets or {})
        self.pipeline_root = pipeline_root
        self.work_dir = work_dir
        self.python_bin = python_bin
        self.image_env = _image_env(dockerfile)
        self.pod_env = dict(pod_env)
        self.s3 = s3_client
        self.task_timeout = task_timeout
        self.mlmd: dict[int, RecordedArtifact] = {}

    # -- the driver --------------------------------------------------------------------------

    def _executor(self, task: pipeline_spec_pb2.PipelineTaskSpec):
        component = self.spec.components[task.component_ref.name]
        executor = self.package_yaml["deploymentSpec"]["executors"][component.executor_label]
        if "container" not in executor:
            raise Unsupported(f"executor {component.executor_label} is not a container")
        return component, executor["container"]

    def _resolve_inputs(
        self,
        name: str,
        task: pipeline_spec_pb2.PipelineTaskSpec,
        outputs: Mapping[str, Mapping[str, RecordedArtifact]],
        parameters: Mapping[str, Mapping[str, struct_pb2.Value]],
    ) -> pipeline_spec_pb2.ExecutorInput.Inputs:
        inputs = pipeline_spec_pb2.ExecutorInput.Inputs()
        if task.HasField("trigger_policy") or task.HasField("iterator_policy"):
            raise Unsupported(f"task {name}: conditions and loops")
        for key, spec in task.inputs.parameters.items():
            which = spec.WhichOneof("kind")
            if which == "runtime_value":
                inputs.parameter_values[key].CopyFrom(spec.runtime_value.constant)
            elif which == "task_output_parameter":
                source = spec.task_output_parameter
                inputs.parameter_values[key].CopyFrom(
                    parameters[source.producer_task][source.output_parameter_key]
                )
            else:
                raise Unsupported(f"task {name}: parameter {key} of kind {which}")
        for key, spec in task.inputs.artifacts.items():
            if not spec.HasField("task_output_artifact"):
                raise Unsupported(f"task {name}: artifact {key} not from a task output")
            source = spec.task_output_artifact
            recorded = outputs[source.producer_task][source.output_artifact_key]
            inputs.artifacts[key].artifacts.append(recorded.to_runtime_artifact())
        return inputs

    def _provision_outputs(
        self, component: pipeline_spec_pb2.ComponentSpec, task_root: str, pod: pathlib.Path
    ) -> pipeline_spec_pb2.ExecutorInput.Outputs:
        outputs = pipeline_spec_pb2.ExecutorInput.Outputs()
        for key, spec in component.output_definitions.artifacts.items():
            artifact = outputs.artifacts[key].artifacts.add(
                name=key, uri=generate_output_uri(task_root, key)
            )
            artifact.type.CopyFrom(spec.artifact_type)
            if spec.HasField("metadata"):
                artifact.metadata.CopyFrom(spec.metadata)
        for key in component.output_definitions.parameters:
            outputs.parameters[key].output_file = self._in_pod(pod, f"/tmp/kfp/outputs/{key}")
        local_root = local_path_for_uri(task_root)
        outputs.output_file = self._in_pod(
            pod,
            f"{local_root}/output_metadata.json" if local_root else LEGACY_OUTPUT_METADATA,
        )
        return outputs

    # -- the launcher ------------------------------------------------------------------------

    @staticmethod
    def _in_pod(pod: pathlib.Path, container_path: str) -> str:
        """A container path, rebased under the task's pod root."""
        return str(pod / container_path.lstrip("/"))

    def _local_path(self, pod: pathlib.Path, artifact: pipeline_spec_pb2.RuntimeArtifact):
        local = local_path_for_uri(artifact.uri)
        return self._in_pod(pod, local) if local else None

    @staticmethod
    def _add_default_params(
        executor_input: pipeline_spec_pb2.ExecutorInput,
        component: pipeline_spec_pb2.ComponentSpec,
    ) -> pipeline_spec_pb2.ExecutorInput:
        with_defaults = pipeline_spec_pb2.ExecutorInput()
        with_defaults.CopyFrom(executor_input)
        for key, spec in component.input_definitions.parameters.items():
            if spec.HasField("default_value") and key not in with_defaults.inputs.parameter_values:
                with_defaults.inputs.parameter_values[key].CopyFrom(spec.default_value)
        return with_defaults

    def _placeholders(
        self, executor_input: pipeline_spec_pb2.ExecutorInput, pod: pathlib.Path
    ) -> dict[str, str]:
        placeholders: dict[str, str] = {}
        for key, artifacts in executor_input.inputs.artifacts.items():
            if artifacts.artifacts:
                artifact = artifacts.artifacts[0]
                placeholders[f"{{{{$.inputs.artifacts['{key}'].uri}}}}"] = artifact.uri
                local = self._local_path(pod, artifact)
                if local:
                    placeholders[f"{{{{$.inputs.artifacts['{key}'].path}}}}"] = local
        for key, artifacts in executor_input.outputs.artifacts.items():
            if artifacts.artifacts:
                artifact = artifacts.artifacts[0]
                placeholders[f"{{{{$.outputs.artifacts['{key}'].uri}}}}"] = artifact.uri
                local = self._local_path(pod, artifact)
                if local is None:
                    raise Unsupported(f"output {key}: no local path for {artifact.uri}")
                placeholders[f"{{{{$.outputs.artifacts['{key}'].path}}}}"] = local
        for key, value in executor_input.inputs.parameter_values.items():
            placeholders[f"{{{{$.inputs.parameters['{key}']}}}}"] = format_parameter(value)
        for key, parameter in executor_input.outputs.parameters.items():
            placeholders[f"{{{{$.outputs.parameters['{key}'].output_file}}}}"] = (
                parameter.output_file
            )
        return placeholders

    def compile_command(
        self, executor_input: pipeline_spec_pb2.ExecutorInput, container: Mapping, pod
    ) -> list[str]:
        """launcher_v2.go `compileCmdAndArgs`: the command and args with placeholders filled.

        Args:
          executor_input: the ExecutorInput with defaults added.
          container: the executor's container spec from the YAML.
          pod: the task's pod root.

        Returns:
          The argv the container runs.
        """
        executor_json = json_format.MessageToJson(executor_input, indent=None)
        placeholders = self._placeholders(executor_input, pod)
        compiled = []
        for template in [*container.get("command", []), *container.get("args", [])]:
            value = template.replace("{{$}}", executor_json)
            for placeholder, replacement in placeholders.items():
                value = value.replace(placeholder, replacement)
            compiled.append(value)
        return compiled

    def _bucket_key(self, uri: str) -> tuple[str, str]:
        if not uri.startswith("s3://"):
            raise Unsupported(f"the harness's object store is S3; {uri} is not on it")
        bucket, _, key = uri[len("s3://") :].partition("/")
        return bucket, key

    def _download(self, uri: str, local: str) -> None:
        bucket, key = self._bucket_key(uri)
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                relative = item["Key"][len(key) :].lstrip("/")
                target = os.path.join(local, relative) if relative else local
                os.makedirs(os.path.dirname(target), exist_ok=True)
                self.s3.download_file(bucket, item["Key"], target)

    def _upload(self, local: str, uri: str) -> None:
        if not os.path.exists(local):
            return  # "We allow components to not produce output files"
        bucket, key = self._bucket_key(uri)
        if os.path.isfile(local):
            self.s3.upload_file(local, bucket, key)
            return
        for directory, _, files in os.walk(local):
            for file_name in files:
                path = os.path.join(directory, file_name)
                self.s3.upload_file(
                    path, bucket, f"{key}/{os.path.relpath(path, local)}".replace(os.sep, "/")
                )

    def _record(self, key: str, artifact: pipeline_spec_pb2.RuntimeArtifact) -> RecordedArtifact:
        return record_artifact(self.mlmd, key, artifact)

    def _secret_env(self, executor_label: str) -> dict[str, str]:
        """driver/k8s.go: `secretAsEnv` of the executor's Kubernetes config, as env variables.

        Raises:
          TaskFailed: a Secret or key that does not exist (the pod would not start:
            CreateContainerConfigError), unless marked optional.
        """
        config = (
            self.platform.get("kubernetes", {})
            .get("deploymentSpec", {})
            .get("executors", {})
            .get(executor_label, {})
        )
        unsupported = set(config) - {"secretAsEnv"}
        if unsupported:
            raise Unsupported(f"executor {executor_label}: Kubernetes config {sorted(unsupported)}")
        env: dict[str, str] = {}
        for entry in config.get("secretAsEnv", []):
            secret = self.secrets.get(entry["secretName"])
            for pair in entry.get("keyToEnv", []):
                if secret is not None and pair["secretKey"] in secret:
                    env[pair["envVar"]] = secret[pair["secretKey"]]
                elif not entry.get("optional", False):
                    raise TaskFailed(
                        f"executor {executor_label}: secret {entry['secretName']!r} key "
                        f"{pair['secretKey']!r} not found (CreateContainerConfigError)"
                    )
        return env

    def _environment(self, pod: pathlib.Path, executor_label: str) -> dict[str, str]:
        return {
            "PATH": f"{self.python_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": self._in_pod(pod, "/root"),
            "TMPDIR": self._in_pod(pod, "/tmp"),
            "LANG": "C.UTF-8",
            "KFP_POD_NAME": pod.name,
            "KFP_POD_UID": str(uuid.uuid5(uuid.NAMESPACE_URL, pod.name)),
            **self.image_env,
            **self.pod_env,
            **self._secret_env(executor_label),
        }

    def run(self, run_id: str | None = None) -> dict[str, TaskRun]:
        """Runs every task in dependency order.

        Args:
          run_id: the KFP run id (a new UUID by default).

        Returns:
          Each task's run, by task name.

        Raises:
          TaskFailed: a task's command failed; its log is in the message.
          Unsupported: the package uses something this harness does not implement.
        """
        run_id = run_id or str(uuid.uuid4())
        run_root = generate_output_uri(self.pipeline_root, self.spec.pipeline_info.name, run_id)
        tasks = self.spec.root.dag.tasks
        recorded: dict[str, dict[str, RecordedArtifact]] = {}
        parameters: dict[str, dict[str, struct_pb2.Value]] = {}
        runs: dict[str, TaskRun] = {}
        for name in topological_order(tasks):
            task = tasks[name]
            component, container = self._executor(task)
            pod = self.work_dir / run_id / f"{name}-pod"
            (pod / "tmp").mkdir(parents=True)
            (pod / "root").mkdir()
            executor_input = pipeline_spec_pb2.ExecutorInput(
                inputs=self._resolve_inputs(name, task, recorded, parameters),
                outputs=self._provision_outputs(
                    component, generate_output_uri(run_root, name, str(uuid.uuid4())), pod
                ),
            )
            with_defaults = self._add_default_params(executor_input, component)
            command = self.compile_command(with_defaults, container, pod)
            given = json_format.MessageToDict(with_defaults)
            # prepareOutputFolders, then downloadArtifacts.
            for parameter in executor_input.outputs.parameters.values():
                os.makedirs(os.path.dirname(parameter.output_file), exist_ok=True)
            for artifacts in executor_input.outputs.artifacts.values():
                for artifact in artifacts.artifacts:
                    os.makedirs(os.path.dirname(self._local_path(pod, artifact)), exist_ok=True)
            for artifacts in executor_input.inputs.artifacts.values():
                for artifact in artifacts.artifacts:
                    local = self._local_path(pod, artifact)
                    if local:
                        self._download(artifact.uri, local)
            log = self.work_dir / run_id / f"{name}.log"
            started = time.monotonic()
            with open(log, "wb") as out:
                try:
                    process = subprocess.run(
                        command,
                        cwd=pod,
                        env=self._environment(pod, component.executor_label),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        timeout=self.task_timeout,
                        check=False,
                    )
                    code = process.returncode
                except subprocess.TimeoutExpired:
                    code = "timeout"
            seconds = time.monotonic() - started
            if code != 0:
                tail = log.read_text(errors="replace")[-6000:]
                raise TaskFailed(f"task {name} exited with {code} after {seconds:.0f}s:\n{tail}")
            executor_output = pipeline_spec_pb2.ExecutorOutput()
            if os.path.exists(executor_input.outputs.output_file):
                with open(executor_input.outputs.output_file) as f:
                    json_format.Parse(f.read(), executor_output)
            # collectOutputParameters: the output metadata file wins, else the parameter file.
            task_parameters = dict(executor_output.parameter_values)
            for key in executor_input.outputs.parameters:
                if key not in task_parameters:
                    raise Unsupported(f"task {name}: output parameter {key} from a file")
            parameters[name] = task_parameters
            outputs: dict[str, RecordedArtifact] = {}
            for key, artifacts in executor_input.outputs.artifacts.items():
                for artifact in artifacts.artifacts:
                    produced = executor_output.artifacts.get(key)
                    if produced is not None and produced.artifacts:
                        source = produced.artifacts[0]
                        if source.uri:
                            artifact.uri = source.uri
                        for field, value in source.metadata.fields.items():
                            artifact.metadata.fields[field].CopyFrom(value)
                    local = self._local_path(pod, artifact)
                    if local:
                        self._upload(local, artifact.uri)
                    outputs[key] = self._record(key, artifact)
            recorded[name] = outputs
            runs[name] = TaskRun(
                name=name,
                command=command,
                executor_input=given,
                executor_output=json_format.MessageToDict(executor_output),
                outputs=outputs,
                seconds=seconds,
                log=log,
            )
        return runs


_PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")


def placeholders_in(container: Mapping) -> set[str]:
    """The placeholders a container spec uses (to check the harness knows every one)."""
    found: set[str] = set()
    for template in [*container.get("command", []), *container.get("args", [])]:
        found.update(_PLACEHOLDER.findall(template))
    return found
