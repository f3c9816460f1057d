"""The container entrypoint of every Kubeflow Pipelines step: TFX's own
`kubeflow_v2_run_executor`, with artifacts and data on `s3://` staged through local directories.

Why it exists (issue 17, found by running the compiled YAML as KFP's launcher does): TFX's
executors open artifact URIs with `tf.io.gfile`, Beam's file systems, TFDV and TFMA. The
pipeline image's TensorFlow 2.16 has no `s3://` file system ("File system scheme 's3' not
implemented"), so with a pipeline root on S3 or MinIO - what self-hosted KFP uses - the first
step failed. KFP's launcher does download input artifacts to `/s3/...` and upload `/s3/...`
afterwards, but TFX passes the executors the URIs, never those paths. So this entrypoint:

1. downloads every `s3://` input artifact (and an ExampleGen's `s3://` `input_base`) into a
   scratch directory with tfrelay's fsspec storage (configured by `AWS_*` / `S3_ENDPOINT`, as the
   pusher and the model server are), points the ExecutorInput at the local copies and keeps the
   original URI in the artifact's `tfrelay_remote_uri` property (the pusher records it);
2. points every `s3://` output artifact at a local directory;
3. runs TFX's entrypoint unchanged on that ExecutorInput (it writes the ExecutorOutput to the
   `outputFile` the launcher named);
4. uploads the outputs to their `s3://` URIs and writes those URIs back into the ExecutorOutput
   (in the properties too), so the launcher records, and the next step receives, the URIs under
   the pipeline root.

It also maps tfrelay's artifact type titles to their classes (`register_artifact_types`).

URIs TensorFlow opens natively (`gs://`, local paths) are passed through untouched.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence

from absl import logging
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from tfrelay.components.pusher import keys as pusher_keys
from tfrelay.serving.storage.filesystem import filesystem_for, split_url

# Schemes the image's TensorFlow cannot open and fsspec can.
STAGED_SCHEMES = ("s3",)
INVOCATION_FLAG = "--json_serialized_invocation_args"
# The ExampleGen parameter naming the directory it reads (an exec property, not an artifact).
INPUT_BASE_PARAMETER = "input_base"
MODULE = "tfrelay.pipelines.runners.kubeflow_entrypoint"
TFX_MODULE = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


# tfrelay's own artifact types. TFX's compiler writes a custom type's TYPE_NAME as its schema title
# (it must read `<namespace>.<Name>`), and TFX's entrypoint imports the title as a class path
# unless `compiler_utils.TITLE_TO_CLASS_PATH` maps it: `tfrelay.ServingEndpoint` is no importable
# path, so every step reading or writing one failed with "Could not import
# tfrelay.ServingEndpoint". The titles are mapped to the classes here, before TFX parses them.
ARTIFACT_CLASS_PATHS = {
    "tfrelay.ServingEndpoint": "tfrelay.components.deployer.artifacts.ServingEndpoint",
    "tfrelay.OptimizationReport": "tfrelay.components.optimizer.artifacts.OptimizationReport",
}


def register_artifact_types() -> None:
    """Lets TFX's entrypoint find tfrelay's artifact classes from their schema titles."""
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    for title, class_path in ARTIFACT_CLASS_PATHS.items():
        compiler_utils.TITLE_TO_CLASS_PATH.setdefault(title, class_path)


def is_staged(uri: str) -> bool:
    """Whether `uri` is on a storage TensorFlow cannot open here (so it is staged locally)."""
    return "://" in uri and uri.split("://", 1)[0].lower() in STAGED_SCHEMES


def _invocation_index(argv: Sequence[str]) -> int:
    """The index of the ExecutorInput JSON in `argv` (`--flag VALUE` or `--flag=VALUE`)."""
    for index, arg in enumerate(argv):
        if arg == INVOCATION_FLAG and index + 1 < len(argv):
            return index + 1
        if arg.startswith(INVOCATION_FLAG + "="):
            return index
    raise ValueError(f"{INVOCATION_FLAG} is missing from the arguments")


def download(uri: str, local: str) -> None:
    """Copies the object or directory at `uri` to the local path `local`.

    Args:
      uri: an `s3://` URI (a directory of objects, or one object).
      local: a local path that does not exist yet; an empty directory is made when `uri` holds
        nothing (TFX artifacts may be empty directories, which object stores do not keep).
    """
    fs = filesystem_for(uri)
    _, root = split_url(uri)
    if fs.isfile(root):
        os.makedirs(os.path.dirname(local), exist_ok=True)
        fs.get_file(root, local)
        return
    os.makedirs(local, exist_ok=True)
    for key in fs.find(root):
        target = os.path.join(local, os.path.relpath(key, root))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fs.get_file(key, target)


def upload(local: str, uri: str) -> int:
    """Copies the local file or directory tree `local` to `uri`.

    Args:
      local: what the executor wrote (may be absent: an executor may write nothing).
      uri: the `s3://` URI the launcher chose for the artifact.

    Returns:
      The number of files uploaded.
    """
    if not os.path.exists(local):
        return 0
    fs = filesystem_for(uri)
    _, root = split_url(uri)
    if os.path.isfile(local):
        fs.put_file(local, root)
        return 1
    count = 0
    for directory, _, files in os.walk(local):
        for name in files:
            path = os.path.join(directory, name)
            fs.put_file(path, f"{root}/{os.path.relpath(path, local)}")
            count += 1
    return count


class Staging:
    """The local copies of one step's remote artifacts.

    Args:
      scratch: a local directory for them (removed by the caller).
    """

    def __init__(self, scratch: str) -> None:
        self.scratch = scratch
        self.remote_of_local: dict[str, str] = {}
        self.outputs: dict[str, str] = {}

    def _local_for(self, kind: str, key: str, index: int) -> str:
        return os.path.join(self.scratch, kind, key, str(index))

    def stage(self, executor_input: pipeline_spec_pb2.ExecutorInput) -> None:
        """Downloads remote inputs and points remote inputs and outputs at local paths.

        Args:
          executor_input: the launcher's ExecutorInput, rewritten in place.
        """
        for key, artifacts in executor_input.inputs.artifacts.items():
            for index, artifact in enumerate(artifacts.artifacts):
                if is_staged(artifact.uri):
                    local = self._local_for("inputs", key, index)
                    download(artifact.uri, local)
                    self.remote_of_local[local] = artifact.uri
                    # So an executor can still say which artifact it read (the push record).
                    artifact.metadata[pusher_keys.REMOTE_URI_PROPERTY] = artifact.uri
                    artifact.uri = local
        parameter = executor_input.inputs.parameter_values.get(INPUT_BASE_PARAMETER)
        if parameter is not None and is_staged(parameter.string_value):
            local = os.path.join(self.scratch, INPUT_BASE_PARAMETER)
            download(parameter.string_value, local)
            parameter.string_value = local
        for key, artifacts in executor_input.outputs.artifacts.items():
            for index, artifact in enumerate(artifacts.artifacts):
                if is_staged(artifact.uri):
                    local = self._local_for("outputs", key, index)
                    # An object store needs no directory before a write under a prefix; a local
                    # disk does, so executors that open `<uri>/file` directly work here too.
                    os.makedirs(local)
                    self.remote_of_local[local] = artifact.uri
                    self.outputs[local] = artifact.uri
                    artifact.uri = local

    def remote_text(self, text: str) -> str:
        """`text` with every local copy's path replaced by its remote URI.

        Args:
          text: a URI, or a sentence naming URIs.

        Returns:
          The text as it would read had the executor opened the remote URIs itself.
        """
        # Longest first, so a copy's path is never replaced inside another's.
        for local in sorted(self.remote_of_local, key=len, reverse=True):
            text = text.replace(local, self.remote_of_local[local])
        return text

    def publish(self, output_file: str) -> None:
        """Uploads the outputs and restores their remote URIs in the ExecutorOutput.

        Args:
          output_file: the ExecutorOutput JSON TFX's entrypoint wrote.

        Raises:
          FileNotFoundError: the executor wrote no ExecutorOutput.
        """
        for local, uri in self.outputs.items():
            logging.info("Uploaded %d files of %s to %s", upload(local, uri), local, uri)
        with open(output_file) as f:
            executor_output = json_format.Parse(
                f.read(), pipeline_spec_pb2.ExecutorOutput(), ignore_unknown_fields=True
            )
        for artifacts in executor_output.artifacts.values():
            for artifact in artifacts.artifacts:
                artifact.uri = self.remote_of_local.get(artifact.uri, artifact.uri)
                # Executors record URIs in properties too (the validator's current_model, the
                # pusher's model URI and reasons): those must name the artifacts, not the copies.
                for value in artifact.metadata.fields.values():
                    if value.WhichOneof("kind") == "string_value":
                        value.string_value = self.remote_text(value.string_value)
        with open(output_file, "w") as f:
            f.write(json_format.MessageToJson(executor_output))


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one step: the arguments are exactly those of TFX's `kubeflow_v2_run_executor`.

    Args:
      argv: the container arguments (`--executor_class_path`, the ExecutorInput, the inputs
        spec and the Beam arguments); `sys.argv[1:]` by default.

    Returns:
      0 (a failing executor raises).

    Raises:
      ValueError: the ExecutorInput argument is missing.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    index = _invocation_index(args)
    prefix = INVOCATION_FLAG + "=" if args[index].startswith(INVOCATION_FLAG + "=") else ""
    executor_input = json_format.Parse(
        args[index][len(prefix) :],
        pipeline_spec_pb2.ExecutorInput(),
        ignore_unknown_fields=True,
    )
    # Imported here: TFX's entrypoint imports TensorFlow, Beam and TFMA (seconds), and
    # `is_staged`/`download`/`upload` are useful without them.
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

    register_artifact_types()
    with tempfile.TemporaryDirectory(prefix="tfrelay-kfp-step-") as scratch:
        staging = Staging(scratch)
        staging.stage(executor_input)
        args[index] = prefix + json_format.MessageToJson(executor_input)
        # TFX's own argument parsing and executor run, exactly as `python -m` runs them.
        kubeflow_v2_run_executor.main(kubeflow_v2_run_executor._parse_flags(args))
        staging.publish(executor_input.outputs.output_file)
    return 0


if __name__ == "__main__":
    logging.set_verbosity(logging.INFO)
    sys.exit(main())
