"""The Optimizer component: spec and construction-time validation.

```python
optimizer = Optimizer(
    model=trainer.outputs["model"],
    examples=example_gen.outputs["examples"],
    model_blessing=validator.outputs["blessing"],  # optional: skip models the Validator refused
    techniques=[Prune(target_sparsity=0.8), Quantize("int8")],  # or [Distill(width=0.25), ...]
    max_accuracy_drop=0.01,
)
pusher = BucketPusher(
    model=optimizer.outputs["optimized_model"],
    model_blessing=optimizer.outputs["blessing"],
    fallback_model=trainer.outputs["model"],
    fallback_model_blessing=validator.outputs["blessing"],
    fallback=True,
    base_path="s3://my-bucket/models/penguins",
)
```
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.placeholder import placeholder as ph
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfrelay.components.optimizer import executor
from tfrelay.components.optimizer.artifacts import OptimizationReport

# The keys live in keys.py (issue 15); imported by name so `component.MODEL_KEY` keeps working.
from tfrelay.components.optimizer.keys import (
    BLESSING_KEY,
    EVAL_SPLIT_KEY,
    EXAMPLES_KEY,
    MAX_ACCURACY_DROP_KEY,
    MODEL_BLESSING_KEY,
    MODEL_KEY,
    OPTIMIZED_MODEL_KEY,
    REPORT_KEY,
    TECHNIQUES_KEY,
    TRAIN_SPLIT_KEY,
)
from tfrelay.components.optimizer.settings import Technique, parse_techniques, to_dict


class OptimizerSpec(types.ComponentSpec):
    """Optimizer component spec."""

    PARAMETERS = {
        # The technique list as a JSON string ([{"technique": ..., settings}, ...]): a plain
        # string parameter travels unchanged through ML Metadata, the local runners and the
        # Kubeflow V2 compiler (TFX's IR cannot type a list of dicts of mixed values).
        TECHNIQUES_KEY: ExecutionParameter(type=str),
        MAX_ACCURACY_DROP_KEY: ExecutionParameter(type=float),
        TRAIN_SPLIT_KEY: ExecutionParameter(type=str),
        EVAL_SPLIT_KEY: ExecutionParameter(type=str),
    }
    INPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        MODEL_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
    }
    OUTPUTS = {
        OPTIMIZED_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        REPORT_KEY: ChannelParameter(type=OptimizationReport),
    }


def validate_max_accuracy_drop(value: object) -> float:
    """Checks max_accuracy_drop (an absolute share of accuracy: 0.01 is one point).

    Raises:
      ValueError: not a number in [0, 1].
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(
            f"max_accuracy_drop must be a number in [0, 1], got {value!r}: it is the largest "
            "accuracy loss that still blesses the optimized model, as a share (0.01 = 1 point, "
            "e.g. 95% -> 94%)."
        )
    return float(value)


def _known_at_construction(value: object) -> bool:
    return not isinstance(value, (data_types.RuntimeParameter, ph.Placeholder))


class Optimizer(base_component.BaseComponent):
    """Makes a trained model smaller and faster, measures it, and blesses it only if accuracy
    holds.

    Techniques apply in order, each on the previous one's result (tensorflow-model-optimization
    for the Keras core, the TFLite converter for quantization):

    - `Distill(student | width, temperature, alpha, epochs | steps, ...)`: a smaller student
      (the teacher's architecture with `width` times its units and filters, or a
      core_model_fn-style `student` function) trained on the labels and the teacher's
      temperature-softened predictions; it replaces the teacher, with the same signatures,
      preprocessing and warmup. First.
    - `Prune(target_sparsity, schedule, epochs | steps, ...)`: magnitude pruning while
      fine-tuning on the train split, then `strip_pruning`.
    - `Cluster(number_of_clusters, epochs | steps, ...)`: weight clustering, fine-tuned, then
      `strip_clustering`; after a Prune it preserves the zeros.
    - `Quantize(mode)`: post-training quantization of the whole serving function to
      `model.tflite`: "dynamic", "float16" or "int8" (calibrated on train examples). Last.

    The output Model has the serving layout the BucketPusher pushes: `Format-Serving/` holds a
    SavedModel with the input's signatures around the optimized core, the input's warmup
    requests, and, when quantized, `model.tflite` with `serving_default` (raw features in, same
    output names) and `classify`, which tfrelay's server serves with `--prefer_tflite_model`.

    The ModelBlessing is blessed iff the eval accuracy dropped by at most `max_accuracy_drop`
    (and, when `model_blessing` is wired, the input model was blessed: otherwise nothing is
    optimized). It records the figures (`tfrelay_metrics`) and the failed checks
    (`tfrelay_failed_checks`) as the Validator does. The report artifact holds `report.json` and
    `report.png`: size on disk and gzipped, latency for one example and for a batch, accuracy,
    before and after every technique.

    The model must come from tfrelay's Trainer (or a run_fn calling its `export_model`), be a
    classifier, and have a Sequential or functional tf_keras core ending in a softmax.
    """

    SPEC_CLASS = OptimizerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        examples: types.BaseChannel,
        techniques: Sequence[Technique | Mapping[str, Any]],
        max_accuracy_drop: float | data_types.RuntimeParameter = 0.01,
        model_blessing: types.BaseChannel | None = None,
        train_split: str = "train",
        eval_split: str = "eval",
    ) -> None:
        """Constructs an Optimizer.

        Args:
          model: the trained Model (from tfrelay's Trainer).
          examples: Examples with the train split (fine-tuning, int8 calibration) and the eval
            split (measurements).
          techniques: the techniques in order: Distill / Prune / Cluster / Quantize objects from
            `tfrelay.components.optimizer`, or their dict form
            (`{"technique": "prune", "target_sparsity": 0.8}`, `{"technique": "distill",
            "width": 0.25}`).
          max_accuracy_drop: the largest accuracy loss that still blesses the result, as a share
            (0.01 = one point).
          model_blessing: optional blessing of the input model (e.g. the Validator's); when it is
            not blessed, nothing is optimized and the output is not blessed.
          train_split: the split to fine-tune and calibrate on.
          eval_split: the split to measure on.

        Raises:
          ValueError: an unknown technique or setting, a value out of range, or an order that
            cannot work; the message says what to change.
        """
        if model is None or examples is None:
            raise ValueError(
                "Optimizer needs model=trainer.outputs['model'] and "
                "examples=example_gen.outputs['examples'] (train split to fine-tune and "
                "calibrate on, eval split to measure on)."
            )
        parsed = parse_techniques(techniques)
        if _known_at_construction(max_accuracy_drop):
            max_accuracy_drop = validate_max_accuracy_drop(max_accuracy_drop)
        for name, split in ((TRAIN_SPLIT_KEY, train_split), (EVAL_SPLIT_KEY, eval_split)):
            if not isinstance(split, str) or not split.strip():
                raise ValueError(f"{name} must name a split of the Examples, got {split!r}.")
        spec = OptimizerSpec(
            model=model,
            examples=examples,
            model_blessing=model_blessing,
            techniques=json.dumps([to_dict(t) for t in parsed], sort_keys=True),
            max_accuracy_drop=max_accuracy_drop,
            train_split=train_split,
            eval_split=eval_split,
            optimized_model=types.Channel(type=standard_artifacts.Model),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            report=types.Channel(type=OptimizationReport),
        )
        super().__init__(spec=spec)
