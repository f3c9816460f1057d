"""How a version becomes a servable: the VersionLoader with the session and TFLite settings, TF
Serving's load metrics and the warmup replay (`--enable_model_warmup`)."""

from __future__ import annotations

import logging
import time

from tfrelay.serving import warmup
from tfrelay.serving.core.source import VersionCandidate
from tfrelay.serving.core.version_loader import VersionLoader
from tfrelay.serving.errors import ServingError
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.servables.base import Servable
from tfrelay.serving.servables.saved_model import SessionOptions
from tfrelay.serving.servables.tflite import TfLiteServable
from tfrelay.serving.storage import bucket

logger = logging.getLogger(__name__)


class ServableLoading:
    """How a version becomes a servable: VersionLoader, TF's load metrics, the warmup replay.

    Args:
      options: the server settings (session, cache, warmup and TFLite flags).
      metrics: where load attempts, load latency and warmup latency are recorded.

    Raises:
      ConfigError: `--tensorflow_session_config_file` is unreadable or invalid.
    """

    def __init__(self, options: ServerOptions, metrics: ServingMetrics) -> None:
        self._options = options
        self._metrics = metrics
        factories = {}
        if options.prefer_tflite_model:
            factories[bucket.TFLITE_MODEL] = self._tflite_servable
        self.loader = VersionLoader(
            SessionOptions(
                tags=[t for t in options.saved_model_tags.split(",") if t],
                intra_op_threads=options.intra_op_threads,
                inter_op_threads=options.inter_op_threads,
                run_timeout_ms=options.rest_api_timeout_in_ms,
                base_config=_session_config(options.tensorflow_session_config_file),
            ),
            cache_dir=options.model_cache_dir or None,
            prepare=self._warm_up if options.enable_model_warmup else None,
            servable_factories=factories,
        )

    def load(self, model_name: str, version: int, candidate: VersionCandidate) -> Servable:
        """The manager's load function: VersionLoader.load plus TF's load metrics.

        Args:
          model_name: the model.
          version: the version number.
          candidate: the source's description of the version's files.

        Returns:
          The loaded (and warmed up) servable.

        Raises:
          Exception: whatever the load raised (the manager records it in the status).
        """
        model_path = candidate.storage.version_url(candidate.version_dir)
        started = time.perf_counter()
        try:
            servable = self.loader.load(model_name, version, candidate)
        except BaseException:
            self._metrics.load_attempt_count.inc(model_path, "fail")
            self._metrics.load_failures.inc(model_name)
            raise
        self._metrics.load_attempt_count.inc(model_path, "success")
        self._metrics.load_latency.inc(model_path, amount=(time.perf_counter() - started) * 1e6)
        return servable

    def unload(self, servable: Servable) -> None:
        """The manager's unload function: releases the servable and its cache copy."""
        self.loader.unload(servable)

    def close(self) -> None:
        """Removes the loader's cache directory (if it created it)."""
        self.loader.close()

    def _tflite_servable(self, model_name: str, version: int, path: str) -> Servable:
        return TfLiteServable(model_name, version, path, self._options.tflite_interpreters)

    def _warm_up(self, servable: Servable) -> None:
        """VersionLoader's prepare hook: replays the version's warmup records before it serves.

        Raises:
          ServingError: a record failed; the load fails, as in TF Serving.
        """
        started = time.perf_counter()
        try:
            records, _ = warmup.replay(servable, self._options.num_request_iterations_for_warmup)
        except ServingError as err:
            self._metrics.model_warmup_latency.observe(
                (time.perf_counter() - started) * 1e6, servable.path, err.code.name
            )
            logger.error(
                "Warmup of %s version %d failed: %s", servable.model_name, servable.version, err
            )
            raise
        if records:
            self._metrics.model_warmup_latency.observe(
                (time.perf_counter() - started) * 1e6, servable.path, "OK"
            )
            logger.info(
                "Warmed up %s version %d with %d records",
                servable.model_name,
                servable.version,
                records,
            )


def _session_config(path: str):
    """Reads `--tensorflow_session_config_file` (a ConfigProto text proto), or None.

    Raises:
      ConfigError: unreadable or unparseable.
    """
    if not path:
        return None
    from tensorflow.core.protobuf import config_pb2

    from tfrelay.serving.config.text_proto import read_text_proto

    return read_text_proto(path, config_pb2.ConfigProto(), "tensorflow_session_config_file")
