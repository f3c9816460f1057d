"""The AVAILABLE versions of every model, kept from the manager's version events (TF Serving's
ServableStateMonitor on the EventBus), so readiness probes and metric scrapes take no manager lock
and never wait behind a reconcile or a config reload (issue 15)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tfrelay.serving.core.manager import ServableManager, Subscription, VersionEvent
from tfrelay.serving.core.states import VersionState


class VersionStateMonitor:
    """The AVAILABLE versions of every model, kept from the manager's version events.

    Events arrive under the manager's lock; readers take only this monitor's own lock (held for a
    dict update or copy), never the manager's, so the lock order is always manager -> monitor.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._available: dict[str, frozenset[int]] = {}
        self._subscription: Subscription | None = None

    def attach(self, manager: ServableManager) -> None:
        """Follows `manager` from now on, starting from its current state (a replay).

        Args:
          manager: the manager whose events to follow.
        """
        self._subscription = manager.subscribe(self._on_event, replay=True)

    def detach(self) -> None:
        """Stops following the manager and forgets every version (nothing is loaded any more)."""
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        with self._lock:
            self._available = {}

    def _on_event(self, event: VersionEvent) -> None:
        with self._lock:
            versions = self._available.get(event.model_name, frozenset())
            if event.state == VersionState.AVAILABLE:
                versions = versions | {event.version}
            else:
                versions = versions - {event.version}
            if versions:
                self._available[event.model_name] = versions
            else:
                self._available.pop(event.model_name, None)

    def available(self, model_name: str) -> frozenset[int]:
        """The AVAILABLE versions of a model (empty for an unknown model).

        Args:
          model_name: the model.

        Returns:
          The version numbers.
        """
        with self._lock:
            return self._available.get(model_name, frozenset())

    def available_counts(self, model_names: Sequence[str]) -> dict[str, int]:
        """{model: number of AVAILABLE versions} for each of `model_names`.

        Args:
          model_names: the models to count (the configured ones).

        Returns:
          The counts, 0 for a model without an AVAILABLE version.
        """
        with self._lock:
            return {name: len(self._available.get(name, ())) for name in model_names}
