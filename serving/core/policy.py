"""TF Serving's AvailabilityPreservingPolicy, as a pure function over version snapshots.

Load the new version before unloading the old one, so a model never goes dark during a swap and
a version that fails to load leaves the previous one serving (`core/availability_preserving_policy.cc`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Set
from dataclasses import dataclass

from tfrelay.serving.core.states import VersionState


class Action(enum.Enum):
    LOAD = "load"
    UNLOAD = "unload"


@dataclass(frozen=True)
class VersionSnapshot:
    """The policy's view of one managed version.

    Attributes:
      version: the version number.
      state: its lifecycle state.
      aspired: whether the source currently wants it loaded.
      loadable: for a START version, whether a load may start now (False while a retry waits).
    """

    version: int
    state: VersionState
    aspired: bool
    loadable: bool = True


def next_action(
    versions: Iterable[VersionSnapshot], pinned: Set[int] = frozenset()
) -> tuple[Action, int] | None:
    """Chooses the next load or unload for one model.

    Unload the lowest un-aspired AVAILABLE version if there is no aspired version at all, or an
    aspired version is AVAILABLE, or more than one un-aspired version is AVAILABLE; never unload a
    version pinned by a `specific` version policy. Otherwise load the highest aspired version
    that has not started loading.

    Args:
      versions: every version the manager tracks for the model.
      pinned: versions named by the model's `specific` policy.

    Returns:
      (action, version), or None when nothing is to be done.
    """
    versions = list(versions)
    has_aspired = any(v.aspired for v in versions)
    has_aspired_serving = any(v.aspired and v.state == VersionState.AVAILABLE for v in versions)
    unaspired_serving = sorted(
        v.version for v in versions if not v.aspired and v.state == VersionState.AVAILABLE
    )
    if (not has_aspired or has_aspired_serving or len(unaspired_serving) > 1) and unaspired_serving:
        lowest = unaspired_serving[0]
        if lowest not in pinned:
            return Action.UNLOAD, lowest

    new_aspired = [
        v.version for v in versions if v.aspired and v.state == VersionState.START and v.loadable
    ]
    if new_aspired:
        return Action.LOAD, max(new_aspired)
    return None
