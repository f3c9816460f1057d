"""The Trainer executor: TFX glue around a `run_fn` (the built-in tabular one or the user's)."""

from __future__ import annotations

from typing import Any

from absl import logging
from tfx import types
from tfx.components.trainer import fn_args_utils
from tfx.components.util import udf_utils
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfrelay.components.exec_properties import decoded
from tfrelay.components.trainer import keys, tabular

# The built-in model's list parameters, JSON-encoded by TFX; its str parameters (label_key,
# task, core_model_fn) are passed on as they are (issue 15).
_LIST_KEYS = (keys.FEATURE_KEYS_KEY, keys.HIDDEN_UNITS_KEY)


class Executor(base_executor.BaseExecutor):
    """Trains and exports the model for the Trainer component."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Runs the user's `run_fn`, or the built-in tabular one, and checks it exported a model.

        Args:
          input_dict: `examples`, optionally `schema`.
          output_dict: `model` (the export goes to its Format-Serving directory) and
            `model_run`.
          exec_properties: `train_args`, `eval_args`, and either the user's code (`module_file`,
            `module_path` or `run_fn`, plus `custom_config`) or the built-in model's parameters
            (`label_key`, `feature_keys`, `task`, `hidden_units`, ...).

        Raises:
          RuntimeError: the run_fn exported nothing to `fn_args.serving_model_dir`.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(output_dict[keys.MODEL_KEY])
        model_run = artifact_utils.get_single_instance(output_dict[keys.MODEL_RUN_KEY])
        fn_args = fn_args_utils.get_common_fn_args(input_dict, exec_properties)
        fn_args.serving_model_dir = path_utils.serving_model_dir(model.uri)
        fn_args.eval_model_dir = path_utils.eval_model_dir(model.uri)
        fn_args.model_run_dir = model_run.uri
        fn_args.base_model = None

        user_code = (
            exec_properties.get(keys.MODULE_FILE_KEY)
            or exec_properties.get(keys.MODULE_PATH_KEY)
            or exec_properties.get(keys.RUN_FN_KEY)
        )
        if user_code:
            run_fn = udf_utils.get_fn(exec_properties, keys.RUN_FN_KEY)
            fn_args.custom_config = decoded(exec_properties.get(keys.CUSTOM_CONFIG_KEY)) or {}
            logging.info("Trainer: running the user's run_fn")
        else:
            run_fn = tabular.run_fn
            builtin = {
                k: decoded(exec_properties.get(k)) if k in _LIST_KEYS else exec_properties.get(k)
                for k in keys.BUILTIN_MODEL_KEYS
            }
            builtin = {k: v for k, v in builtin.items() if v not in (None, "")}
            custom = decoded(exec_properties.get(keys.CUSTOM_CONFIG_KEY)) or {}
            fn_args.custom_config = {**custom, tabular.TABULAR_CONFIG_KEY: builtin}
            logging.info("Trainer: training the built-in tabular model %s", builtin)
        run_fn(fn_args)
        if not fileio.exists(fn_args.serving_model_dir):
            raise RuntimeError(
                f"run_fn finished without exporting a model to {fn_args.serving_model_dir} "
                "(fn_args.serving_model_dir)"
            )
        logging.info("Trainer: model written to %s", model.uri)
