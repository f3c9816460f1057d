"""The Optimizer's channel and parameter keys (issue 15), as TFX's `standard_component_specs`.

One keys module per component (why: `tfrelay.components.trainer.keys`). It imports nothing, so
the executor imports it at the top instead of reaching into `component.py`, which imports the
executor for its EXECUTOR_SPEC.
"""

# Channel keys.
MODEL_KEY = "model"
EXAMPLES_KEY = "examples"
MODEL_BLESSING_KEY = "model_blessing"
OPTIMIZED_MODEL_KEY = "optimized_model"
BLESSING_KEY = "blessing"
REPORT_KEY = "report"

# Execution parameter keys.
TECHNIQUES_KEY = "techniques"  # a JSON string (see OptimizerSpec)
MAX_ACCURACY_DROP_KEY = "max_accuracy_drop"
TRAIN_SPLIT_KEY = "train_split"
EVAL_SPLIT_KEY = "eval_split"
