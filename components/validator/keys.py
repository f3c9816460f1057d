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

# Shadow validation (issue 16): logged requests replayed against the candidate and the serving
# version (`shadow.py`).
SHADOW_REQUESTS_KEY = "shadow_requests"  # a TFRecord file, directory or prefix of PredictionLogs
SHADOW_MAX_RECORDS_KEY = "shadow_max_records"  # int: records read at most
MAX_PREDICTION_CHANGE_KEY = "max_prediction_change"  # float 0..1, optional
MAX_REGRESSION_DIFFERENCE_KEY = "max_regression_difference"  # float >= 0 (p99), optional
WARMUP_FROM_LOGS_KEY = "warmup_from_logs"  # int 1/0
WARMUP_MAX_RECORDS_KEY = "warmup_max_records"  # int 1..1000

# What the Validator writes beside BLESSED / NOT_BLESSED in its ModelBlessing's directory, and
# the blessing's custom properties that describe them. When WARMUP_REQUESTS_PROPERTY of the
# blessing of the model it pushes is > 0, the BucketPusher ships <blessing.uri>/
# WARMUP_REQUESTS_FILE as the version's assets.extra/tf_serving_warmup_requests (the Validator
# never touches its input Model). Found by the blessing's URI, not a recorded path, so it is
# found wherever the orchestrator hands the pusher the artifact (e.g. a staged local copy).
WARMUP_REQUESTS_FILE = "tf_serving_warmup_requests"
WARMUP_REQUESTS_PROPERTY = "tfrelay_warmup_requests"  # int: records in it; 0 when none
SHADOW_REPORT_FILE = "shadow_validation.json"  # also in the ModelEvaluation's directory
SHADOW_REPORT_PROPERTY = "tfrelay_shadow_validation"  # the report as JSON; "" when not run
