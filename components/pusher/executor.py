"""The BucketPusher's executor: TFX glue around `push.push_model`.

It reuses TFX's Pusher executor for the blessing check (`CheckBlessing` reads the ModelBlessing's
`blessed` custom property) and for `_MarkPushed` / `_MarkNotPushed`, so the PushedModel carries
exactly the properties TFX's Pusher writes, plus tfrelay's model name and push reason.
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.components.util import model_utils
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfrelay.components import properties
from tfrelay.components.pusher import keys, push
from tfrelay.components.validator import keys as validator_keys
from tfrelay.serving.storage import bucket

# The push record is also kept in the PushedModel's URI: a small archive of what was pushed where
# (TFX's Pusher copies the whole model there; the bucket already holds it).
PUSH_RECORD_ARCHIVE = posixpath.basename(bucket.PUSH_RECORD_FILE)


def recorded_uri(artifact: types.Artifact) -> str:
    """The artifact's URI as the orchestrator recorded it, for the push record.

    On Kubeflow, tfrelay's step entrypoint hands executors local copies of `s3://` artifacts
    and names the original in `keys.REMOTE_URI_PROPERTY`; elsewhere that is the URI itself.

    Args:
      artifact: an input artifact.

    Returns:
      Its orchestrator-side URI.
    """
    return artifact.get_string_custom_property(keys.REMOTE_URI_PROPERTY) or artifact.uri


def _warmup_requests(blessing: types.Artifact | None) -> str:
    """The Validator's sample of logged requests in the blessing's directory, if it wrote one
    (`warmup_from_logs`); "" keeps the model's own warmup requests."""
    if (
        blessing is None
        or blessing.get_int_custom_property(validator_keys.WARMUP_REQUESTS_PROPERTY) <= 0
    ):
        return ""
    return os.path.join(blessing.uri, validator_keys.WARMUP_REQUESTS_FILE)


class Executor(tfx_pusher_executor.Executor):
    """Pushes a blessed model to a bucket following tfrelay's bucket contract."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Pushes the model if it is blessed (or if no blessing is wired, as TFX's Pusher does),
        else the fallback model if one is wired, `fallback` is on and it is blessed.

        Args:
          input_dict: `model` (one Model), optionally `model_blessing` (one ModelBlessing),
            `fallback_model` and `fallback_model_blessing`.
          output_dict: `pushed_model` (one PushedModel), which receives `pushed`,
            `pushed_destination`, `pushed_version`, the model name and the push reason.
          exec_properties: `base_path`, and optionally `model_name`, `keep_last`, `versioning`,
            `fallback` (1/0).

        Raises:
          ValueError: invalid exec properties (e.g. a runtime parameter with a bad value).
          push.PushError: the push failed; the message says what to do next.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed_model = artifact_utils.get_single_instance(output_dict[keys.PUSHED_MODEL_KEY])
        base_path = exec_properties.get(keys.BASE_PATH_KEY)
        model_name = exec_properties.get(keys.MODEL_NAME_KEY)
        keep_last = exec_properties.get(keys.KEEP_LAST_KEY)
        versioning = exec_properties.get(keys.VERSIONING_KEY)
        # Validated once here (runtime parameters resolve only now); push_model trusts them.
        settings = push.PushSettings.create(base_path, model_name, keep_last, versioning)
        pushed_model.set_string_custom_property(properties.PUSHED_MODEL_NAME, settings.model_name)

        model = artifact_utils.get_single_instance(input_dict[keys.MODEL_KEY])
        blessings = input_dict.get(keys.MODEL_BLESSING_KEY)
        blessing = artifact_utils.get_single_instance(blessings) if blessings else None
        chosen, chosen_blessing = model, blessing
        selected = push.SELECTED_MODEL
        if self.CheckBlessing(input_dict):
            selection = push.selection_reason(
                recorded_uri(blessing) if blessing is not None else None
            )
        else:
            assert blessing is not None  # CheckBlessing only refuses a present blessing
            failed = push.parse_failed_checks(
                blessing.get_string_custom_property(properties.FAILED_CHECKS)
            )
            fallback = self._fallback(input_dict, exec_properties)
            if fallback is None:
                self._not_pushed(pushed_model, push.not_blessed_reason(blessing.uri, failed))
                return
            fallback_model, fallback_blessing = fallback
            if fallback_blessing is not None and not model_utils.is_model_blessed(
                fallback_blessing
            ):
                reason = push.fallback_not_blessed_reason(
                    blessing.uri,
                    failed,
                    fallback_blessing.uri,
                    push.parse_failed_checks(
                        fallback_blessing.get_string_custom_property(properties.FAILED_CHECKS)
                    ),
                )
                self._not_pushed(pushed_model, reason)
                return
            chosen, chosen_blessing = fallback_model, fallback_blessing
            selected = push.SELECTED_FALLBACK
            selection = push.fallback_reason(
                recorded_uri(model), recorded_uri(blessing), failed, recorded_uri(fallback_model)
            )
            logging.warning("BucketPusher: %s", selection)

        request = push.PushRequest.from_settings(
            settings,
            self._model_dir(chosen),
            lineage=self._lineage(),
            source_model_uri=recorded_uri(chosen),
            metrics=push.parse_metrics(
                chosen_blessing.get_string_custom_property(properties.METRICS)
                if chosen_blessing is not None
                else ""
            ),
            blessed=True if chosen_blessing is not None else None,
            selected_input=selected,
            selection_reason=selection,
            warmup_requests=_warmup_requests(chosen_blessing),
        )
        result = push.push_model(request, environ=os.environ)

        self._MarkPushed(
            pushed_model,
            pushed_destination=result.destination,
            pushed_version=str(result.version),
        )
        reason = result.reason
        if selected == push.SELECTED_FALLBACK:
            reason += " " + selection[0].upper() + selection[1:]
        pushed_model.set_string_custom_property(properties.PUSH_REASON, reason)
        pushed_model.set_string_custom_property(properties.PUSHED_INPUT, selected)
        pushed_model.set_string_custom_property(properties.PUSHED_MODEL_URI, recorded_uri(chosen))
        fileio.makedirs(pushed_model.uri)
        with fileio.open(os.path.join(pushed_model.uri, PUSH_RECORD_ARCHIVE), "w") as archive:
            archive.write(json.dumps(result.record, indent=2, sort_keys=True) + "\n")
        logging.info("%s", reason)

    def _fallback(
        self, input_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]
    ) -> tuple[types.Artifact, types.Artifact | None] | None:
        """(fallback model, its blessing or None) when the fallback is wired and on, else None."""
        fallback_models = input_dict.get(keys.FALLBACK_MODEL_KEY)
        if not fallback_models or not int(exec_properties.get(keys.FALLBACK_KEY) or 0):
            return None
        blessings = input_dict.get(keys.FALLBACK_MODEL_BLESSING_KEY)
        return (
            artifact_utils.get_single_instance(fallback_models),
            artifact_utils.get_single_instance(blessings) if blessings else None,
        )

    def _not_pushed(self, pushed_model: types.Artifact, reason: str) -> None:
        logging.info("%s", reason)
        self._MarkNotPushed(pushed_model)
        pushed_model.set_string_custom_property(properties.PUSH_REASON, reason)
        pushed_model.set_string_custom_property(properties.PUSHED_INPUT, "")
        pushed_model.set_string_custom_property(properties.PUSHED_MODEL_URI, "")

    def _model_dir(self, model: types.Artifact) -> str:
        """The exported SavedModel: <uri>/Format-Serving, or the URI itself if that is absent."""
        serving = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
        if fileio.isdir(serving):
            return serving
        logging.warning(
            "%s does not exist; pushing the Model artifact's directory %s itself",
            serving,
            model.uri,
        )
        return model.uri

    def _lineage(self) -> push.Lineage:
        """The pipeline run, as far as the orchestrator tells the executor."""
        context = self._context
        if context is None:
            return push.Lineage()
        info = context.pipeline_info
        node = context.pipeline_node
        return push.Lineage(
            pipeline_name=(info.id or None) if info is not None else None,
            pipeline_run_id=context.pipeline_run_id or None,
            component_id=(node.node_info.id or None) if node is not None else None,
        )
