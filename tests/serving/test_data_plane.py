"""The shared data plane (issue 15): a version pinned for a `with` block is always released."""

from __future__ import annotations

import pytest

from tfrelay.serving import errors
from tfrelay.serving.api.data_plane import DataPlane
from tfrelay.serving.errors import ServingError


class _Handle:
    def __init__(self) -> None:
        self.version = 7
        self.releases = 0

    def release(self) -> None:
        self.releases += 1


class _Manager:
    def __init__(self) -> None:
        self.handle = _Handle()
        self.targets: list[tuple] = []

    def acquire(self, name, version=None, label=None):
        self.targets.append((name, version, label))
        if name == "missing":
            raise errors.not_found("Servable not found for request: Latest(missing)")
        return self.handle


def test_version_releases_after_the_block_and_after_an_error() -> None:
    manager = _Manager()
    plane = DataPlane(manager, runner=None)  # type: ignore[arg-type]
    with plane.version("m", 3, None) as handle:
        assert handle is manager.handle
        assert handle.releases == 0
    assert manager.handle.releases == 1
    with pytest.raises(ValueError), plane.version("m", None, "stable"):
        raise ValueError("the request failed")
    assert manager.handle.releases == 2
    assert manager.targets == [("m", 3, None), ("m", None, "stable")]


def test_version_that_is_not_found_raises_on_entry_and_releases_nothing() -> None:
    manager = _Manager()
    plane = DataPlane(manager, runner=None)  # type: ignore[arg-type]
    with pytest.raises(ServingError) as raised, plane.version("missing"):
        pytest.fail("the block must not run")
    assert raised.value.message == "Servable not found for request: Latest(missing)"
    assert manager.handle.releases == 0
