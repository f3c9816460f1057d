"""create_pipeline wires the components the config asks for."""

from __future__ import annotations

from tfrelay.pipelines.pipeline import PipelineConfig, create_components

TECHNIQUES = [
    {"technique": "prune", "target_sparsity": 0.5, "epochs": 2},
    {"technique": "quantize", "mode": "int8"},
]


def _by_id(components):
    return {component.id: component for component in components}


def test_default_pipeline_pushes_the_validated_model(tmp_path):
    components = _by_id(create_components(PipelineConfig(pipeline_root=str(tmp_path))))
    assert list(components) == [
        "CsvExampleGen", "StatisticsGen", "SchemaGen", "Trainer", "Validator", "BucketPusher", "ServingDeployer",
    ]  # fmt: skip
    pusher = components["BucketPusher"]
    assert pusher.inputs["model"].producer_component_id == "Trainer"
    assert pusher.inputs["model_blessing"].producer_component_id == "Validator"


def test_optimize_puts_the_optimizer_before_the_pusher_with_the_original_as_fallback(tmp_path):
    config = PipelineConfig(pipeline_root=str(tmp_path), optimize=TECHNIQUES, prefer_tflite=True)
    components = _by_id(create_components(config))
    assert "Optimizer" in components
    optimizer, pusher = components["Optimizer"], components["BucketPusher"]
    assert optimizer.inputs["model_blessing"].producer_component_id == "Validator"
    assert pusher.inputs["model"].producer_component_id == "Optimizer"
    assert pusher.inputs["fallback_model"].producer_component_id == "Trainer"
    assert pusher.inputs["fallback_model_blessing"].producer_component_id == "Validator"
    assert components["ServingDeployer"].exec_properties["prefer_tflite_model"] == 1


def test_optimize_without_fallback_pushes_only_a_blessed_optimized_model(tmp_path):
    config = PipelineConfig(
        pipeline_root=str(tmp_path), optimize=TECHNIQUES, fallback_to_original=False
    )
    pusher = _by_id(create_components(config))["BucketPusher"]
    assert "fallback_model" not in pusher.inputs
