"""The Trainer's channel and parameter keys (issue 15), as TFX's `standard_component_specs`.

One keys module per component rather than one `components/keys.py` for all five: each component
is a self-contained sub-package, and the same word names different things in different
components (`model` is the Trainer's output but the Validator's, Optimizer's and BucketPusher's
input; `base_path` is where the BucketPusher writes and what the ServingDeployer's server polls),
so a flat namespace shared by five specs would tie them together for nothing. The module imports
nothing, so `component.py` (the spec), `executor.py` (the glue, which `component.py` imports for
its EXECUTOR_SPEC) and tests all read the keys from here without an import cycle or TFX.

The values that TFX's own code reads are TFX's (`fn_args_utils.get_common_fn_args` reads the
channels, `train_args`, `eval_args` and `custom_config`; `udf_utils` reads `module_file`,
`module_path` and `run_fn`); tests/components/test_keys.py checks they stay equal.
"""

# Channel keys (the same as TFX's Trainer).
EXAMPLES_KEY = "examples"
SCHEMA_KEY = "schema"
MODEL_KEY = "model"
MODEL_RUN_KEY = "model_run"

# Execution parameter keys: the user's code, as for TFX's Trainer.
MODULE_FILE_KEY = "module_file"
MODULE_PATH_KEY = "module_path"
RUN_FN_KEY = "run_fn"  # also the function name udf_utils.get_fn looks up
TRAIN_ARGS_KEY = "train_args"
EVAL_ARGS_KEY = "eval_args"
CUSTOM_CONFIG_KEY = "custom_config"  # a dict: reaches the executor JSON-encoded

# Execution parameter keys of the built-in tabular model.
LABEL_KEY = "label_key"
FEATURE_KEYS_KEY = "feature_keys"  # a list: reaches the executor JSON-encoded
TASK_KEY = "task"
HIDDEN_UNITS_KEY = "hidden_units"  # a list: reaches the executor JSON-encoded
EPOCHS_KEY = "epochs"
BATCH_SIZE_KEY = "batch_size"
LEARNING_RATE_KEY = "learning_rate"
WARMUP_EXAMPLES_KEY = "warmup_examples"
CORE_MODEL_FN_KEY = "core_model_fn"

# The built-in model's parameters, which the executor hands to `tabular.run_fn` in
# `custom_config[tabular.TABULAR_CONFIG_KEY]`.
BUILTIN_MODEL_KEYS = (
    LABEL_KEY,
    FEATURE_KEYS_KEY,
    TASK_KEY,
    HIDDEN_UNITS_KEY,
    EPOCHS_KEY,
    BATCH_SIZE_KEY,
    LEARNING_RATE_KEY,
    WARMUP_EXAMPLES_KEY,
    CORE_MODEL_FN_KEY,
)
