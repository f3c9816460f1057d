"""Kubeflow Pipelines 2.x: compile the pipeline to the YAML self-hosted KFP accepts, and submit it.

Self-hosted KFP's API server only takes PipelineSpec schema 2.1.0 and `kfp.Client` only uploads
`.yaml`, so the pipeline is compiled with `use_pipeline_spec_2_1=True` to `pipeline.yaml`. Every
step runs an image with tfrelay installed (deploy/Dockerfile.pipeline): KFP containers import the
components by class path.
"""

from __future__ import annotations

import os
import tempfile

from tfx import v1 as tfx

from tfrelay.pipelines.pipeline import PipelineConfig, create_pipeline


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
    runner.run(create_pipeline(config, local_metadata=False), write_out=True)
    return output_path


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
    """
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
