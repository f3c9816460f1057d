"""How tfrelay's executors read their list and dict execution parameters (issue 15).

TFX serializes a `list[...]` or `dict[...]` ExecutionParameter to a JSON string when it compiles
the pipeline (the IR has no list-of-str or dict value type), and the executor receives that
string; code that calls an executor directly (tests, notebooks) may pass the Python value. This
module imports nothing of TFX, so a pure helper can use it too.
"""

from __future__ import annotations

import json
from typing import Any


def decoded(value: Any) -> Any:
    """A list or dict execution parameter as Python, whether it arrives JSON-encoded or not.

    Only call it for parameters declared as a list or a dict: a `str` parameter whose value
    happens to start with "[" or "{" (a label named "{y}") must stay a string. So the Trainer
    decodes `feature_keys`, `hidden_units` and `custom_config`, the ServingDeployer
    `kubernetes_config`, and each leaves its `str` parameters alone.

    Args:
      value: the `exec_properties` value: a JSON array or object as a string, the list or dict
        itself, or None / "" when the optional parameter is unset.

    Returns:
      The decoded list or dict; any other value (None, "", a list or dict already) unchanged.

    Raises:
      json.JSONDecodeError: a string that starts like a JSON array or object but is not JSON.
    """
    if isinstance(value, str) and value[:1] in ("[", "{"):
        return json.loads(value)
    return value
