"""BucketPusher: pushes a blessed model to a bucket as a new integer version directory.

`component.py` holds the ComponentSpec and the component, `keys.py` their channel and
parameter keys, `executor.py` the TFX glue, `push.py` the side effect itself (no TFX types)
and `cli.py` the `tfrelay push` command.

The component is imported lazily (PEP 562), only when `BucketPusher` or `BucketPusherSpec` is
asked for: `import tfrelay.components.pusher.push` must not load TFX and TensorFlow (~10 s),
so the push API and `tfrelay push` work on the serving-only install (issues 13 and 15).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tfrelay.components.lazy_exports import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from tfrelay.components.pusher.component import BucketPusher, BucketPusherSpec

__all__ = ["BucketPusher", "BucketPusherSpec"]

# Where each public name lives. Those modules import TFX (seconds, and absent from the serving
# stack), so they are imported when a name is first asked for, not with the package (issue 15).
_EXPORTS = {
    "BucketPusher": "tfrelay.components.pusher.component",
    "BucketPusherSpec": "tfrelay.components.pusher.component",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
