"""Kubeflow Pipelines 2.x: compile the pipeline to the YAML self-hosted KFP accepts, and submit it.

Self-hosted KFP's API server only takes PipelineSpec schema 2.1.0 and `kfp.Client` only uploads
`.yaml`, so the pipeline is compiled with `use_pipeline_spec_2_1=True` to `pipeline.yaml`. Every
step runs an image with tfrelay installed (deploy/Dockerfile.pipeline): KFP containers import the
components by class path, and run tfrelay's entrypoint (`kubeflow_entrypoint`: TFX's own, with
`s3://` artifacts staged locally, since the image's TensorFlow cannot open `s3://`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import yaml
from tfx import v1 as tfx

from tfrelay.pipelines.pipeline import PipelineConfig, create_pipeline
from tfrelay.pipelines.runners import kubeflow_entrypoint

# The container command TFX's compiler writes for every executor, and the one it is replaced by.
TFX_COMMAND = ["python", "-m", kubeflow_entrypoint.TFX_MODULE]
ENTRYPOINT_COMMAND = ["python", "-m", kubeflow_entrypoint.MODULE]


def use_tfrelay_entrypoint(spec: dict) -> int:
    """Points every executor that runs TFX's Kubeflow V2 entrypoint at tfrelay's.

    The arguments stay as TFX compiled them (tfrelay's entrypoint takes exactly TFX's). The
    ExampleGen driver in `lifecycle.preCacheCheck` is left alone: only Vertex AI runs it.

    Args:
      spec: the PipelineSpec as a dict, changed in place.

    Returns:
      How many executors were changed.
    """
    changed = 0
    for executor in spec.get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container")
        if container and container.get("command") == TFX_COMMAND:
            container["command"] = list(ENTRYPOINT_COMMAND)
            changed += 1
    return changed


# Beam options that tell TFX where Beam workers get TFX from. With none of them, every Beam step
# (ExampleGen, StatisticsGen, SchemaGen, the Validator) first copies TFX's installation and builds
# an "ephemeral" TFX sdist for the workers (~9 s a step on two cores, found by tests/kubeflow),
# which the DirectRunner never uses, and which would lack tfrelay on a remote runner anyway.
BEAM_DEPENDENCY_FLAGS = (
    "--extra_package",
    "--extra_packages",
    "--setup_file",
    "--requirements_file",
    "--worker_harness_container_image",
    "--sdk_container_image",
)


def with_image_as_beam_environment(config: PipelineConfig, image: str) -> PipelineConfig:
    """`config` with `--sdk_container_image=<image>` among its Beam args, unless it names one
    of BEAM_DEPENDENCY_FLAGS already: the pipeline image has TFX and tfrelay installed.

    Args:
      config: the pipeline settings.
      image: the image every step runs.

    Returns:
      The settings to compile.
    """
    given = {arg.split("=", 1)[0] for arg in config.beam_pipeline_args}
    if given & set(BEAM_DEPENDENCY_FLAGS):
        return config
    return dataclasses.replace(
        config, beam_pipeline_args=[*config.beam_pipeline_args, f"--sdk_container_image={image}"]
    )


def platform_spec(spec: dict, secret: str, keys: list[str]) -> dict:
    """The Kubernetes platform spec giving every executor `secret`'s `keys` as environment
    variables (kfp-kubernetes' `use_secret_as_env`, which self-hosted KFP's driver applies).

    Args:
      spec: the PipelineSpec as a dict.
      secret: the Secret's name, in the run's namespace.
      keys: its keys; each becomes the variable of the same name.

    Returns:
      The second YAML document of the package.
    """
    secret_as_env = [
        {"secretName": secret, "keyToEnv": [{"secretKey": k, "envVar": k} for k in keys]}
    ]
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    return {
        "platforms": {
            "kubernetes": {
                "deploymentSpec": {
                    "executors": {label: {"secretAsEnv": secret_as_env} for label in executors}
                }
            }
        }
    }


def _rewrite_package(path: str, config: PipelineConfig) -> None:
    """Rewrites the compiled YAML with tfrelay's entrypoint (and the step Secret's platform
    spec as a second document), keeping kfp's header comment."""
    with open(path) as f:
        text = f.read()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    spec = yaml.safe_load(text)
    use_tfrelay_entrypoint(spec)
    documents = [spec]
    if config.step_secret:
        documents.append(platform_spec(spec, config.step_secret, config.step_secret_keys))
    with open(path, "w") as f:
        f.write(header + yaml.safe_dump_all(documents, sort_keys=True, width=100))


def compile_pipeline(config: PipelineConfig, output_path: str, image: str) -> str:
    """Writes the KFP pipeline package (PipelineSpec 2.1.0 YAML).

    Args:
      config: the pipeline settings (paths should be s3:// or gs:// URLs the cluster can reach).
      output_path: the `.yaml` file to write.
      image: the image every step runs (tfrelay + TFX installed).

    Returns:
      `output_path`.

    Raises:
      ValueError: the output is not a .yaml/.yml file.
    """
    if not output_path.endswith((".yaml", ".yml")):
        raise ValueError(f"KFP uploads .yaml pipeline packages; {output_path!r} is not one")
    output_dir = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(output_dir, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
        ),
        output_dir=output_dir,
        output_filename=os.path.basename(output_path),
    )
    config = with_image_as_beam_environment(config, image)
    runner.run(create_pipeline(config, local_metadata=False), write_out=True)
    _rewrite_package(output_path, config)
    return output_path


# Pipeline roots the steps can read and write: s3:// through the step entrypoint's staging,
# gs:// through TensorFlow's own GCS file system.
REMOTE_ROOT_SCHEMES = ("s3://", "gs://")


def check_pipeline_root(pipeline_root: str) -> None:
    """Refuses a pipeline root the pods cannot share artifacts through.

    Args:
      pipeline_root: the run's pipeline root.

    Raises:
      ValueError: a local path (each pod has its own disk, so the next step would find nothing)
        or a scheme the steps cannot open, such as KFP's default `minio://` (use `s3://` with
        S3_ENDPOINT pointing at MinIO).
    """
    if not pipeline_root.startswith(REMOTE_ROOT_SCHEMES):
        raise ValueError(
            f"pipeline root {pipeline_root!r}: on Kubeflow each step runs in its own pod, so "
            "artifacts must be in a bucket the steps read: pass --pipeline-root s3://... or "
            "gs://... (for MinIO: s3://bucket/path, with S3_ENDPOINT set in the steps)"
        )


def submit(
    config: PipelineConfig,
    host: str,
    image: str,
    package_path: str | None = None,
    experiment: str = "tfrelay",
    run_name: str | None = None,
    namespace: str | None = None,
) -> str:
    """Submits a run to a Kubeflow Pipelines host (compiling the package first if none is given).

    Args:
      config: the pipeline settings; its pipeline_root is passed at submit time (the YAML does
        not carry a runtime config).
      host: the KFP API endpoint, e.g. http://ml-pipeline-ui.kubeflow:80.
      image: the pipeline image, when compiling here.
      package_path: an already compiled pipeline.yaml.
      experiment: the KFP experiment.
      run_name: the run's name.
      namespace: the KFP namespace (multi-user installs).

    Returns:
      The run id.

    Raises:
      ValueError: a pipeline root the pods cannot share (see `check_pipeline_root`).
    """
    check_pipeline_root(config.pipeline_root)
    import kfp

    if package_path is None:
        package_path = os.path.join(tempfile.mkdtemp(prefix="tfrelay-kfp-"), "pipeline.yaml")
        compile_pipeline(config, package_path, image)
    client = kfp.Client(host=host, namespace=namespace)
    run = client.create_run_from_pipeline_package(
        package_path,
        arguments={},
        run_name=run_name,
        experiment_name=experiment,
        namespace=namespace,
        pipeline_root=config.pipeline_root,
        enable_caching=config.enable_cache,
    )
    return run.run_id


def kfp_cron(expression: str) -> str:
    """A cron expression as KFP's scheduler reads it (robfig/cron: six fields, seconds first).

    Args:
      expression: six fields, or a five-field crontab line (run at second 0 of each match).

    Returns:
      The six-field expression.

    Raises:
      ValueError: neither five nor six fields.
    """
    fields = expression.split()
    if len(fields) == 5:
        fields.insert(0, "0")  # crontab has no seconds field; KFP's first field is seconds
    if len(fields) != 6:
        raise ValueError(
            f"cron expression {expression!r}: KFP takes six fields (second minute hour "
            "day-of-month month day-of-week), or a five-field crontab line"
        )
    return " ".join(fields)


def schedule(
    config: PipelineConfig,
    host: str,
    image: str,
    cron: str | None = None,
    interval_seconds: int | None = None,
    package_path: str | None = None,
    experiment: str = "tfrelay",
    name: str | None = None,
    description: str | None = None,
    max_concurrency: int = 1,
    catchup: bool = False,
    start_time: str | None = None,
    end_time: str | None = None,
    enabled: bool = True,
    namespace: str | None = None,
    service_account: str | None = None,
) -> str:
    """Creates a KFP recurring run of the pipeline (a retrain on a cron schedule or interval).

    Each scheduled run reads whatever is in `config.data_root` then, validates the new model
    against the version the bucket serves and pushes it only when it is at least as good, so a
    schedule is all a data scientist needs to retrain as data arrives.

    Args:
      config: the pipeline settings; its pipeline_root is the runs' pipeline root.
      host: the KFP API endpoint, e.g. http://ml-pipeline-ui.kubeflow:80.
      image: the pipeline image, when compiling here.
      cron: when to run, as a cron expression (see `kfp_cron`); exclusive with
        `interval_seconds`.
      interval_seconds: run every this many seconds instead.
      package_path: an already compiled pipeline.yaml (else it is compiled now).
      experiment: the KFP experiment (created when missing).
      name: the recurring run's name (default: "<pipeline name> retrain").
      description: its description.
      max_concurrency: how many of its runs may run at once (1: a retrain never overlaps the
        previous one, which may still be pushing).
      catchup: after a pause, run every missed interval (False: only the latest).
      start_time: RFC 3339 time before which it does not run.
      end_time: RFC 3339 time after which it stops.
      enabled: create it enabled (False: paused).
      namespace: the KFP namespace (multi-user installs).
      service_account: the Kubernetes service account its runs use.

    Returns:
      The recurring run's id.

    Raises:
      ValueError: not exactly one of `cron` and `interval_seconds`, a bad value, or a pipeline
        root the pods cannot share (see `check_pipeline_root`).
    """
    if (cron is None) == (interval_seconds is None):
        raise ValueError("give exactly one of a cron expression and an interval in seconds")
    if interval_seconds is not None and interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be positive, not {interval_seconds}")
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
    cron_expression = kfp_cron(cron) if cron is not None else None  # refused before any request
    check_pipeline_root(config.pipeline_root)
    import kfp

    if package_path is None:
        package_path = os.path.join(tempfile.mkdtemp(prefix="tfrelay-kfp-"), "pipeline.yaml")
        compile_pipeline(config, package_path, image)
    client = kfp.Client(host=host, namespace=namespace)
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    recurring_run = client.create_recurring_run(
        experiment_id=experiment_id,
        job_name=name or f"{config.pipeline_name} retrain",
        description=description,
        start_time=start_time,
        end_time=end_time,
        interval_second=interval_seconds,
        cron_expression=cron_expression,
        max_concurrency=max_concurrency,
        no_catchup=not catchup,
        pipeline_package_path=package_path,
        enabled=enabled,
        pipeline_root=config.pipeline_root,
        enable_caching=config.enable_cache,
        service_account=service_account,
    )
    return recurring_run.recurring_run_id
