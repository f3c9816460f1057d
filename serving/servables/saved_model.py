"""SavedModels (TF1 graphs and TF2 exports alike) run through a TF1 Session, as TF Serving does.

TF Serving's C++ server imports every SavedModel's MetaGraph into a Session; doing the same keeps
answers identical (same feeds, same fetches, same errors) and handles TF1 graphs whose classify
signatures make `tf.saved_model.load` fail. Each (signature, inputs, outputs) combination gets a
cached `CallableOptions` callable: one C++ call per request, no Python shape re-checks, no
re-tracing, about 20 microseconds of overhead.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2

from tfrelay.serving import errors
from tfrelay.serving.servables.base import Servable, Signature

# Signatures TF's SavedModel machinery adds for itself; never callable by clients.
_INTERNAL_SIGNATURE_PREFIX = "__"


class SessionOptions:
    """How SavedModel sessions are built (from the server's TensorFlow flags).

    Args:
      tags: MetaGraph tags to load (`--saved_model_tags`).
      intra_op_threads: `--tensorflow_intra_op_parallelism` (0 = TensorFlow decides).
      inter_op_threads: `--tensorflow_inter_op_parallelism` (0 = TensorFlow decides).
      run_timeout_ms: per-run timeout (`--rest_api_timeout_in_ms`; 0 = none).
      base_config: `--tensorflow_session_config_file`'s ConfigProto; the thread flags, when
        non-zero, override its thread settings.

    Unless an inter-op thread count is configured (flag or config file), each request's ops run
    in the thread that runs the request (`RunOptions.inter_op_thread_pool = -1`): serving
    parallelism comes from concurrent requests, and skipping the hand-off to TensorFlow's
    inter-op pool halves the cost of a small model's call (10.7 -> 4.9 us for half_plus_two)
    and raises its concurrent throughput 1.6x. Set --tensorflow_inter_op_parallelism for large
    graphs whose independent ops should run in parallel within one request.
    """

    def __init__(
        self,
        tags: Sequence[str] = ("serve",),
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        run_timeout_ms: int = 0,
        base_config: config_pb2.ConfigProto | None = None,
    ) -> None:
        self.tags = tuple(tags)
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.run_timeout_ms = run_timeout_ms
        self.base_config = base_config

    def config_proto(self) -> config_pb2.ConfigProto:
        config = config_pb2.ConfigProto(allow_soft_placement=True)
        if self.base_config is not None:
            config.MergeFrom(self.base_config)
        if self.intra_op_threads:
            config.intra_op_parallelism_threads = self.intra_op_threads
        if self.inter_op_threads:
            config.inter_op_parallelism_threads = self.inter_op_threads
        elif self.ops_in_caller_thread:
            # config.proto: "Negative means all operations are performed in caller's thread" --
            # the load's restore and init runs too, so a load's work stays on its (lower
            # priority) loader thread instead of TensorFlow's shared pool.
            config.inter_op_parallelism_threads = -1
        return config

    @property
    def ops_in_caller_thread(self) -> bool:
        if self.inter_op_threads:
            return False
        return not (self.base_config is not None and self.base_config.inter_op_parallelism_threads)


class SavedModelServable(Servable):
    """A SavedModel version loaded into its own graph and session."""

    def __init__(
        self, model_name: str, version: int, path: str, options: SessionOptions | None = None
    ) -> None:
        super().__init__(model_name, version, path)
        self._options = options or SessionOptions()
        self.saved_model_tags = tuple(self._options.tags)
        self._session: tf.compat.v1.Session | None = None
        self._signature_defs: dict[str, meta_graph_pb2.SignatureDef] = {}
        self._signatures: dict[str, Signature] = {}
        self._callables: dict[tuple, object] = {}
        self._callables_lock = threading.Lock()

    def load(self) -> None:
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=self._options.config_proto())
        try:
            with graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(
                    session, list(self._options.tags), self.path
                )
        except BaseException:
            session.close()
            raise
        self._session = session
        self._signature_defs = {
            name: proto
            for name, proto in meta_graph.signature_def.items()
            if not name.startswith(_INTERNAL_SIGNATURE_PREFIX)
        }
        self._signatures = {
            name: Signature.from_proto(name, proto) for name, proto in self._signature_defs.items()
        }
        # Building a callable optimizes its subgraph (milliseconds). Done here, on the loader
        # thread, for each signature's usual call (every input, every output), so the first
        # requests after a swap -- and the batch queued behind them -- do not wait for it.
        for signature in self._signatures.values():
            if signature.inputs and signature.outputs:
                try:
                    self._callable(
                        signature, tuple(sorted(signature.inputs)), tuple(sorted(signature.outputs))
                    )
                except tf.errors.OpError:
                    pass  # a signature that cannot run as a whole fails at request time, as before

    @property
    def signatures(self) -> Mapping[str, Signature]:
        return self._signatures

    def signature_def_map(self) -> Mapping[str, meta_graph_pb2.SignatureDef]:
        return self._signature_defs

    def _callable(self, signature: Signature, input_keys: tuple, output_keys: tuple):
        key = (signature.name, input_keys, output_keys)
        fn = self._callables.get(key)
        if fn is not None:
            return fn
        with self._callables_lock:
            fn = self._callables.get(key)
            if fn is None:
                options = config_pb2.CallableOptions(
                    feed=[signature.inputs[k].tensor_name for k in input_keys],
                    fetch=[signature.outputs[k].tensor_name for k in output_keys],
                )
                if self._options.run_timeout_ms > 0:
                    options.run_options.timeout_in_ms = self._options.run_timeout_ms
                if self._options.ops_in_caller_thread:
                    options.run_options.inter_op_thread_pool = -1
                # The public make_callable() falls back to Session.run (with Python-side shape
                # checks the C++ server does not make) whenever feeds are given; the
                # CallableOptions path is the one TF's own Keras backend used for speed.
                fn = self._session._make_callable_from_options(options)
                self._callables[key] = fn
        return fn

    def run(
        self,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str],
    ) -> dict[str, np.ndarray]:
        input_keys = tuple(sorted(inputs))
        output_keys = tuple(output_keys)
        fn = self._callable(signature, input_keys, output_keys)
        try:
            results = fn(*(inputs[k] for k in input_keys))
        except tf.errors.OpError as err:
            raise errors.from_tensorflow(err) from err
        return dict(zip(output_keys, results, strict=True))

    def unload(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        self._callables.clear()
