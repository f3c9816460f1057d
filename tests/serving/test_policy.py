"""TF Serving's AvailabilityPreservingPolicy, case by case."""

from __future__ import annotations

from tfrelay.serving.core.policy import Action, VersionSnapshot, next_action
from tfrelay.serving.core.states import VersionState as S


def snap(version, state, aspired, loadable=True):
    return VersionSnapshot(version, state, aspired, loadable)


def test_new_version_loads_before_the_old_one_unloads():
    versions = [snap(1, S.AVAILABLE, False), snap(2, S.START, True)]
    assert next_action(versions) == (Action.LOAD, 2)
    versions = [snap(1, S.AVAILABLE, False), snap(2, S.LOADING, True)]
    assert next_action(versions) is None
    versions = [snap(1, S.AVAILABLE, False), snap(2, S.AVAILABLE, True)]
    assert next_action(versions) == (Action.UNLOAD, 1)


def test_a_failed_new_version_leaves_the_old_one_serving():
    versions = [snap(1, S.AVAILABLE, False), snap(2, S.END, True)]
    assert next_action(versions) is None


def test_a_removed_model_unloads_everything():
    assert next_action([snap(1, S.AVAILABLE, False)]) == (Action.UNLOAD, 1)


def test_two_unaspired_ready_versions_unload_the_lowest_first():
    versions = [snap(1, S.AVAILABLE, False), snap(2, S.AVAILABLE, False), snap(3, S.START, True)]
    assert next_action(versions) == (Action.UNLOAD, 1)


def test_pinned_versions_are_never_unloaded_for_a_swap():
    versions = [snap(1, S.AVAILABLE, False), snap(2, S.AVAILABLE, True)]
    assert next_action(versions, pinned={1}) is None


def test_highest_new_version_loads_first_and_waiting_retries_do_not():
    versions = [snap(1, S.START, True), snap(3, S.START, True), snap(2, S.START, True)]
    assert next_action(versions) == (Action.LOAD, 3)
    versions = [snap(3, S.START, True, loadable=False)]
    assert next_action(versions) is None
