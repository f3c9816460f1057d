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
from tfx.components.evaluator import constants as evaluator_constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils, path_utils, proto_utils

from tfrelay.components import properties
from tfrelay.components.validator import evaluation, keys, shadow
from tfrelay.components.validator.baseline import Baseline, fetch_baseline
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


def _shadow_validation(
    exec_properties: dict[str, Any],
    candidate_path: str,
    reference: Baseline | None,
    workdir: str,
) -> tuple[shadow.ShadowReport | None, list[str]]:
    """Replays the logged requests; (report, failed checks); (None, [why]) if it could not run."""
    location = exec_properties[keys.SHADOW_REQUESTS_KEY]
    max_records = exec_properties.get(keys.SHADOW_MAX_RECORDS_KEY)
    limits = shadow.ReadLimits(max_records=int(max_records or shadow.ReadLimits.max_records))
    thresholds = shadow.Thresholds(
        max_prediction_change=exec_properties.get(keys.MAX_PREDICTION_CHANGE_KEY),
        max_regression_difference=exec_properties.get(keys.MAX_REGRESSION_DIFFERENCE_KEY),
    )
    warmup = bool(int(exec_properties.get(keys.WARMUP_FROM_LOGS_KEY) or 0))
    warmup_limit = exec_properties.get(keys.WARMUP_MAX_RECORDS_KEY)
    try:
        report = shadow.shadow_validate(
            location,
            candidate_path,
            reference.local_path if reference else None,
            reference.version if reference else None,
            limits,
            warmup_path=os.path.join(workdir, keys.WARMUP_REQUESTS_FILE) if warmup else None,
            warmup_limit=int(warmup_limit or shadow.DEFAULT_WARMUP_RECORDS),
        )
    except Exception as err:  # noqa: BLE001 - a check that cannot run withholds the blessing
        logging.exception("Validator: shadow validation could not run")
        return None, [f"shadow traffic: could not replay {location}: {type(err).__name__}: {err}"]
    if reference is None:
        logging.info("Validator: no serving version: shadow traffic replayed, not compared")
    elif not (report.comparison.classified or report.comparison.differences):
        logging.warning(
            "Validator: no logged prediction at %s could be compared (%s): the shadow "
            "thresholds were not checked",
            location,
            report.to_json(),
        )
    return report, shadow.failures(report, thresholds)


def _publish_shadow(
    report: shadow.ShadowReport | None,
    workdir: str,
    blessing: types.Artifact,
    evaluation_artifact: types.Artifact,
) -> None:
    """Writes the report beside the blessing and the evaluation, and the warmup sample."""
    text = json.dumps(report.to_json() if report else None, indent=2, sort_keys=True) + "\n"
    for artifact in (blessing, evaluation_artifact):
        io_utils.write_string_file(os.path.join(artifact.uri, keys.SHADOW_REPORT_FILE), text)
    blessing.set_string_custom_property(
        keys.SHADOW_REPORT_PROPERTY, json.dumps(report.to_json() if report else None)
    )
    records = 0
    local = os.path.join(workdir, keys.WARMUP_REQUESTS_FILE)
    if report is not None and report.warmup_records and os.path.exists(local):
        # Into the Validator's own output: its input Model is never changed.
        fileio.copy(local, os.path.join(blessing.uri, keys.WARMUP_REQUESTS_FILE), overwrite=True)
        records = report.warmup_records
    blessing.set_int_custom_property(keys.WARMUP_REQUESTS_PROPERTY, records)


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
            `example_splits`, `check_serving_contract` (1/0) and the shadow validation's
            `shadow_requests`, `shadow_max_records`, `max_prediction_change`,
            `max_regression_difference`, `warmup_from_logs` (1/0), `warmup_max_records`.
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
            # TFX's Evaluator records the baseline's ML Metadata id, but a bucket version has
            # none (0). On Kubeflow, TFX's entrypoint then failed turning id 0 into an artifact
            # name (KeyError: 0 in refactor_model_blessing); the blessing names the baseline by
            # URI and version instead (below).
            blessing_properties = artifact_utils.get_single_instance(
                output_dict[keys.BLESSING_KEY]
            ).mlmd_artifact.custom_properties
            if evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY in blessing_properties:
                del blessing_properties[evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY]

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
            report = None
            if exec_properties.get(keys.SHADOW_REQUESTS_KEY):
                report, shadow_failed = _shadow_validation(
                    exec_properties, candidate_path, baseline or skipped_baseline, workdir
                )
                failed.extend(shadow_failed)
                metrics.update(report.metrics() if report else {})
                _publish_shadow(report, workdir, blessing, evaluation_artifact)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

        blessed = not failed and blessing.get_int_custom_property(properties.BLESSED) == 1
        _write_blessing(blessing, blessed)
        blessing.set_string_custom_property(properties.METRICS, json.dumps(metrics, sort_keys=True))
        blessing.set_string_custom_property(properties.FAILED_CHECKS, json.dumps(failed))
        if report is None:
            blessing.set_int_custom_property(keys.WARMUP_REQUESTS_PROPERTY, 0)
            blessing.set_string_custom_property(keys.SHADOW_REPORT_PROPERTY, "")
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
