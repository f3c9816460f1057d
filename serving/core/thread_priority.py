"""Background threads (loads, unloads, the request log's writer) run at a lower scheduling
priority than request handling: the server's core(s) belong to requests first."""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)

# The `nice` value background threads run at.
BACKGROUND_NICENESS = 10


def lower_thread_priority() -> None:
    """Lowers the calling thread's scheduling priority (Linux threads have their own).

    A load is tens of milliseconds of CPU (graph import, the restore and init runs); on a server
    with one core it took time slices from request handling, so requests during a swap waited up
    to a slice (p99 7.2 -> 12.7 ms measured). At a lower priority, background work fills the idle
    gaps. TensorFlow's shared thread pools must exist before this runs, or they would inherit the
    lower priority (ModelServer.start creates them).
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: normal priority stays
        logger.debug("Could not lower the priority of %s", threading.current_thread().name)
