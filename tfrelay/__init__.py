"""tfrelay: TFX components that push versioned SavedModels to a bucket, and a model server that
polls it. See docs/architecture.md for the architecture.

Importing any `tfrelay.*` module runs this file first, so it is the one place that can pin the
Keras flavour before TensorFlow is imported by anything below it.
"""

import os

# tensorflow-model-optimization only supports Keras 2 (tf_keras). TensorFlow reads this variable
# when `tf.keras` is first resolved, so every entry point (CLI, tests, notebooks, KFP containers)
# must see it before that happens. We override rather than `setdefault`: a stray
# TF_USE_LEGACY_KERAS=0 in a user's shell would otherwise break the optimizer deep inside TFMOT.
os.environ["TF_USE_LEGACY_KERAS"] = "1"

from tfrelay.version import __version__

__all__ = ["__version__"]
