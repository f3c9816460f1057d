"""BucketPusher: pushes a blessed model to a bucket as a new integer version directory.

`component.py` holds the ComponentSpec and the component, `executor.py` the TFX glue, and
`push.py` the side effect itself (no TFX types), per tfrelay's bucket contract.
"""

from tfrelay.components.pusher.component import BucketPusher, BucketPusherSpec

__all__ = ["BucketPusher", "BucketPusherSpec"]
