"""`--model_config_file` re-read every `--model_config_file_poll_wait_seconds` and applied when it
changed (TF Serving's PollFilesystemAndReloadConfig)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from tfrelay.serving.config.model_config import ConfigError, ModelConfig, read_model_config_file

logger = logging.getLogger(__name__)


class ConfigFileWatcher:
    """Re-reads `--model_config_file` every interval and applies it when it changed.

    A file that does not parse, or a config the core rejects (a label on an unavailable
    version), is logged and skipped: the running config keeps serving (as TF Serving's
    PollFilesystemAndReloadConfig).

    Args:
      path: the config file (local path or bucket URL).
      interval_seconds: seconds between reads.
      current: the config being served.
      apply: serves a new config; raises to reject it.
      read: reads the file (read_model_config_file).
    """

    def __init__(
        self,
        path: str,
        interval_seconds: float,
        current: Callable[[], Sequence[ModelConfig]],
        apply: Callable[[Sequence[ModelConfig]], None],
        read: Callable[[str], list[ModelConfig]] = read_model_config_file,
    ) -> None:
        self._path = path
        self._interval = interval_seconds
        self._current = current
        self._apply = apply
        self._read = read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tfrelay-config", daemon=True)

    def start(self) -> None:
        """Starts the watcher thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the watcher (a read in progress finishes on its daemon thread)."""
        self._stop.set()

    def check_once(self) -> bool:
        """Reads the file once and applies it if it differs from the running config.

        Returns:
          Whether a new config was applied.
        """
        try:
            models = self._read(self._path)
        except ConfigError as err:
            logger.error("Ignoring the new model config (the running one keeps serving): %s", err)
            return False
        if models == list(self._current()):
            return False
        try:
            self._apply(models)
        except Exception as err:  # noqa: BLE001 - a rejected reload keeps the old config
            logger.error("Rejected the new model config (the running one keeps serving): %s", err)
            return False
        logger.info("Reloaded model config: %s", ", ".join(m.name for m in models))
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check_once()
