"""The ServingDeployer's channel and parameter keys (issue 15), as TFX's
`standard_component_specs`, and the values of its `target` parameter.

One keys module per component (why: `tfrelay.components.trainer.keys`). It imports nothing, so
the executor imports it at the top (`component.py` imports the executor for its EXECUTOR_SPEC).
The target values are here too because both sides compare against them.
"""

# Channel keys.
PUSHED_MODEL_KEY = "pushed_model"
ENDPOINT_KEY = "serving_endpoint"  # the output ServingEndpoint artifact

# Execution parameter keys.
MODEL_NAME_KEY = "model_name"
BASE_PATH_KEY = "base_path"
TARGET_KEY = "target"
ENDPOINT_URL_KEY = "endpoint"  # the server's REST URL
TIMEOUT_KEY = "timeout_seconds"
POLL_SECONDS_KEY = "poll_seconds"
KUBERNETES_CONFIG_KEY = "kubernetes_config"  # a dict: reaches the executor JSON-encoded
STATE_DIR_KEY = "state_dir"
PREFER_TFLITE_KEY = "prefer_tflite_model"  # int 1/0
SERVER_COMMAND_KEY = "server_command"

# Values of TARGET_KEY.
LOCAL = "local"
KUBERNETES = "kubernetes"
