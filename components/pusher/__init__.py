"""BucketPusher: pushes a blessed model to a bucket as a new integer version directory.

`component.py` holds the ComponentSpec and the component, `keys.py` their channel and
parameter keys, `executor.py` the TFX glue, `push.py` the side effect itself (no TFX types)
and `cli.py` the `tfrelay push` command.

The component is imported lazily (PEP 562), only when `BucketPusher` or `BucketPusherSpec` is
asked for: `import tfrelay.components.pusher.push` must not load TFX and TensorFlow (~10 s),
so the push API and `tfrelay push` work on the serving-only install (issues 13 and 15).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from tfrelay.components.pusher.component import BucketPusher, BucketPusherSpec

__all__ = ["BucketPusher", "BucketPusherSpec"]

# Where each public name lives. Those modules import TFX (seconds, and absent from the serving
# stack), so they are imported when a name is first asked for, not with the package (issue 15).
_EXPORTS = {
    "BucketPusher": "tfrelay.components.pusher.component",
    "BucketPusherSpec": "tfrelay.components.pusher.component",
}


def __getattr__(name: str) -> Any:
    """Imports a public name's module when the name is first asked for (PEP 562).

    Args:
      name: the attribute looked up on this package.

    Returns:
      The class (later look-ups find it in the package without calling this again).

    Raises:
      AttributeError: `name` is not a public name of this package (`from ... import push`
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
