"""The servable interface every model format implements, and the signature description the
front ends validate requests against."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

DEFAULT_SERVING_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


@dataclass(frozen=True)
class TensorSpec:
    """One signature input or output.

    Attributes:
      tensor_name: the graph tensor fed or fetched ("x:0").
      dtype: the TensorFlow DataType enum value (types_pb2.DT_FLOAT, ...).
      shape: dimensions (-1 for unknown), or None for unknown rank.
    """

    tensor_name: str
    dtype: int
    shape: tuple[int, ...] | None

    @property
    def dtype_name(self) -> str:
        return types_pb2.DataType.Name(self.dtype)


@dataclass(frozen=True)
class Signature:
    """A named signature: what a request may feed and fetch."""

    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]

    @classmethod
    def from_proto(cls, name: str, proto: meta_graph_pb2.SignatureDef) -> Signature:
        def spec(info: meta_graph_pb2.TensorInfo) -> TensorSpec:
            shape = None
            if not info.tensor_shape.unknown_rank:
                shape = tuple(int(d.size) for d in info.tensor_shape.dim)
            return TensorSpec(info.name, int(info.dtype), shape)

        return cls(
            name=name,
            method_name=proto.method_name,
            inputs={key: spec(info) for key, info in proto.inputs.items()},
            outputs={key: spec(info) for key, info in proto.outputs.items()},
        )


class Servable(abc.ABC):
    """One loaded version of a model.

    Lifecycle: construct and `load()` on a loader thread; `run()` from many request threads at
    once; `unload()` once, after the manager has drained in-flight requests.
    """

    # The `runtime` label of TF Serving's runtime_latency metric.
    runtime = "TF1"

    def __init__(self, model_name: str, version: int, path: str) -> None:
        self.model_name = model_name
        self.version = version
        self.path = path
        # The version's assets.extra/tfrelay_push.json (which pipeline run pushed what), if any.
        self.push_record: dict | None = None
        # The MetaGraph tags it was loaded with (the request log's LogMetadata names them).
        self.saved_model_tags: tuple[str, ...] = ()

    @abc.abstractmethod
    def load(self) -> None:
        """Loads the model into memory; raises on any failure."""

    @property
    @abc.abstractmethod
    def signatures(self) -> Mapping[str, Signature]:
        """The signatures requests may name (internal ones such as init ops excluded)."""

    @abc.abstractmethod
    def signature_def_map(self) -> Mapping[str, meta_graph_pb2.SignatureDef]:
        """The SignatureDef protos, exactly as exported, for the metadata API."""

    @abc.abstractmethod
    def run(
        self,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str],
    ) -> dict[str, np.ndarray]:
        """Runs a signature.

        Args:
          signature: one of `self.signatures`.
          inputs: {input alias: array}, exactly the signature's input aliases.
          output_keys: the output aliases to fetch, in the order wanted.

        Returns:
          {output alias: array} for `output_keys`.

        Raises:
          ServingError: the model rejected the inputs (shape, dtype, ...), with TF's code.
        """

    @abc.abstractmethod
    def unload(self) -> None:
        """Releases the model's resources. Called once, after in-flight requests finished."""
