"""The Validator: TFMA thresholds against the version in the bucket, plus the serving contract.

`component.py` holds the ComponentSpec and the component, `keys.py` their channel and
parameter keys, `executor.py` the TFX glue (around TFX's Evaluator), `evaluation.py`,
`baseline.py` and `serving_contract.py` the checks.

The component is imported lazily (PEP 562), when one of `__all__` is first asked for, so
importing the package or one of its TFX-free modules does not load TFX and TensorFlow (issue 15).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from tfrelay.components.validator.component import Validator, ValidatorSpec

__all__ = ["Validator", "ValidatorSpec"]

# Where each public name lives. Those modules import TFX (seconds, and absent from the serving
# stack), so they are imported when a name is first asked for, not with the package (issue 15).
_EXPORTS = {
    "Validator": "tfrelay.components.validator.component",
    "ValidatorSpec": "tfrelay.components.validator.component",
}


def __getattr__(name: str) -> Any:
    """Imports a public name's module when the name is first asked for (PEP 562).

    Args:
      name: the attribute looked up on this package.

    Returns:
      The class (later look-ups find it in the package without calling this again).

    Raises:
      AttributeError: `name` is not a public name of this package (`from ... import evaluation`
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
