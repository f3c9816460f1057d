"""The Validator's channel and parameter keys (issue 15), as TFX's `standard_component_specs`.

One keys module per component (why: `tfrelay.components.trainer.keys`). The executor hands its
channels and `eval_config` / `example_splits` on to TFX's Evaluator executor, which reads them by
TFX's keys, so those values are TFX's; tests/components/test_keys.py checks they stay equal.
"""

# Channel keys (the same as TFX's Evaluator).
EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
SCHEMA_KEY = "schema"
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"
# Not a channel of the Validator: the input the executor adds for TFX's Evaluator when the bucket
# holds a baseline version.
BASELINE_MODEL_KEY = "baseline_model"

# Execution parameter keys.
EVAL_CONFIG_KEY = "eval_config"
BASELINE_BASE_PATH_KEY = "baseline_base_path"
EXAMPLE_SPLITS_KEY = "example_splits"  # a list: TFX's Evaluator wants it JSON-encoded
CHECK_SERVING_CONTRACT_KEY = "check_serving_contract"  # int 1/0
