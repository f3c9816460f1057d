"""Where model calls run, for both front ends: through the batcher when batching is on, else
straight on the shared inference thread pool; never on the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor

import numpy as np

from tfrelay.serving.batching.batcher import Batcher
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.servables.base import Servable, Signature


class InferenceRunner:
    """Runs signature calls off the event loop, shared by REST and gRPC.

    Args:
      executor: the shared inference thread pool.
      metrics: where runtime latency is recorded.
      batcher: merges concurrent calls when `--enable_batching` is on; None otherwise.
    """

    def __init__(
        self,
        executor: Executor,
        metrics: ServingMetrics | None = None,
        batcher: Batcher | None = None,
    ) -> None:
        self.executor = executor
        self.metrics = metrics
        self.batcher = batcher

    async def run(
        self,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str],
        api: str,
    ) -> dict[str, np.ndarray]:
        """Runs one signature call.

        Args:
          servable: the pinned version.
          signature: the signature to run.
          inputs: {alias: array}, exactly the signature's inputs.
          output_keys: the outputs to fetch.
          api: the API name for the runtime-latency metric ("Predict", "Classify", ...).

        Returns:
          {output alias: array}.

        Raises:
          ServingError: the model or the batcher rejected the call.
        """
        started = time.perf_counter()
        if self.batcher is not None:
            outputs = await self.batcher.run(servable, signature, inputs, output_keys)
        else:
            loop = asyncio.get_running_loop()
            outputs = await loop.run_in_executor(
                self.executor, servable.run, signature, inputs, output_keys
            )
        if self.metrics is not None:
            self.metrics.runtime_latency.observe(
                (time.perf_counter() - started) * 1e6, servable.model_name, api, servable.runtime
            )
        return outputs

    async def call(self, fn, *args):
        """Runs any other blocking call (e.g. metadata) on the inference pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)
