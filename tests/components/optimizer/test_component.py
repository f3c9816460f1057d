"""Optimizer construction: the spec it builds, the actionable errors for settings that cannot
work, and a pipeline with it that compiles for Kubeflow Pipelines (V2, spec 2.1)."""

from __future__ import annotations

import json

import pytest
import yaml
from tfx import types
from tfx import v1 as tfx
from tfx.orchestration import data_types
from tfx.types import standard_artifacts

from tfrelay.components.optimizer import (
    Cluster,
    Distill,
    OptimizationReport,
    Optimizer,
    Prune,
    Quantize,
    component,
    executor,
)
from tfrelay.components.optimizer.settings import describe, parse_techniques, to_dict
from tfrelay.components.pusher import BucketPusher
from tfrelay.components.trainer.component import Trainer


def _channels() -> dict:
    return {
        "model": types.Channel(type=standard_artifacts.Model),
        "examples": types.Channel(type=standard_artifacts.Examples),
    }


def test_component_builds_the_spec_from_technique_objects():
    optimizer = Optimizer(
        **_channels(),
        techniques=[Prune(target_sparsity=0.8, epochs=3), Quantize("int8")],
        max_accuracy_drop=0.01,
        model_blessing=types.Channel(type=standard_artifacts.ModelBlessing),
    )

    techniques = json.loads(optimizer.exec_properties[component.TECHNIQUES_KEY])
    assert [t["technique"] for t in techniques] == ["prune", "quantize"]
    assert techniques[0]["target_sparsity"] == 0.8 and techniques[0]["epochs"] == 3
    assert techniques[1] == {
        "technique": "quantize",
        "mode": "int8",
        "representative_examples": 200,
    }
    assert optimizer.exec_properties[component.MAX_ACCURACY_DROP_KEY] == 0.01
    assert optimizer.outputs[component.OPTIMIZED_MODEL_KEY].type is standard_artifacts.Model
    assert optimizer.outputs[component.BLESSING_KEY].type is standard_artifacts.ModelBlessing
    assert optimizer.outputs[component.REPORT_KEY].type is OptimizationReport
    assert set(optimizer.inputs) == {"model", "examples", "model_blessing"}
    assert optimizer.executor_spec.executor_class is executor.Executor


def test_dict_settings_are_the_same_as_objects_and_survive_json():
    as_dicts = [
        {"technique": "prune", "target_sparsity": 0.5, "schedule": "constant", "layers": ["d"]},
        {"technique": "cluster", "number_of_clusters": 8},
        {"technique": "quantize", "mode": "float16"},
    ]

    parsed = parse_techniques(as_dicts)

    assert parsed == [
        Prune(target_sparsity=0.5, schedule="constant", layers=("d",)),
        Cluster(number_of_clusters=8),
        Quantize("float16"),
    ]
    optimizer = Optimizer(**_channels(), techniques=as_dicts)
    assert parse_techniques(optimizer.exec_properties["techniques"]) == parsed


def test_distill_settings_survive_json_and_chain_with_prune_and_quantize():
    as_dicts = [
        {"technique": "distill", "width": 0.5, "temperature": 2, "alpha": 0.3, "epochs": 5},
        {"technique": "prune", "target_sparsity": 0.5},
        {"technique": "quantize", "mode": "int8"},
    ]

    parsed = parse_techniques(as_dicts)

    assert parsed == [
        Distill(width=0.5, temperature=2.0, alpha=0.3, epochs=5),
        Prune(target_sparsity=0.5),
        Quantize("int8"),
    ]
    assert describe(parsed) == "distill width 0.5 -> prune 50% -> int8"
    optimizer = Optimizer(**_channels(), techniques=as_dicts)
    assert parse_techniques(optimizer.exec_properties["techniques"]) == parsed
    # Unset, the width travels as null and reads back as unset: the built-in student's default
    # width, or none at all beside a student function.
    (default,) = parse_techniques(json.dumps([to_dict(Distill())]))
    assert default == Distill() and default.width is None and default.student_width == 0.25
    (custom,) = parse_techniques([to_dict(Distill(student="my.students:small_cnn"))])
    assert custom.student_width is None and custom.label == "distill small_cnn"


def test_max_accuracy_drop_may_be_a_runtime_parameter():
    drop = data_types.RuntimeParameter(name="max_accuracy_drop", ptype=float, default=0.02)

    optimizer = Optimizer(**_channels(), techniques=[Quantize("dynamic")], max_accuracy_drop=drop)

    assert optimizer.exec_properties[component.MAX_ACCURACY_DROP_KEY] is drop


@pytest.mark.parametrize(
    ("techniques", "message"),
    [
        ([], "techniques is empty: list at least one of distill, prune, cluster, quantize"),
        (Prune(), "techniques must be a list"),
        (Distill(), "techniques must be a list"),
        ([{"technique": "shrink"}], "unknown technique 'shrink'; use one of 'distill', 'prune'"),
        ([{"sparsity": 0.8}], "unknown technique None"),
        (
            [{"technique": "prune", "sparsity": 0.8}],
            r"techniques\[0\] \(prune\): unknown setting\(s\) sparsity; prune takes "
            "target_sparsity",
        ),
        ([Prune(target_sparsity=1.5)], r"target_sparsity must be in \(0, 1\), got 1.5"),
        ([Prune(target_sparsity=0.0)], r"target_sparsity must be in \(0, 1\)"),
        ([{"technique": "prune", "target_sparsity": "80%"}], "target_sparsity must be a number"),
        ([Prune(schedule="cubic")], "schedule must be 'polynomial'"),
        ([Prune(initial_sparsity=0.9)], r"initial_sparsity must be in \[0, target_sparsity"),
        ([Prune(epochs=0)], "pruning happens while fine-tuning, so it needs epochs >= 1"),
        ([Prune(learning_rate=2.0)], r"learning_rate must be in \(0, 1\)"),
        ([{"technique": "prune", "layers": "dense"}], "layers must be a list of layer names"),
        ([Cluster(number_of_clusters=1)], r"number_of_clusters must be in \[2, 256\]"),
        ([Cluster(centroid_init="best")], "centroid_init must be one of 'kmeans_plus_plus'"),
        ([Quantize("int4")], "mode must be one of 'dynamic', 'float16', 'int8'"),
        ([Quantize("int8", representative_examples=0)], "representative_examples must be in"),
        (
            [Quantize("int8"), Prune()],
            r"quantize must be the last technique \(got quantize -> prune\): it converts the "
            "model to TFLite",
        ),
        ([Quantize("dynamic"), Quantize("int8")], r"techniques \[0, 1\] all quantize"),
        ([Prune(), Prune(target_sparsity=0.5)], r"techniques \[0, 1\] all prune"),
        ([Cluster(), Prune()], "cluster before prune .* put prune first"),
        ([Distill(width=1.0)], r"width must be in \(0, 1\), got 1.0: it is the share of"),
        ([Distill(width=0.0)], r"width must be in \(0, 1\)"),
        ([{"technique": "distill", "width": "25%"}], "width must be a number"),
        ([Distill(temperature=0.5)], r"temperature must be in \[1, 100\], got 0.5"),
        ([Distill(alpha=1.5)], r"alpha must be in \[0, 1\], got 1.5: it is the weight of"),
        ([Distill(epochs=0)], "the student learns from scratch, so it needs epochs >= 1"),
        ([Distill(steps=-1)], "epochs and steps must be >= 0"),
        ([Distill(batch_size=0)], "batch_size must be positive"),
        ([Distill(learning_rate=0.0)], r"learning_rate must be in \(0, 1\)"),
        ([Distill(student="my_students")], "student must be 'package.module:function'"),
        ([Distill(student="a.b:c d")], "student must be 'package.module:function'"),
        ([{"technique": "distill", "student": 3}], "student must be a string"),
        (
            [Distill(student="students:small", width=0.5)],
            "give student or width, not both: width narrows the teacher's own architecture",
        ),
        (
            [{"technique": "distill", "units": 8}],
            r"unknown setting\(s\) units; distill takes student, width, temperature",
        ),
        (
            [Prune(), Distill()],
            r"distill must be the first technique \(got prune -> distill\): the student is a "
            "new model",
        ),
        ([Distill(), Quantize(), Distill()], r"techniques \[0, 2\] all distill"),
    ],
)
def test_component_rejects_techniques_that_cannot_work(techniques, message):
    with pytest.raises(ValueError, match=message):
        Optimizer(**_channels(), techniques=techniques)


@pytest.mark.parametrize("drop", [-0.01, 1.5, "1%", True])
def test_component_rejects_a_max_accuracy_drop_outside_0_to_1(drop):
    with pytest.raises(ValueError, match=r"max_accuracy_drop must be a number in \[0, 1\]"):
        Optimizer(**_channels(), techniques=[Quantize()], max_accuracy_drop=drop)


def test_component_needs_a_model_and_examples():
    with pytest.raises(ValueError, match="Optimizer needs model=trainer.outputs"):
        Optimizer(model=None, examples=None, techniques=[Quantize()])


def test_component_rejects_an_empty_split_name():
    with pytest.raises(ValueError, match="eval_split must name a split"):
        Optimizer(**_channels(), techniques=[Quantize()], eval_split="")


def test_pipeline_with_the_optimizer_compiles_for_kubeflow_v2(tmp_path):
    example_gen = tfx.components.CsvExampleGen(input_base=str(tmp_path / "data"))
    trainer = Trainer(examples=example_gen.outputs["examples"], label_key="species")
    optimizer = Optimizer(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        techniques=[Prune(target_sparsity=0.8), Quantize("int8")],
        max_accuracy_drop=0.02,
    )
    pusher = BucketPusher(
        model=optimizer.outputs["optimized_model"],
        model_blessing=optimizer.outputs["blessing"],
        fallback_model=trainer.outputs["model"],
        fallback=True,
        base_path="s3://bucket/models/penguins",
    )
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="optimizer-compile",
        pipeline_root="s3://bucket/pipeline",
        components=[example_gen, trainer, optimizer, pusher],
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image="tfrelay:test", use_pipeline_spec_2_1=True
        ),
        output_dir=str(tmp_path),
        output_filename="pipeline.yaml",
    )

    runner.run(pipeline, write_out=True)

    spec = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    inputs = spec["components"]["Optimizer"]["inputDefinitions"]
    assert set(inputs["artifacts"]) == {"model", "examples"}
    values = spec["root"]["dag"]["tasks"]["Optimizer"]["inputs"]["parameters"]
    techniques = values["techniques"]["runtimeValue"]["constant"]
    # The technique list travels as a JSON string; the executor parses it back.
    assert parse_techniques(techniques) == [Prune(target_sparsity=0.8), Quantize("int8")]
    outputs = spec["components"]["Optimizer"]["outputDefinitions"]["artifacts"]
    assert set(outputs) == {"optimized_model", "blessing", "report"}
    pusher_inputs = spec["components"]["BucketPusher"]["inputDefinitions"]["artifacts"]
    assert {"model", "model_blessing", "fallback_model"} <= set(pusher_inputs)


def test_the_pipeline_cli_takes_distill_in_the_optimize_list(tmp_path):
    from tfrelay.pipelines.cli import main as pipeline_main

    path = tmp_path / "distilled.yaml"
    optimize = (
        '[{"technique": "distill", "width": 0.25}, {"technique": "prune", "target_sparsity": '
        '0.5}, {"technique": "quantize", "mode": "int8"}]'
    )

    code = pipeline_main(
        [
            "compile",
            f"--output={path}",
            "--image=tfrelay:test",
            "--pipeline-root=gs://bucket/pipeline-root",
            "--base-path=gs://bucket/models/penguins",
            f"--set=optimize={optimize}",
        ]
    )

    assert code == 0
    spec = yaml.safe_load(path.read_text())
    values = spec["root"]["dag"]["tasks"]["Optimizer"]["inputs"]["parameters"]
    techniques = values["techniques"]["runtimeValue"]["constant"]
    assert parse_techniques(techniques) == [
        Distill(width=0.25),
        Prune(target_sparsity=0.5),
        Quantize("int8"),
    ]


def test_the_pipeline_cli_names_a_bad_distill_setting(tmp_path):
    from tfrelay.pipelines.cli import main as pipeline_main

    with pytest.raises(ValueError, match=r"width must be in \(0, 1\), got 2.0") as raised:
        pipeline_main(
            [
                "compile",
                f"--output={tmp_path / 'never.yaml'}",
                '--set=optimize=[{"technique": "distill", "width": 2}]',
            ]
        )

    assert str(raised.value).startswith("techniques[0] (distill): ")
    assert not (tmp_path / "never.yaml").exists()
