"""BucketPusher: pushes a blessed model to a bucket as a new integer version directory.

`component.py` holds the ComponentSpec and the component, `executor.py` the TFX glue, `push.py`
the side effect itself (no TFX types) and `cli.py` the `tfrelay push` command.

The component is imported lazily (PEP 562), only when `BucketPusher` or `BucketPusherSpec` is
asked for: `import tfrelay.components.pusher.push` must not load TFX and TensorFlow (~10 s),
so the push API and `tfrelay push` work on the serving-only install (issue 13).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BucketPusher", "BucketPusherSpec"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        component = importlib.import_module("tfrelay.components.pusher.component")
        return getattr(component, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
