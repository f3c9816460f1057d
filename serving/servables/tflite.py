"""TFLite models (`model.tflite`, served with `--prefer_tflite_model`) through LiteRT's interpreter
(or TensorFlow's own for Select-TF-ops models and on the pipeline stack: `tflite_runtime.py`).

Signatures are found as TF Serving's `TfLiteSession` finds them, plus TFLite's own:

1. a model converted with signatures (TF2 converter) serves each through its signature runner;
2. a model carrying TF Serving's `signature_defs_metadata` serves those SignatureDefs, with each
   tensor name matched exactly or, failing that, without its `:N` suffix (legacy converters
   stripped it);
3. otherwise one `serving_default` signature is generated whose aliases are the input and output
   tensor names (without `:N`) and whose shapes are the interpreter's.

Interpreters are not thread-safe, so each servable keeps a small pool; a request borrows one.
TFLite's custom ParseExample kernels (which TF Serving links in) are in no Python interpreter;
TensorFlow runs such ops in front of the interpreter (`tflite_parse_example.py`).
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from tfrelay.serving import errors
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.servables import tflite_parse_example, tflite_runtime
from tfrelay.serving.servables.base import (
    DEFAULT_SERVING_SIGNATURE,
    PREDICT_METHOD,
    Servable,
    Signature,
)
from tfrelay.serving.storage import bucket

SIGNATURE_DEFS_METADATA = "signature_defs_metadata"  # tflite::kSignatureDefsMetadataName


def _tf_dtype(numpy_dtype) -> int:
    dtype = np.dtype(numpy_dtype)
    if dtype.kind in ("O", "S", "U"):
        return types_pb2.DT_STRING
    return tf.dtypes.as_dtype(dtype).as_datatype_enum


def _legacy_name(name: str) -> str:
    # TfToTfLiteLegacyTensorName: TF names carry ":0"; old converters dropped it.
    return name.split(":", 1)[0]


def _tensor_info(name: str, dtype: int, dims: Sequence[int]) -> meta_graph_pb2.TensorInfo:
    info = meta_graph_pb2.TensorInfo(name=name, dtype=dtype)
    for size in dims:
        info.tensor_shape.dim.add(size=int(size))
    return info


class TfLiteServable(Servable):
    """A `model.tflite` version.

    Args:
      model_name: the model.
      version: the version number.
      path: the version directory.
      num_interpreters: interpreters in the pool (concurrent requests per version).
    """

    runtime = "TFLite"

    def __init__(self, model_name: str, version: int, path: str, num_interpreters: int = 1):
        super().__init__(model_name, version, path)
        self._num_interpreters = max(1, num_interpreters)
        self._pool: queue.LifoQueue | None = None
        self._signature_defs: dict[str, meta_graph_pb2.SignatureDef] = {}
        self._signatures: dict[str, Signature] = {}
        # signature name -> TFLite signature key (runner mode) or None (tensor-index mode).
        self._runner_keys: dict[str, str | None] = {}
        self._input_index: dict[str, int] = {}
        self._output_index: dict[str, int] = {}
        self.interpreter_runtime = ""

    def load(self) -> None:
        with open(os.path.join(self.path, bucket.TFLITE_MODEL), "rb") as f:
            content = f.read()
        new_interpreter = self._interpreter_factory(content)
        probe = new_interpreter()
        runner_signatures = probe.get_signature_list()
        if runner_signatures:
            self._signatures_from_runners(probe, runner_signatures)
        else:
            probe.allocate_tensors()
            self._input_index = {d["name"]: d["index"] for d in probe.get_input_details()}
            self._output_index = {d["name"]: d["index"] for d in probe.get_output_details()}
            metadata = signature_defs_metadata(content)
            if metadata:
                self._signatures_from_metadata(metadata)
            else:
                self._generated_signature(probe)
        self._signatures = {
            name: Signature.from_proto(name, proto) for name, proto in self._signature_defs.items()
        }
        pool: queue.LifoQueue = queue.LifoQueue()
        pool.put(probe)
        for _ in range(self._num_interpreters - 1):
            interpreter = new_interpreter()
            if not runner_signatures:
                interpreter.allocate_tensors()
            pool.put(interpreter)
        self._pool = pool

    def _interpreter_factory(self, content: bytes) -> Callable[[], Any]:
        # TFLite's ParseExample kernels are in no Python interpreter: TensorFlow runs those ops
        # in front of it (tflite_parse_example.py, issue 14).
        try:
            split_model = tflite_parse_example.split(content)
        except tflite_parse_example.UnsupportedParseExample as err:
            raise ServingError(Code.INVALID_ARGUMENT, f"Unsupported TFLite model: {err}") from err
        if split_model is None:
            self.interpreter_runtime = tflite_runtime.runtime_for(content)
            return lambda: tflite_runtime.new_interpreter(content, self.interpreter_runtime)
        remaining = split_model.remaining
        runtime = tflite_runtime.runtime_for(remaining) if remaining else None
        self.interpreter_runtime = "TensorFlow (ParseExample)" + (
            f" + {runtime}" if runtime else ""
        )
        return lambda: tflite_parse_example.ParseExampleInterpreter(
            split_model, lambda model: tflite_runtime.new_interpreter(model, runtime)
        )

    def _signatures_from_runners(self, probe, runner_signatures: Mapping) -> None:
        for key in runner_signatures:
            runner = probe.get_signature_runner(key)
            proto = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
            for alias, detail in runner.get_input_details().items():
                dims = detail.get("shape_signature", detail["shape"])
                proto.inputs[alias].CopyFrom(
                    _tensor_info(detail["name"], _tf_dtype(detail["dtype"]), dims)
                )
            for alias, detail in runner.get_output_details().items():
                dims = detail.get("shape_signature", detail["shape"])
                proto.outputs[alias].CopyFrom(
                    _tensor_info(detail["name"], _tf_dtype(detail["dtype"]), dims)
                )
            self._signature_defs[key] = proto
            self._runner_keys[key] = key

    def _fix_name(self, name: str, known: Mapping[str, int], what: str) -> str:
        if name in known:
            return name
        legacy = _legacy_name(name)
        if legacy in known:
            return legacy
        raise ServingError(
            Code.INTERNAL,
            f"Signature {what} references an unknown tensor: Unknown tensor '{name}'.",
        )

    def _signatures_from_metadata(self, signature_defs: Mapping[str, bytes]) -> None:
        for key, serialized in signature_defs.items():
            proto = meta_graph_pb2.SignatureDef.FromString(serialized)
            for alias, info in proto.inputs.items():
                info.name = self._fix_name(info.name, self._input_index, f"input {alias}")
            for alias, info in proto.outputs.items():
                info.name = self._fix_name(info.name, self._output_index, f"output {alias}")
            self._signature_defs[key] = proto
            self._runner_keys[key] = None

    def _generated_signature(self, probe) -> None:
        proto = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
        for detail in probe.get_input_details():
            proto.inputs[_legacy_name(detail["name"])].CopyFrom(
                _tensor_info(detail["name"], _tf_dtype(detail["dtype"]), detail["shape"])
            )
        for detail in probe.get_output_details():
            proto.outputs[_legacy_name(detail["name"])].CopyFrom(
                _tensor_info(detail["name"], _tf_dtype(detail["dtype"]), detail["shape"])
            )
        self._signature_defs[DEFAULT_SERVING_SIGNATURE] = proto
        self._runner_keys[DEFAULT_SERVING_SIGNATURE] = None

    @property
    def signatures(self) -> Mapping[str, Signature]:
        return self._signatures

    def signature_def_map(self) -> Mapping[str, meta_graph_pb2.SignatureDef]:
        return self._signature_defs

    def run(
        self,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str],
    ) -> dict[str, np.ndarray]:
        if self._pool is None:
            raise ServingError(Code.UNAVAILABLE, f"{self.model_name} is unloaded")
        interpreter = self._pool.get()
        try:
            runner_key = self._runner_keys.get(signature.name)
            if runner_key is not None:
                return self._run_runner(interpreter, runner_key, signature, inputs, output_keys)
            return self._run_tensors(interpreter, signature, inputs, output_keys)
        except ServingError:
            raise
        except (RuntimeError, ValueError) as err:
            raise ServingError(
                Code.INTERNAL, f"Failed to invoke TfLite interpreter: {err}"
            ) from err
        finally:
            self._pool.put(interpreter)

    @staticmethod
    def _cast(alias: str, array: np.ndarray, expected: int) -> np.ndarray:
        if expected == types_pb2.DT_STRING:
            if array.dtype.kind not in ("O", "S", "U"):
                raise errors.invalid_argument(
                    f"Input {alias} must be a string tensor for this TFLite model"
                )
            return array
        if array.dtype.kind in ("O", "S", "U"):
            raise errors.invalid_argument(
                f"Input {alias} is a string tensor but the TFLite model expects "
                f"{types_pb2.DataType.Name(expected)}"
            )
        return np.ascontiguousarray(array, dtype=tf.dtypes.as_dtype(expected).as_numpy_dtype)

    def _run_runner(self, interpreter, key, signature, inputs, output_keys):
        runner = interpreter.get_signature_runner(key)
        feed = {
            alias: self._cast(alias, array, signature.inputs[alias].dtype)
            for alias, array in inputs.items()
        }
        outputs = runner(**feed)
        return {alias: np.array(outputs[alias]) for alias in output_keys}

    def _run_tensors(self, interpreter, signature, inputs, output_keys):
        resized = False
        feeds = []
        for alias, array in inputs.items():
            index = self._input_index[signature.inputs[alias].tensor_name]
            array = self._cast(alias, array, signature.inputs[alias].dtype)
            current = interpreter.get_input_details()
            shape = next(d["shape"] for d in current if d["index"] == index)
            if tuple(shape) != array.shape:
                interpreter.resize_tensor_input(index, list(array.shape))
                resized = True
            feeds.append((index, array))
        if resized:
            interpreter.allocate_tensors()
        for index, array in feeds:
            interpreter.set_tensor(index, array)
        interpreter.invoke()
        return {
            alias: interpreter.get_tensor(self._output_index[signature.outputs[alias].tensor_name])
            for alias in output_keys
        }

    def unload(self) -> None:
        self._pool = None


def signature_defs_metadata(content: bytes) -> dict[str, bytes]:
    """TF Serving's SignatureDefs stored in a TFLite model ({key: serialized SignatureDef}).

    The `signature_defs_metadata` buffer is a FlexBuffer map of serialized SignatureDefs
    (tensorflow/lite/tools/signature/signature_def_util.cc).
    """
    from flatbuffers import flexbuffers
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    for metadata in model.metadata or []:
        if metadata.name != SIGNATURE_DEFS_METADATA.encode():
            continue
        data = bytes(model.buffers[metadata.buffer].data)
        root = flexbuffers.GetRoot(data).AsMap
        found = {}
        for key_ref in root.Keys:
            key = key_ref.AsKey
            value = root[key]
            # The value is a FlexBuffer string holding binary proto bytes; AsString would
            # decode it as UTF-8.
            found[key] = bytes(flexbuffers.String(value._Indirect(), value._byte_width).Bytes)
        return found
    return {}
