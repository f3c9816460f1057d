"""The Validator: TFMA thresholds against the version in the bucket, plus the serving contract.

`component.py` holds the ComponentSpec and the component, `keys.py` their channel and
parameter keys, `executor.py` the TFX glue (around TFX's Evaluator), `evaluation.py`,
`baseline.py` and `serving_contract.py` the checks; `shadow.py` replays logged requests against
the candidate and the serving version (reading them bounded in `shadow_records.py`, answering
them as the server does in `shadow_replay.py`, its settings checked in `shadow_settings.py`).

The component is imported lazily (PEP 562), when one of `__all__` is first asked for, so
importing the package or one of its TFX-free modules does not load TFX and TensorFlow (issue 15).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfrelay.components.lazy_exports import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from tfrelay.components.validator.component import Validator, ValidatorSpec

__all__ = ["Validator", "ValidatorSpec"]

# Where each public name lives. Those modules import TFX (seconds, and absent from the serving
# stack), so they are imported when a name is first asked for, not with the package (issue 15).
_EXPORTS = {
    "Validator": "tfrelay.components.validator.component",
    "ValidatorSpec": "tfrelay.components.validator.component",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
