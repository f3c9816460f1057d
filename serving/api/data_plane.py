"""The data plane both front ends share (issue 15): pin a version, run a signature, release it.

REST and gRPC keep only their codecs (JSON <-> numpy, protos <-> numpy) and their protocol's own
checks; what a request does once its inputs are decoded lives here, written once. The request
path costs one small context-manager object per request (no thread hop, no copy).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from types import TracebackType

import numpy as np
from tensorflow_serving.apis import get_model_metadata_pb2

from tfrelay.serving.api import classify_regress
from tfrelay.serving.api.inference import InferenceRunner
from tfrelay.serving.api.response_cache import ResponseCache
from tfrelay.serving.core.handles import LoadedVersion
from tfrelay.serving.core.manager import ServableManager
from tfrelay.serving.core.states import VersionStatus
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.request_log import records
from tfrelay.serving.request_log.logger import RequestLogger
from tfrelay.serving.servables.base import CLASSIFY_METHOD, Signature

# (version, label) as a request addressed them; neither for "the latest".
Target = tuple[int | None, str | None]
_UNADDRESSED: Target = (None, None)
_MULTI_INFERENCE = "MultiInference"


class _Pinned:
    """`with data_plane.version(...) as handle:` acquires on entry and releases on exit.

    A class rather than `contextlib.contextmanager`: no generator per request.
    """

    __slots__ = ("_manager", "_target", "_handle")

    def __init__(
        self, manager: ServableManager, target: tuple[str, int | None, str | None]
    ) -> None:
        self._manager = manager
        self._target = target
        self._handle: LoadedVersion | None = None

    def __enter__(self) -> LoadedVersion:
        self._handle = self._manager.acquire(*self._target)
        return self._handle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.release()
            self._handle = None


class DataPlane:
    """The version pinning, model calls, metadata and status both front ends answer from.

    Args:
      manager: resolves models, versions and labels to loaded servables.
      runner: where model calls run (the shared pool or batcher; never the event loop).
      metrics: TF Serving's request metrics (example counts), shared by REST and gRPC.
      request_log: samples successful calls into the request log (None: nothing is logged).
      response_cache: answers repeated identical requests (None: `--response_cache_mb` is 0).
    """

    def __init__(
        self,
        manager: ServableManager,
        runner: InferenceRunner,
        metrics: ServingMetrics | None = None,
        request_log: RequestLogger | None = None,
        response_cache: ResponseCache | None = None,
    ) -> None:
        self.manager = manager
        self.runner = runner
        self.metrics = metrics
        self.request_log = request_log
        self.response_cache = response_cache

    def version(self, name: str, version: int | None = None, label: str | None = None) -> _Pinned:
        """Pins the version a request addresses for the length of a `with` block.

        Args:
          name: the model.
          version: a specific version, or None.
          label: a version label, or None.

        Returns:
          A context manager whose `__enter__` returns the acquired LoadedVersion.

        Raises:
          ServingError: (on entry) NOT_FOUND / INVALID_ARGUMENT as `ServableManager.acquire`.
        """
        return _Pinned(self.manager, (name, version, label))

    def record_examples(self, model_name: str, count: int) -> None:
        """Counts a Classify/Regress/MultiInference request's examples (TF Serving's metrics)."""
        if self.metrics is not None:
            self.metrics.request_example_counts.observe(count, model_name)
            self.metrics.request_example_count_total.inc(model_name, amount=count)

    async def predict(
        self,
        handle: LoadedVersion,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str],
        api: str,
        *,
        request: object | None = None,
        target: Target = _UNADDRESSED,
    ) -> dict[str, np.ndarray]:
        """Runs a Predict call whose inputs the front end decoded and checked.

        Args:
          handle: the pinned version.
          signature: the signature to run.
          inputs: {alias: array}, exactly the signature's inputs.
          output_keys: the outputs to fetch.
          api: the runtime-latency metric's API label ("predict" for REST, "Predict" for gRPC).
          request: the request message as received (gRPC), logged as it is when sampled.
          target: (version, label) as the request addressed them, for a REST request's log.

        Returns:
          {output alias: array}.

        Raises:
          ServingError: the model or the batcher rejected the call.
        """
        servable = handle.servable
        outputs = await self.runner.run(servable, signature, inputs, output_keys, api)
        log = self.request_log
        if log is not None and log.enabled:
            # Positional arguments rather than _log's keywords: Predict is the hot path.
            config = log.sample(servable.model_name)
            if config is not None:
                log.submit_predict(
                    config,
                    servable.model_name,
                    handle.version,
                    signature.name,
                    servable.saved_model_tags,
                    target,
                    request,
                    inputs,
                    outputs,
                    output_keys,
                )
        return outputs

    async def classify(
        self,
        handle: LoadedVersion,
        signature: Signature,
        examples: Sequence[bytes],
        api: str,
        *,
        request: object | None = None,
        target: Target = _UNADDRESSED,
    ) -> list[list[classify_regress.Class]]:
        """Classifies serialized tf.Examples.

        Args:
          handle: the pinned version.
          signature: a classification signature (`classify_regress.classification_signature`).
          examples: serialized tf.Examples.
          api: the runtime-latency metric's API label.
          request: the request message as received (gRPC), for the request log.
          target: (version, label) as the request addressed them, for a REST request's log.

        Returns:
          One list of classes per example.

        Raises:
          ServingError: INVALID_ARGUMENT for no examples or outputs of the wrong type or shape.
        """
        inputs, wanted = classify_regress.classify_call(signature, examples)
        outputs = await self.runner.run(handle.servable, signature, inputs, wanted, api)
        results = classify_regress.classification_results(signature, outputs, len(examples))
        if api != _MULTI_INFERENCE:  # a MultiInference is logged whole, once
            self._log_examples(
                records.Kind.CLASSIFY, handle, signature, target, request, examples, results
            )
        return results

    async def regress(
        self,
        handle: LoadedVersion,
        signature: Signature,
        examples: Sequence[bytes],
        api: str,
        *,
        request: object | None = None,
        target: Target = _UNADDRESSED,
    ) -> list[float]:
        """Regresses serialized tf.Examples.

        Args:
          handle: the pinned version.
          signature: a regression signature (`classify_regress.regression_signature`).
          examples: serialized tf.Examples.
          api: the runtime-latency metric's API label.
          request: the request message as received (gRPC), for the request log.
          target: (version, label) as the request addressed them, for a REST request's log.

        Returns:
          One value per example.

        Raises:
          ServingError: INVALID_ARGUMENT for no examples or an output of the wrong type or shape.
        """
        inputs, wanted = classify_regress.regress_call(signature, examples)
        outputs = await self.runner.run(handle.servable, signature, inputs, wanted, api)
        values = classify_regress.regression_results(signature, outputs, len(examples))
        if api != _MULTI_INFERENCE:
            self._log_examples(
                records.Kind.REGRESS, handle, signature, target, request, examples, values
            )
        return values

    async def multi_inference(
        self,
        handle: LoadedVersion,
        plan: Sequence[tuple[str, Signature]],
        examples: Sequence[bytes],
        *,
        request: object | None = None,
    ) -> list[list[list[classify_regress.Class]] | list[float]]:
        """Runs each (method name, signature) task of a MultiInference request, in order.

        Args:
          handle: the pinned version.
          plan: (CLASSIFY_METHOD or REGRESS_METHOD, signature) per task, already checked.
          examples: serialized tf.Examples, shared by every task.
          request: the MultiInferenceRequest (gRPC only), for the request log.

        Returns:
          Per task: classes per example (classify) or one value per example (regress).

        Raises:
          ServingError: INVALID_ARGUMENT as `classify` / `regress`.
        """
        results: list[list[list[classify_regress.Class]] | list[float]] = []
        for method, signature in plan:
            if method == CLASSIFY_METHOD:
                results.append(await self.classify(handle, signature, examples, _MULTI_INFERENCE))
            else:
                results.append(await self.regress(handle, signature, examples, _MULTI_INFERENCE))
        if request is not None and self.request_log is not None and self.request_log.enabled:
            self._log(
                records.Kind.MULTI_INFERENCE,
                handle,
                "",
                _UNADDRESSED,
                request,
                results=results,
                tasks=request.tasks,
            )
        return results

    def _log_examples(
        self,
        kind: records.Kind,
        handle: LoadedVersion,
        signature: Signature,
        target: Target,
        request: object | None,
        examples: Sequence[bytes],
        results: Sequence,
    ) -> None:
        if self.request_log is not None and self.request_log.enabled:
            self._log(
                kind, handle, signature.name, target, request, examples=examples, results=results
            )

    def _log(
        self,
        kind: records.Kind,
        handle: LoadedVersion,
        signature_name: str,
        target: Target,
        request: object | None,
        **content,
    ) -> None:
        """Hands a successful call to the request log when it is sampled (a dict lookup and a
        random draw when it is not; the record is encoded later, in a batch)."""
        servable = handle.servable
        config = self.request_log.sample(servable.model_name)
        if config is None:
            return
        self.request_log.submit(
            records.LoggedCall(
                config,
                kind,
                servable.model_name,
                handle.version,
                signature_name,
                servable.saved_model_tags,
                target,
                int(time.time()),
                request,
                **content,
            )
        )

    def metadata(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> tuple[int, get_model_metadata_pb2.SignatureDefMap]:
        """The version a metadata request addresses and its SignatureDefMap.

        Args:
          name: the model.
          version: a specific version, or None.
          label: a version label, or None.

        Returns:
          (the version number, its SignatureDefMap).

        Raises:
          ServingError: NOT_FOUND / INVALID_ARGUMENT as `ServableManager.acquire`.
        """
        with self.version(name, version, label) as handle:
            signature_defs = get_model_metadata_pb2.SignatureDefMap()
            for key, proto in handle.servable.signature_def_map().items():
                signature_defs.signature_def[key].CopyFrom(proto)
            return handle.version, signature_defs

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """The version statuses a status request addresses (labels are ignored, as TF Serving's
        get_model_status_impl.cc does; every version when `version` is None).

        Raises:
          ServingError: NOT_FOUND for an unknown model or version.
        """
        return self.manager.status(name, version)
