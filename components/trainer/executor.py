"""The Trainer executor: TFX glue around a `run_fn` (the built-in tabular one or the user's)."""

from __future__ import annotations

import json
from typing import Any

from absl import logging
from tfx import types
from tfx.components.trainer import fn_args_utils
from tfx.components.util import udf_utils
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

from tfrelay.components.trainer import tabular

_BUILTIN_KEYS = (
    "label_key",
    "feature_keys",
    "task",
    "hidden_units",
    "epochs",
    "batch_size",
    "learning_rate",
    "warmup_examples",
    "core_model_fn",
)


def _decoded(value: Any) -> Any:
    # List and dict parameters reach executors JSON-encoded.
    if isinstance(value, str) and value[:1] in ("[", "{"):
        return json.loads(value)
    return value


class Executor(base_executor.BaseExecutor):
    """Trains and exports the model for the Trainer component."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(output_dict["model"])
        model_run = artifact_utils.get_single_instance(output_dict["model_run"])
        fn_args = fn_args_utils.get_common_fn_args(input_dict, exec_properties)
        fn_args.serving_model_dir = path_utils.serving_model_dir(model.uri)
        fn_args.eval_model_dir = path_utils.eval_model_dir(model.uri)
        fn_args.model_run_dir = model_run.uri
        fn_args.base_model = None

        user_code = (
            exec_properties.get("module_file")
            or exec_properties.get("module_path")
            or exec_properties.get("run_fn")
        )
        if user_code:
            run_fn = udf_utils.get_fn(exec_properties, "run_fn")
            fn_args.custom_config = _decoded(exec_properties.get("custom_config")) or {}
            logging.info("Trainer: running the user's run_fn")
        else:
            run_fn = tabular.run_fn
            builtin = {k: _decoded(exec_properties.get(k)) for k in _BUILTIN_KEYS}
            builtin = {k: v for k, v in builtin.items() if v not in (None, "")}
            custom = _decoded(exec_properties.get("custom_config")) or {}
            fn_args.custom_config = {**custom, tabular.TABULAR_CONFIG_KEY: builtin}
            logging.info("Trainer: training the built-in tabular model %s", builtin)
        run_fn(fn_args)
        if not fileio.exists(fn_args.serving_model_dir):
            raise RuntimeError(
                f"run_fn finished without exporting a model to {fn_args.serving_model_dir} "
                "(fn_args.serving_model_dir)"
            )
        logging.info("Trainer: model written to %s", model.uri)
