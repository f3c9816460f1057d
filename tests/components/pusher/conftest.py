"""Real artifacts for the BucketPusher tests: SavedModels in Model artifacts, blessings, an S3
endpoint on loopback, and a way to run the executor the way TFX's launcher does."""

from __future__ import annotations

import json
import pathlib
import shutil
from collections.abc import Callable, Iterator

import pytest
from tfx.dsl.components.base import base_executor
from tfx.proto.orchestration import pipeline_pb2
from tfx.types import artifact, standard_artifacts, standard_component_specs

from support.models import write_half_plus_two
from support.servers import moto_s3, s3_client
from tfrelay.components import properties
from tfrelay.components.pusher import component, executor

S3_BUCKET = "models"
PIPELINE_NAME = "penguins-pipeline"
COMPONENT_ID = "BucketPusher"


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Two different real SavedModels: half_plus_two (y = 0.5x + 2) and half_plus_three."""
    root = tmp_path_factory.mktemp("saved_models")
    return {
        "half_plus_two": write_half_plus_two(root / "half_plus_two", a=0.5, b=2.0),
        "half_plus_three": write_half_plus_two(root / "half_plus_three", a=0.5, b=3.0),
    }


@pytest.fixture
def make_model(tmp_path, saved_models) -> Callable[..., artifact.Artifact]:
    """Builds a Model artifact whose Format-Serving holds a copy of a fixture SavedModel.

    `variant` adds a small extra asset so that otherwise identical models differ in checksum.
    """
    counter = iter(range(1_000_000))

    def make(source: str = "half_plus_two", variant: str | None = None) -> artifact.Artifact:
        model = standard_artifacts.Model()
        model.uri = str(tmp_path / f"trainer_model_{next(counter)}")
        serving = pathlib.Path(model.uri) / "Format-Serving"
        shutil.copytree(saved_models[source], serving)
        if variant is not None:
            (serving / "assets.extra").mkdir(exist_ok=True)
            (serving / "assets.extra" / "variant.txt").write_text(variant)
        return model

    return make


@pytest.fixture
def make_blessing(tmp_path) -> Callable[..., artifact.Artifact]:
    """Builds a ModelBlessing with the properties tfrelay's validators write."""

    def make(
        blessed: bool,
        metrics: dict | None = None,
        failed_checks: list[str] | None = None,
    ) -> artifact.Artifact:
        blessing = standard_artifacts.ModelBlessing()
        blessing.uri = str(tmp_path / "blessing")
        pathlib.Path(blessing.uri).mkdir(exist_ok=True)
        blessing.set_int_custom_property(properties.BLESSED, 1 if blessed else 0)
        if metrics is not None:
            blessing.set_string_custom_property(properties.METRICS, json.dumps(metrics))
        if failed_checks is not None:
            blessing.set_string_custom_property(properties.FAILED_CHECKS, json.dumps(failed_checks))
        return blessing

    return make


def executor_context(run_id: str | None) -> base_executor.BaseExecutor.Context:
    """The context TFX's launcher gives executors (pipeline, run and node), for `run_id`."""
    return base_executor.BaseExecutor.Context(
        pipeline_info=pipeline_pb2.PipelineInfo(id=PIPELINE_NAME),
        pipeline_run_id=run_id,
        pipeline_node=pipeline_pb2.PipelineNode(node_info=pipeline_pb2.NodeInfo(id=COMPONENT_ID)),
    )


@pytest.fixture
def run_pusher(tmp_path) -> Callable[..., artifact.Artifact]:
    """Runs the BucketPusher executor's Do on real artifacts; returns the PushedModel."""
    counter = iter(range(1_000_000))

    def run(
        model: artifact.Artifact,
        base_path: str,
        blessing: artifact.Artifact | None = None,
        run_id: str | None = "run-1",
        **exec_properties: object,
    ) -> artifact.Artifact:
        pushed_model = standard_artifacts.PushedModel()
        pushed_model.uri = str(tmp_path / f"pushed_model_{next(counter)}")
        input_dict = {standard_component_specs.MODEL_KEY: [model]}
        if blessing is not None:
            input_dict[standard_component_specs.MODEL_BLESSING_KEY] = [blessing]
        executor.Executor(executor_context(run_id)).Do(
            input_dict,
            {component.PUSHED_MODEL_KEY: [pushed_model]},
            {component.BASE_PATH_KEY: base_path, **exec_properties},
        )
        return pushed_model

    return run


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real S3 endpoint (moto_server) on loopback with the bucket `models`; yields the
    environment a user would set to reach it."""
    with moto_s3(tmp_path_factory.mktemp("moto")) as env:
        s3_client(env).create_bucket(Bucket=S3_BUCKET)
        yield env


@pytest.fixture(scope="module")
def s3_bucket(s3_env) -> str:
    """The name of the bucket `s3_env` created."""
    return S3_BUCKET


@pytest.fixture(scope="module")
def s3(s3_env):
    """A boto3 client of that endpoint, to look at the bucket independently of tfrelay."""
    return s3_client(s3_env)
