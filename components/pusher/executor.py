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
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfrelay.components import properties
from tfrelay.components.pusher import push
from tfrelay.serving.storage import bucket

# The push record is also kept in the PushedModel's URI: a small archive of what was pushed where
# (TFX's Pusher copies the whole model there; the bucket already holds it).
PUSH_RECORD_ARCHIVE = posixpath.basename(bucket.PUSH_RECORD_FILE)


class Executor(tfx_pusher_executor.Executor):
    """Pushes a blessed model to a bucket following tfrelay's bucket contract."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Pushes the model if it is blessed (or if no blessing is wired, as TFX's Pusher does).

        Args:
          input_dict: `model` (one Model) and optionally `model_blessing` (one ModelBlessing).
          output_dict: `pushed_model` (one PushedModel), which receives `pushed`,
            `pushed_destination`, `pushed_version`, the model name and the push reason.
          exec_properties: `base_path`, and optionally `model_name`, `keep_last`, `versioning`.

        Raises:
          ValueError: invalid exec properties (e.g. a runtime parameter with a bad value).
          push.PushError: the push failed; the message says what to do next.
        """
        # Imported here because component.py imports this module for its EXECUTOR_SPEC; the keys
        # live with the ComponentSpec that defines them.
        from tfrelay.components.pusher import component

        self._log_startup(input_dict, output_dict, exec_properties)
        pushed_model = artifact_utils.get_single_instance(output_dict[component.PUSHED_MODEL_KEY])
        base_path = exec_properties.get(component.BASE_PATH_KEY)
        model_name = exec_properties.get(component.MODEL_NAME_KEY)
        keep_last = exec_properties.get(component.KEEP_LAST_KEY)
        versioning = exec_properties.get(component.VERSIONING_KEY)
        keep_last = 0 if keep_last is None else keep_last
        versioning = versioning or push.VERSIONING_NEXT_INTEGER
        push.validate_base_path(base_path)
        push.validate_model_name(model_name)
        push.validate_keep_last(keep_last)
        push.validate_versioning(versioning)
        model_name = model_name or push.default_model_name(base_path)
        pushed_model.set_string_custom_property(properties.PUSHED_MODEL_NAME, model_name)

        blessings = input_dict.get(component.MODEL_BLESSING_KEY)
        blessing = artifact_utils.get_single_instance(blessings) if blessings else None
        if not self.CheckBlessing(input_dict):
            assert blessing is not None  # CheckBlessing only refuses a present blessing
            reason = push.not_blessed_reason(
                blessing.uri,
                push.parse_failed_checks(
                    blessing.get_string_custom_property(properties.FAILED_CHECKS)
                ),
            )
            logging.info("%s", reason)
            self._MarkNotPushed(pushed_model)
            pushed_model.set_string_custom_property(properties.PUSH_REASON, reason)
            return

        model = artifact_utils.get_single_instance(input_dict[component.MODEL_KEY])
        request = push.PushRequest(
            model_dir=self._model_dir(model),
            base_path=base_path,
            model_name=model_name,
            keep_last=keep_last,
            versioning=versioning,
            lineage=self._lineage(),
            source_model_uri=model.uri,
            metrics=push.parse_metrics(
                blessing.get_string_custom_property(properties.METRICS) if blessing else ""
            ),
            blessed=True if blessing is not None else None,
        )
        result = push.push_model(request, environ=os.environ)

        self._MarkPushed(
            pushed_model,
            pushed_destination=result.destination,
            pushed_version=str(result.version),
        )
        pushed_model.set_string_custom_property(properties.PUSH_REASON, result.reason)
        fileio.makedirs(pushed_model.uri)
        with fileio.open(os.path.join(pushed_model.uri, PUSH_RECORD_ARCHIVE), "w") as archive:
            archive.write(json.dumps(result.record, indent=2, sort_keys=True) + "\n")
        logging.info("%s", result.reason)

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
