"""The BucketPusher's channel and parameter keys (issue 15), as TFX's `standard_component_specs`.

One keys module per component (why: `tfrelay.components.trainer.keys`). It imports nothing, TFX
included, so the executor imports it at the top instead of reaching into `component.py` (which
imports the executor for its EXECUTOR_SPEC), and `tfrelay.components.pusher` stays importable on
the serving-only install (issue 13).

The channel keys TFX's Pusher has are TFX's values: the executor reuses TFX's `CheckBlessing`,
which looks the blessing up by `model_blessing`. tests/components/test_keys.py checks they stay
equal to `tfx.types.standard_component_specs`.
"""

# Channel keys, the same as TFX's Pusher.
MODEL_KEY = "model"
MODEL_BLESSING_KEY = "model_blessing"
PUSHED_MODEL_KEY = "pushed_model"
# The model pushed instead when `model` is not blessed (e.g. the original of an optimized model).
FALLBACK_MODEL_KEY = "fallback_model"
FALLBACK_MODEL_BLESSING_KEY = "fallback_model_blessing"

# Execution parameter keys.
BASE_PATH_KEY = "base_path"
MODEL_NAME_KEY = "model_name"
KEEP_LAST_KEY = "keep_last"
VERSIONING_KEY = "versioning"
FALLBACK_KEY = "fallback"  # int 1/0: push fallback_model when model is not blessed

# An input artifact's own URI, when the executor was handed a local copy of it (tfrelay's
# Kubeflow step entrypoint stages `s3://` artifacts, which the image's TensorFlow cannot open).
REMOTE_URI_PROPERTY = "tfrelay_remote_uri"
