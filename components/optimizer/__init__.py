"""Optimizer: distills, prunes, clusters and quantizes a trained model, measures size, latency
and accuracy before and after, and blesses the result only if accuracy holds.

`component.py` holds the ComponentSpec and the component, `keys.py` their channel and
parameter keys, `executor.py` the TFX glue, `optimize.py` the run (no TFX types), `distill.py`
the student and its training, `techniques.py` TFMOT and the TFLite converter, `measure.py` the
figures, `report.py` the JSON and the chart, `settings.py` the technique settings.

The names are imported lazily (PEP 562), when one of `__all__` is first asked for, so
importing the package or one of its TFX-free modules does not load TFX and TensorFlow
(issue 15).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfrelay.components.lazy_exports import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from tfrelay.components.optimizer.artifacts import OptimizationReport
    from tfrelay.components.optimizer.component import Optimizer, OptimizerSpec
    from tfrelay.components.optimizer.settings import Cluster, Distill, Prune, Quantize

__all__ = [
    "Cluster",
    "Distill",
    "OptimizationReport",
    "Optimizer",
    "OptimizerSpec",
    "Prune",
    "Quantize",
]

# Where each public name lives. The component and the artifact import TFX (seconds, and absent
# from the serving stack), so every name is imported when first asked for (issue 15); the
# settings need no TFX but load the same way, so the package has one rule.
_EXPORTS = {
    "Cluster": "tfrelay.components.optimizer.settings",
    "Distill": "tfrelay.components.optimizer.settings",
    "OptimizationReport": "tfrelay.components.optimizer.artifacts",
    "Optimizer": "tfrelay.components.optimizer.component",
    "OptimizerSpec": "tfrelay.components.optimizer.component",
    "Prune": "tfrelay.components.optimizer.settings",
    "Quantize": "tfrelay.components.optimizer.settings",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
