"""The Validator executor: TFX's Evaluator, with the baseline fetched from the bucket, and the
serving contract and diagnostics added."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import tensorflow_model_analysis as tfma
from absl import logging
from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils, path_utils, proto_utils

from tfrelay.components import properties
from tfrelay.components.validator import evaluation, keys
from tfrelay.components.validator.baseline import fetch_baseline
from tfrelay.components.validator.serving_contract import (
    check_serving_contract,
    prediction_shape_change,
)

_BLESSED_FILE = "BLESSED"
_NOT_BLESSED_FILE = "NOT_BLESSED"


def _write_blessing(blessing: types.Artifact, blessed: bool) -> None:
    for name in (_BLESSED_FILE, _NOT_BLESSED_FILE):
        path = os.path.join(blessing.uri, name)
        if fileio.exists(path):
            fileio.remove(path)
    # The marker files TFX's Evaluator writes (an empty write: gfile creates files lazily).
    io_utils.write_string_file(
        os.path.join(blessing.uri, _BLESSED_FILE if blessed else _NOT_BLESSED_FILE), ""
    )
    blessing.set_int_custom_property(properties.BLESSED, int(blessed))


class Executor(evaluator_executor.Executor):
    """Runs TFMA (candidate vs the bucket's baseline) and the serving-contract checks."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Evaluates the candidate with TFX's Evaluator, then blesses it only if the thresholds
        and the serving contract hold.

        Args:
          input_dict: `examples`, `model`, optionally `schema`.
          output_dict: `evaluation` (TFMA's results) and `blessing`.
          exec_properties: `eval_config` (JSON), optionally `baseline_base_path`,
            `example_splits` and `check_serving_contract` (1/0).
        """
        eval_config = tfma.EvalConfig()
        proto_utils.json_to_proto(exec_properties[keys.EVAL_CONFIG_KEY], eval_config)
        base_path = exec_properties.get(keys.BASELINE_BASE_PATH_KEY) or ""
        model = artifact_utils.get_single_instance(input_dict[keys.MODEL_KEY])
        candidate_path = path_utils.serving_model_path(model.uri)
        workdir = tempfile.mkdtemp(prefix="tfrelay-validator-")
        skipped_baseline = None  # a baseline whose predictions cannot be compared
        try:
            baseline = None
            if base_path:
                baseline_uri = os.path.join(workdir, "baseline")
                baseline = fetch_baseline(base_path, path_utils.serving_model_dir(baseline_uri))
            if baseline is not None:
                spec = next(m for m in eval_config.model_specs if not m.is_baseline)
                change = prediction_shape_change(
                    baseline.local_path, candidate_path, spec.signature_name, spec.prediction_key
                )
                if change:
                    logging.warning(
                        "Validator: %s, so the candidate cannot be compared with version %d: "
                        "change thresholds are skipped, value thresholds still apply.",
                        change,
                        baseline.version,
                    )
                    skipped_baseline = baseline
                    baseline = None
            inputs = dict(input_dict)
            if baseline is not None:
                baseline_model = standard_artifacts.Model()
                baseline_model.uri = os.path.dirname(baseline.local_path)
                inputs[keys.BASELINE_MODEL_KEY] = [baseline_model]
            else:
                eval_config = evaluation.without_baseline(eval_config)
            splits = exec_properties.get(keys.EXAMPLE_SPLITS_KEY)
            tfx_properties = {
                keys.EVAL_CONFIG_KEY: proto_utils.proto_to_json(eval_config),
                keys.EXAMPLE_SPLITS_KEY: splits if isinstance(splits, str) else json.dumps(splits),
            }
            logging.info(
                "Validator: evaluating %s%s",
                candidate_path,
                f" against version {baseline.version} ({baseline.url})"
                if baseline
                else " (no baseline: first push)",
            )
            super().Do(inputs, output_dict, tfx_properties)

            evaluation_artifact = artifact_utils.get_single_instance(
                output_dict[keys.EVALUATION_KEY]
            )
            blessing = artifact_utils.get_single_instance(output_dict[keys.BLESSING_KEY])
            failed = [f.description for f in evaluation.threshold_failures(evaluation_artifact.uri)]
            metrics = evaluation.overall_metrics(evaluation_artifact.uri)
            if int(exec_properties.get(keys.CHECK_SERVING_CONTRACT_KEY, 1)):
                reference = baseline or skipped_baseline
                contract_failures, replayed = check_serving_contract(
                    candidate_path, reference.local_path if reference else None
                )
                failed.extend(contract_failures)
                logging.info(
                    "Validator: serving contract checked (%d warmup requests replayed)", replayed
                )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

        blessed = not failed and blessing.get_int_custom_property(properties.BLESSED) == 1
        _write_blessing(blessing, blessed)
        blessing.set_string_custom_property(properties.METRICS, json.dumps(metrics, sort_keys=True))
        blessing.set_string_custom_property(properties.FAILED_CHECKS, json.dumps(failed))
        blessing.set_string_custom_property(properties.CURRENT_MODEL_URI, model.uri)
        reference = baseline or skipped_baseline
        blessing.set_string_custom_property(
            properties.BASELINE_URI, reference.url if reference else ""
        )
        blessing.set_int_custom_property(
            properties.BASELINE_VERSION, reference.version if reference else -1
        )
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        if blessed:
            logging.info("Validator: BLESSED (%s)", shown)
        else:
            logging.warning(
                "Validator: NOT BLESSED (%s). Failed checks:\n  - %s",
                shown,
                "\n  - ".join(failed or ["TFMA validation failed"]),
            )
