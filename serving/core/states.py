"""Per-version lifecycle states, numbered as in TF Serving's `get_model_status.proto`."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tfrelay.serving.errors import Code


class VersionState(enum.IntEnum):
    """`tensorflow.serving.ModelVersionStatus.State`."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class VersionStatus:
    """What the status API reports for one version.

    Attributes:
      version: the version number.
      state: its lifecycle state.
      error_code: OK, or why it ended (a failed load keeps its error here).
      error_message: the error's text, empty when OK.
    """

    version: int
    state: VersionState
    error_code: Code = Code.OK
    error_message: str = ""
