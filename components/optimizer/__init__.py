"""Optimizer: prunes, clusters and quantizes a trained model, measures size, latency and accuracy
before and after, and blesses the result only if accuracy holds.

`component.py` holds the ComponentSpec and the component, `keys.py` their channel and
parameter keys, `executor.py` the TFX glue, `optimize.py` the run (no TFX types),
`techniques.py` TFMOT and the TFLite converter, `measure.py` the figures, `report.py` the
JSON and the chart, `settings.py` the technique settings.

The names are imported lazily (PEP 562), when one of `__all__` is first asked for, so
importing the package or one of its TFX-free modules does not load TFX and TensorFlow
(issue 15).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from tfrelay.components.optimizer.artifacts import OptimizationReport
    from tfrelay.components.optimizer.component import Optimizer, OptimizerSpec
    from tfrelay.components.optimizer.settings import Cluster, Prune, Quantize

__all__ = ["Cluster", "OptimizationReport", "Optimizer", "OptimizerSpec", "Prune", "Quantize"]

# Where each public name lives. The component and the artifact import TFX (seconds, and absent
# from the serving stack), so every name is imported when first asked for (issue 15); the
# settings need no TFX but load the same way, so the package has one rule.
_EXPORTS = {
    "Cluster": "tfrelay.components.optimizer.settings",
    "OptimizationReport": "tfrelay.components.optimizer.artifacts",
    "Optimizer": "tfrelay.components.optimizer.component",
    "OptimizerSpec": "tfrelay.components.optimizer.component",
    "Prune": "tfrelay.components.optimizer.settings",
    "Quantize": "tfrelay.components.optimizer.settings",
}


def __getattr__(name: str) -> Any:
    """Imports a public name's module when the name is first asked for (PEP 562).

    Args:
      name: the attribute looked up on this package.

    Returns:
      The class (later look-ups find it in the package without calling this again).

    Raises:
      AttributeError: `name` is not a public name of this package (`from ... import report`
        then imports the submodule, as the import system does for any package).
      ModuleNotFoundError: the name needs TFX and this environment has none (the serving-only
        install).
    """
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
