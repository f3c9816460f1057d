"""Artifact custom-property keys that one tfrelay component writes and another reads.

TFX's own keys are repeated here (rather than imported from TFX internals) because they are a
public contract: TFX's Pusher reads `blessed`, and users' dashboards read `pushed*`.
"""

# ModelBlessing (written by the Validator and the Optimizer; read by the BucketPusher).
BLESSED = "blessed"  # int 1/0, as TFX's Evaluator and Pusher use it
# JSON object {metric name: value} of the candidate on the overall slice.
METRICS = "tfrelay_metrics"
# JSON list of human-readable reasons why the model was not blessed (empty when blessed).
FAILED_CHECKS = "tfrelay_failed_checks"
# Storage URL of the baseline version the candidate was compared with ("" on a first run).
BASELINE_URI = "baseline_model"
BASELINE_VERSION = "tfrelay_baseline_version"
CURRENT_MODEL_URI = "current_model"

# PushedModel (written by the BucketPusher; read by the ServingDeployer), as TFX's Pusher.
PUSHED = "pushed"  # int 1/0
PUSHED_DESTINATION = "pushed_destination"  # the version directory's URL
PUSHED_VERSION = "pushed_version"  # the version number, as a string
PUSHED_MODEL_NAME = "tfrelay_model_name"
PUSH_REASON = "tfrelay_push_reason"  # why this model (or none) was pushed
# Which input the BucketPusher pushed: "model", or "fallback_model" when the model was not
# blessed and the pusher fell back (e.g. to the original model when the optimized one lost too
# much accuracy); "" when nothing was pushed.
PUSHED_INPUT = "tfrelay_pushed_input"
PUSHED_MODEL_URI = "tfrelay_pushed_model_uri"  # the pushed Model artifact's URI

# Optimizer outputs (optimized Model, ModelBlessing, OptimizationReport).
ORIGINAL_MODEL_URI = "tfrelay_original_model"  # the Model artifact that was optimized
OPTIMIZATION = "tfrelay_optimization"  # the techniques applied, e.g. "prune 80% -> int8"
