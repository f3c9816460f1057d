"""The Optimizer executor: TFX glue around `optimize.optimize`.

It writes the ModelBlessing the way tfrelay's Validator does (TFX's BLESSED / NOT_BLESSED marker
file and `blessed` property, plus `tfrelay_metrics` and `tfrelay_failed_checks`), so the
BucketPusher and TFX's own Pusher read it unchanged.
"""

from __future__ import annotations

import json
import os
from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils

from tfrelay.components import properties
from tfrelay.components.optimizer import data, keys, optimize, report, settings

_BLESSED_FILE = "BLESSED"
_NOT_BLESSED_FILE = "NOT_BLESSED"


def write_blessing(
    blessing: types.Artifact,
    blessed: bool,
    failed_checks: list[str],
    metrics: dict,
    model_uri: str,
) -> None:
    """Marks a ModelBlessing as TFX's Evaluator and tfrelay's Validator do."""
    for name in (_BLESSED_FILE, _NOT_BLESSED_FILE):
        path = os.path.join(blessing.uri, name)
        if fileio.exists(path):
            fileio.remove(path)
    io_utils.write_string_file(
        os.path.join(blessing.uri, _BLESSED_FILE if blessed else _NOT_BLESSED_FILE), ""
    )
    blessing.set_int_custom_property(properties.BLESSED, int(blessed))
    blessing.set_string_custom_property(properties.METRICS, json.dumps(metrics, sort_keys=True))
    blessing.set_string_custom_property(properties.FAILED_CHECKS, json.dumps(failed_checks))
    blessing.set_string_custom_property(properties.CURRENT_MODEL_URI, model_uri)


def _split_files(examples: types.Artifact, split: str) -> list[str]:
    available = artifact_utils.decode_split_names(examples.split_names)
    if split not in available:
        raise ValueError(
            f"The Examples at {examples.uri} have no {split!r} split (splits: "
            f"{', '.join(available) or 'none'}); set the Optimizer's train_split / eval_split."
        )
    files = data.split_files(artifact_utils.get_split_uri([examples], split))
    if not files:
        raise ValueError(f"The {split!r} split of {examples.uri} has no record files.")
    return files


def _input_refusal(blessings: list[types.Artifact] | None) -> str | None:
    """Why the input model must not be optimized (its blessing is wired and negative)."""
    if not blessings:
        return None
    blessing = artifact_utils.get_single_instance(blessings)
    if blessing.get_int_custom_property(properties.BLESSED) == 1:
        return None
    checks = blessing.get_string_custom_property(properties.FAILED_CHECKS)
    try:
        failed = json.loads(checks) if checks else []
    except ValueError:
        failed = [checks]
    reason = f"the input model was not blessed (ModelBlessing {blessing.uri})"
    if failed:
        reason += ": " + "; ".join(str(check) for check in failed)
    return reason + "; nothing was optimized"


class Executor(base_executor.BaseExecutor):
    """Optimizes, measures and blesses a model for the Optimizer component."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Runs the techniques and writes the optimized Model, the blessing and the report.

        Args:
          input_dict: `model`, `examples`, optionally `model_blessing`.
          output_dict: `optimized_model`, `blessing`, `report`.
          exec_properties: `techniques` (JSON list), `max_accuracy_drop`, `train_split`,
            `eval_split`.

        Raises:
          ValueError: invalid settings (e.g. from a runtime parameter), a missing split, or a
            model the Optimizer cannot read.
          techniques.TechniqueError: a technique failed; the message names it (and the layer).
        """
        # Imported here because component.py imports this module for its EXECUTOR_SPEC; only
        # the max_accuracy_drop check is needed from it (the keys are in keys.py, issue 15).
        from tfrelay.components.optimizer import component

        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(input_dict[keys.MODEL_KEY])
        examples = artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY])
        optimized = artifact_utils.get_single_instance(output_dict[keys.OPTIMIZED_MODEL_KEY])
        blessing = artifact_utils.get_single_instance(output_dict[keys.BLESSING_KEY])
        report_artifact = artifact_utils.get_single_instance(output_dict[keys.REPORT_KEY])
        techniques = settings.parse_techniques(exec_properties[keys.TECHNIQUES_KEY])
        max_drop = component.validate_max_accuracy_drop(exec_properties[keys.MAX_ACCURACY_DROP_KEY])
        description = settings.describe(techniques)
        for artifact in (optimized, blessing, report_artifact):
            artifact.set_string_custom_property(properties.ORIGINAL_MODEL_URI, model.uri)
            artifact.set_string_custom_property(properties.OPTIMIZATION, description)

        refusal = _input_refusal(input_dict.get(keys.MODEL_BLESSING_KEY))
        if refusal:
            write_blessing(blessing, False, [refusal], {}, optimized.uri)
            report.write(
                report.skipped(refusal, model.uri, [settings.to_dict(t) for t in techniques]),
                report_artifact.uri,
            )
            logging.warning("Optimizer: NOT BLESSED: %s.", refusal)
            return

        result = optimize.optimize(
            model.uri,
            optimized.uri,
            _split_files(examples, exec_properties.get(keys.TRAIN_SPLIT_KEY) or "train"),
            _split_files(examples, exec_properties.get(keys.EVAL_SPLIT_KEY) or "eval"),
            techniques,
            max_drop,
        )
        write_blessing(
            blessing, result.blessed, result.failed_checks, result.metrics, optimized.uri
        )
        report.write(result.report, report_artifact.uri)
        summary = result.report["result"]
        report_artifact.set_int_custom_property(properties.BLESSED, int(result.blessed))
        for key in ("accuracy_drop", "gzipped_size_ratio", "latency_single_speedup"):
            if summary.get(key) is not None:
                report_artifact.set_float_custom_property(key, float(summary[key]))
        shown = (
            f"{description}: accuracy {summary['accuracy_before']:.4f} -> "
            f"{summary['accuracy_after']:.4f} (limit: -{max_drop:.4f}), gzipped "
            f"{summary['gzipped_size_ratio']}x smaller, report at {report_artifact.uri}"
        )
        if result.blessed:
            logging.info("Optimizer: BLESSED (%s)", shown)
        else:
            logging.warning(
                "Optimizer: NOT BLESSED (%s). Failed checks:\n  - %s",
                shown,
                "\n  - ".join(result.failed_checks),
            )
