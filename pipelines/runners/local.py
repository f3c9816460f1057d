"""Running the pipeline on this machine (TFX LocalDagRunner, Beam DirectRunner), and reading
back what the run did from its ML Metadata store."""

from __future__ import annotations

import dataclasses
import json
import time

from tfx import v1 as tfx
from tfx.orchestration import metadata

from tfrelay.components import properties
from tfrelay.components.deployer import artifacts as deployer_artifacts
from tfrelay.pipelines.pipeline import PipelineConfig, create_pipeline


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What a pipeline run produced.

    Attributes:
      seconds: how long the run took.
      blessed: whether the Validator blessed the candidate.
      failed_checks: why not, when it did not.
      metrics: the candidate's metrics.
      pushed: whether a new version was pushed.
      version: the version pushed (or the one still serving).
      destination: where it was pushed.
      push_reason: the pusher's explanation.
      endpoint: where it serves ("" without a deployer).
      serving_version: the version the deployer saw serving (-1 without a deployer).
    """

    seconds: float
    blessed: bool
    failed_checks: list[str]
    metrics: dict[str, float]
    pushed: bool
    version: int | None
    destination: str
    push_reason: str
    endpoint: str
    serving_version: int


def _latest(store, type_name: str, after_id: int):
    artifacts = [a for a in store.get_artifacts_by_type(type_name) if a.id > after_id]
    return max(artifacts, key=lambda a: a.id) if artifacts else None


def _max_id(store) -> int:
    return max((a.id for a in store.get_artifacts()), default=0)


def _custom(artifact, key: str, kind: str = "string_value"):
    if artifact is None or key not in artifact.custom_properties:
        return None
    return getattr(artifact.custom_properties[key], kind)


def run_local(config: PipelineConfig) -> RunSummary:
    """Runs the pipeline with TFX's LocalDagRunner and summarises the run.

    Args:
      config: the pipeline settings.

    Returns:
      The run's summary (from ML Metadata).

    Raises:
      RuntimeError: a component failed (TFX's own exception, re-raised with the component named
        by TFX in its message).
    """
    pipeline = create_pipeline(config)
    connection = metadata.sqlite_metadata_connection_config(config.metadata_file)
    with metadata.Metadata(connection) as store:
        before = _max_id(store.store)
    started = time.monotonic()
    tfx.orchestration.LocalDagRunner().run(pipeline)
    seconds = time.monotonic() - started
    with metadata.Metadata(connection) as store:
        mlmd = store.store
        blessing = _latest(mlmd, "ModelBlessing", before)
        pushed = _latest(mlmd, "PushedModel", before)
        endpoint = _latest(mlmd, deployer_artifacts.ServingEndpoint.TYPE_NAME, before)
    version = _custom(pushed, properties.PUSHED_VERSION)
    return RunSummary(
        seconds=seconds,
        blessed=_custom(blessing, properties.BLESSED, "int_value") == 1,
        failed_checks=json.loads(_custom(blessing, properties.FAILED_CHECKS) or "[]"),
        metrics=json.loads(_custom(blessing, properties.METRICS) or "{}"),
        pushed=_custom(pushed, properties.PUSHED, "int_value") == 1,
        version=int(version) if version else None,
        destination=_custom(pushed, properties.PUSHED_DESTINATION) or "",
        push_reason=_custom(pushed, properties.PUSH_REASON) or "",
        endpoint=_custom(endpoint, deployer_artifacts.ENDPOINT) or "",
        serving_version=_custom(endpoint, deployer_artifacts.SERVING_VERSION, "int_value")
        if endpoint
        else -1,
    )
