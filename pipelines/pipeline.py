"""The pipeline: CsvExampleGen -> StatisticsGen -> SchemaGen -> Trainer -> Validator
-> (Optimizer) -> BucketPusher -> ServingDeployer, for any CSV dataset.

Every setting is a field of `PipelineConfig`, so the command line, the runners, the notebook and
the tests build the same pipeline.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from tfx import v1 as tfx

from tfrelay.components import BucketPusher, Optimizer, ServingDeployer, Trainer, Validator
from tfrelay.components.deployer.keys import LOCAL
from tfrelay.pipelines.datasets import penguins

DEFAULT_BEAM_ARGS = ("--direct_running_mode=multi_processing", "--direct_num_workers=2")


@dataclasses.dataclass
class PipelineConfig:
    """Everything a pipeline run needs.

    Attributes:
      pipeline_name: the TFX pipeline name (also the KFP pipeline name).
      pipeline_root: where TFX keeps artifacts (a local dir, s3:// or gs:// on Kubeflow).
      data_root: the directory of CSV files CsvExampleGen reads (every file in it).
      base_path: the bucket path models are pushed to and served from.
      model_name: the name clients address.
      label_key: the feature to predict.
      feature_keys: input features (default: every column but the label).
      task: "classification" or "regression".
      epochs, hidden_units, learning_rate, batch_size: the Trainer's model.
      core_model_fn: "package.module:function" building the trainable core (e.g. a CNN).
      lower_bound: the Validator's minimum for the main metric (accuracy / MSE upper bound for
        regression via upper_bound).
      upper_bound: the Validator's maximum for the main metric.
      max_degradation: how much worse than the serving version the candidate may be.
      shadow_requests: logged requests (TFRecord file, directory or prefix of PredictionLogs)
        the Validator replays against the candidate and the serving version; "" for none.
      shadow_max_records: at most this many logged records are read.
      max_prediction_change: the largest share of replayed predictions whose top class may change.
      max_regression_difference: the largest p99 absolute difference of replayed predictions.
      warmup_from_logs: push up to 100 replayed requests as the version's warmup requests.
      optimize: Optimizer techniques in order, e.g. [{"technique": "prune", "target_sparsity":
        0.5, "epochs": 2}, {"technique": "quantize", "mode": "int8"}]; empty: no Optimizer.
      max_accuracy_drop: the Optimizer blesses a result only within this accuracy loss.
      fallback_to_original: push the Trainer's model when the optimized one is not blessed.
      prefer_tflite: the deployer's server serves model.tflite (quantized models).
      keep_last: versions kept in the bucket (0: all).
      deploy: add the ServingDeployer.
      target: "local" or "kubernetes".
      endpoint: the model server's REST URL ("" for the target's default).
      poll_seconds: polling interval of a server the deployer starts.
      kubernetes_config: KubernetesSettings fields for target "kubernetes".
      deploy_timeout_seconds: how long the pushed version may take to serve.
      server_state_dir: where a local server started by the deployer keeps its log.
      beam_pipeline_args: Beam options for StatisticsGen, SchemaGen, the Validator (TFMA).
      metadata_path: the local ML Metadata SQLite file (local runs only).
      enable_cache: reuse outputs of unchanged steps.
      step_secret: on Kubeflow, a Kubernetes Secret whose `step_secret_keys` every step gets as
        environment variables (the bucket's credentials; KFP gives steps none of its own).
      step_secret_keys: the Secret's keys, each set as the variable of the same name.
    """

    pipeline_name: str = "penguins"
    pipeline_root: str = "tfrelay-work/pipeline"
    data_root: str = "tfrelay-work/data"
    base_path: str = "tfrelay-work/bucket/penguins"
    model_name: str = "penguins"
    label_key: str = penguins.LABEL_KEY
    feature_keys: list[str] = dataclasses.field(default_factory=lambda: list(penguins.FEATURE_KEYS))
    task: str = "classification"
    epochs: int = 15
    hidden_units: list[int] = dataclasses.field(default_factory=lambda: [16, 8])
    learning_rate: float = 0.01
    batch_size: int = 32
    core_model_fn: str = ""
    lower_bound: float | None = 0.8
    upper_bound: float | None = None
    max_degradation: float | None = 0.05
    shadow_requests: str = ""
    shadow_max_records: int = 1000
    max_prediction_change: float | None = None
    max_regression_difference: float | None = None
    warmup_from_logs: bool = False
    optimize: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    max_accuracy_drop: float = 0.01
    fallback_to_original: bool = True
    prefer_tflite: bool = False
    keep_last: int = 0
    deploy: bool = True
    target: str = LOCAL
    endpoint: str = ""
    poll_seconds: int = 2
    kubernetes_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    deploy_timeout_seconds: int = 300
    server_state_dir: str = ""
    beam_pipeline_args: list[str] = dataclasses.field(
        default_factory=lambda: list(DEFAULT_BEAM_ARGS)
    )
    metadata_path: str = ""
    enable_cache: bool = False
    step_secret: str = ""
    step_secret_keys: list[str] = dataclasses.field(
        default_factory=lambda: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    )

    @property
    def metadata_file(self) -> str:
        return self.metadata_path or os.path.join(self.pipeline_root, "metadata.db")


def create_components(config: PipelineConfig) -> list:
    """The pipeline's components, wired, in order."""
    example_gen = tfx.components.CsvExampleGen(input_base=config.data_root)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"])
    trainer = Trainer(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        label_key=config.label_key,
        feature_keys=config.feature_keys or None,
        task=config.task,
        hidden_units=config.hidden_units,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        core_model_fn=config.core_model_fn or None,
    )
    validator = Validator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_base_path=config.base_path,
        label_key=config.label_key,
        task=config.task,
        lower_bound=config.lower_bound,
        upper_bound=config.upper_bound,
        max_degradation=config.max_degradation,
        shadow_requests=config.shadow_requests or None,
        shadow_max_records=config.shadow_max_records,
        max_prediction_change=config.max_prediction_change,
        max_regression_difference=config.max_regression_difference,
        warmup_from_logs=config.warmup_from_logs,
    )
    components = [example_gen, statistics_gen, schema_gen, trainer, validator]
    model, blessing = trainer.outputs["model"], validator.outputs["blessing"]
    fallback: dict[str, Any] = {}
    if config.optimize:
        optimizer = Optimizer(
            model=model,
            examples=example_gen.outputs["examples"],
            model_blessing=blessing,
            techniques=config.optimize,
            max_accuracy_drop=config.max_accuracy_drop,
        )
        components.append(optimizer)
        if config.fallback_to_original:
            # The trainer's model is pushed instead when the optimized one is not blessed.
            fallback = {
                "fallback_model": model,
                "fallback_model_blessing": blessing,
                "fallback": True,
            }
        model, blessing = optimizer.outputs["optimized_model"], optimizer.outputs["blessing"]
    pusher = BucketPusher(
        model=model,
        model_blessing=blessing,
        base_path=config.base_path,
        model_name=config.model_name,
        keep_last=config.keep_last,
        **fallback,
    )
    components.append(pusher)
    if config.deploy:
        components.append(
            ServingDeployer(
                pushed_model=pusher.outputs["pushed_model"],
                model_name=config.model_name,
                base_path=config.base_path,
                target=config.target,
                endpoint=config.endpoint or None,
                timeout_seconds=config.deploy_timeout_seconds,
                poll_seconds=config.poll_seconds,
                kubernetes_config=config.kubernetes_config or None,
                state_dir=config.server_state_dir or None,
                prefer_tflite_model=config.prefer_tflite,
            )
        )
    return components


def create_pipeline(config: PipelineConfig, local_metadata: bool = True) -> tfx.dsl.Pipeline:
    """The TFX pipeline for `config`.

    Args:
      config: every setting.
      local_metadata: use a local SQLite ML Metadata store (False on Kubeflow, which brings its
        own).

    Returns:
      The pipeline, ready for LocalDagRunner or KubeflowV2DagRunner.
    """
    metadata = None
    if local_metadata:
        os.makedirs(os.path.dirname(os.path.abspath(config.metadata_file)), exist_ok=True)
        metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_file
        )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=create_components(config),
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
