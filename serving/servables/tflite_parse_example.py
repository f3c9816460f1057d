"""TFLite's ParseExample ops, run by TensorFlow in front of the interpreter (issue 14).

TF Serving links TFLite's own ParseExample(V2) kernels (tensorflow/lite/kernels/parse_example/)
into its TFLite session, so a `model.tflite` that parses serialized `tf.Example`s serves there.
No Python interpreter has those kernels. Up to TensorFlow 2.16, `tf.lite.Interpreter` carried the
Select-TF-ops (flex) delegate, and tfrelay rewrote the ops into flex calls; TensorFlow 2.21's pip
package and LiteRT's ship no flex delegate ("Select TensorFlow op(s) ... not supported by this
interpreter"). So, on both stacks alike:

1. each ParseExample operator whose serialized input is a model input and whose other inputs are
   constants is cut out of the model, and its outputs become inputs of the remaining model;
2. at request time TensorFlow runs the same op (`tf.raw_ops` through an imported NodeDef) on the
   serialized examples, and the remaining model (if any operator is left) runs on the
   interpreter with the parsed tensors.

`ParseExampleInterpreter` keeps `tf.lite.Interpreter`'s tensor-index API with the original
model's tensor indices, so `TfLiteServable` drives it like any interpreter.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorflow.core.framework import types_pb2

PARSE_EXAMPLE_OPS = ("ParseExample", "ParseExampleV2")

# tflite::TensorType -> numpy dtype for the tensors a ParseExample op reads and writes.
_NUMPY_OF_TFLITE = {
    0: np.float32,
    2: np.int32,
    4: np.int64,
    5: np.bytes_,
    9: np.int8,
    10: np.float64,
}
# tflite::TensorType -> tensorflow DataType.
_TF_OF_TFLITE = {
    0: types_pb2.DT_FLOAT,
    1: types_pb2.DT_HALF,
    2: types_pb2.DT_INT32,
    3: types_pb2.DT_UINT8,
    4: types_pb2.DT_INT64,
    5: types_pb2.DT_STRING,
    6: types_pb2.DT_BOOL,
    7: types_pb2.DT_INT16,
    8: types_pb2.DT_COMPLEX64,
    9: types_pb2.DT_INT8,
    10: types_pb2.DT_DOUBLE,
}


class UnsupportedParseExample(ValueError):
    """A ParseExample op that cannot run in front of the interpreter (its serialized input is
    computed by the model, or a key or default is not a constant)."""


@dataclass(frozen=True)
class _ParseStep:
    serialized_index: int
    output_indices: tuple[int, ...]
    run: Callable[[np.ndarray], list[np.ndarray]]


@dataclass(frozen=True)
class _TensorDetail:
    name: str
    index: int
    dtype: Any
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]


@dataclass(frozen=True)
class _SignatureMap:
    inputs: dict[str, _TensorDetail]
    outputs: dict[str, _TensorDetail]


@dataclass(frozen=True)
class SplitModel:
    """A TFLite model with its ParseExample operators cut out.

    Attributes:
      steps: the cut-out ParseExample operators, in model order.
      remaining: the model without them (None when no operator is left).
      inputs: the original model's inputs.
      outputs: the original model's outputs.
      signatures: the original model's signature runners (key -> aliases and tensors).
    """

    steps: tuple[_ParseStep, ...]
    remaining: bytes | None
    inputs: tuple[_TensorDetail, ...]
    outputs: tuple[_TensorDetail, ...]
    signatures: dict[str, _SignatureMap]


def has_parse_example(content: bytes) -> bool:
    """Whether the model may call TFLite's custom ParseExample ops (a byte scan, no parsing).

    Args:
      content: the model's flatbuffer.

    Returns:
      True when the op name occurs in the model.
    """
    return b"ParseExample" in content


def split(content: bytes) -> SplitModel | None:
    """Cuts the ParseExample operators out of a TFLite model.

    Args:
      content: the model's flatbuffer.

    Returns:
      The split model, or None when it has no ParseExample operator.

    Raises:
      UnsupportedParseExample: an operator cannot run in front of the interpreter.
    """
    if not has_parse_example(content):
        return None
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    parse_codes = {
        index
        for index, code in enumerate(model.operatorCodes)
        if (code.customCode or b"").decode() in PARSE_EXAMPLE_OPS
    }
    if not parse_codes:
        return None
    if len(model.subgraphs) != 1:
        raise UnsupportedParseExample("ParseExample in a model with several subgraphs")
    subgraph = model.subgraphs[0]
    inputs = [int(i) for i in subgraph.inputs]
    outputs = [int(i) for i in subgraph.outputs]
    details = (
        tuple(_detail(subgraph, i) for i in inputs),
        tuple(_detail(subgraph, i) for i in outputs),
    )
    signatures = {
        signature.signatureKey.decode(): _SignatureMap(
            {m.name.decode(): _detail(subgraph, int(m.tensorIndex)) for m in signature.inputs},
            {m.name.decode(): _detail(subgraph, int(m.tensorIndex)) for m in signature.outputs},
        )
        for signature in model.signatureDefs or []
    }
    steps = []
    kept = []
    for operator in subgraph.operators:
        if operator.opcodeIndex not in parse_codes:
            kept.append(operator)
            continue
        op_name = model.operatorCodes[operator.opcodeIndex].customCode.decode()
        steps.append(_parse_step(model, subgraph, operator, op_name, set(inputs)))
    parsed = [index for step in steps for index in step.output_indices]
    if not kept:
        remaining = None
    else:
        still_read = {int(i) for operator in kept for i in operator.inputs}
        subgraph.operators = kept
        subgraph.inputs = [i for i in inputs if i in still_read or i in outputs] + [
            i for i in parsed if i in still_read
        ]
        subgraph.outputs = [i for i in outputs if i not in parsed]
        # The signatures name tensors that are no longer the remaining model's inputs; the
        # wrapper serves them from the original model's maps.
        model.signatureDefs = []
        remaining = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    return SplitModel(tuple(steps), remaining, *details, signatures)


def _detail(subgraph, index: int) -> _TensorDetail:
    tensor = subgraph.tensors[index]
    shape = tuple(int(d) for d in tensor.shape) if tensor.shape is not None else ()
    signature = (
        tuple(int(d) for d in tensor.shapeSignature) if tensor.shapeSignature is not None else shape
    )
    dtype = _NUMPY_OF_TFLITE.get(tensor.type, np.float32)
    return _TensorDetail((tensor.name or b"").decode(), index, dtype, shape, signature)


def _constant(model, subgraph, index: int) -> np.ndarray:
    tensor = subgraph.tensors[index]
    data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
    shape = [int(d) for d in tensor.shape] if tensor.shape is not None else []
    if data is None:
        if 0 in shape:
            return np.zeros(
                shape, dtype=object if tensor.type == 5 else _NUMPY_OF_TFLITE[tensor.type]
            )
        name = (tensor.name or b"").decode()
        raise UnsupportedParseExample(f"ParseExample input {name!r} is not a constant")
    raw = bytes(data)
    if tensor.type == 5:  # TFLite strings: count, count + 1 offsets, then the bytes
        (count,) = struct.unpack_from("<i", raw, 0)
        offsets = struct.unpack_from(f"<{count + 1}i", raw, 4)
        strings = [raw[offsets[i] : offsets[i + 1]] for i in range(count)]
        array = np.empty(count, dtype=object)
        array[:] = strings
        return array.reshape(shape)
    return np.frombuffer(raw, dtype=_NUMPY_OF_TFLITE[tensor.type]).reshape(shape).copy()


def _parse_step(model, subgraph, operator, op_name: str, model_inputs: set[int]) -> _ParseStep:
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2

    operator_inputs = [int(i) for i in operator.inputs]
    serialized = operator_inputs[0]
    if serialized not in model_inputs:
        raise UnsupportedParseExample(
            f"{op_name} parses a tensor the model computes; only model inputs can be parsed"
        )
    node = parse_example_node_def(op_name, subgraph, operator)
    graph = graph_pb2.GraphDef()
    placeholder = graph.node.add(name="serialized", op="Placeholder")
    placeholder.attr["dtype"].type = tf.string.as_datatype_enum
    node.name = "parse"
    node.ClearField("input")
    node.input.append("serialized")
    for position, index in enumerate(operator_inputs[1:], start=1):
        value = _constant(model, subgraph, index)
        dtype = tf.string if subgraph.tensors[index].type == 5 else tf.as_dtype(value.dtype)
        constant = graph.node.add(name=f"constant_{position}", op="Const")
        constant.attr["dtype"].type = dtype.as_datatype_enum
        constant.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
        node.input.append(constant.name)
    graph.node.append(node)
    output_indices = tuple(int(i) for i in operator.outputs)
    names = [f"parse:{k}" for k in range(len(output_indices))]

    def imported(examples):
        return tf.graph_util.import_graph_def(
            graph, input_map={"serialized:0": examples}, return_elements=names, name=""
        )

    function = tf.compat.v1.wrap_function(imported, [tf.TensorSpec(None, tf.string)])

    def run(examples: np.ndarray) -> list[np.ndarray]:
        return [tensor.numpy() for tensor in function(tf.constant(examples, dtype=tf.string))]

    return _ParseStep(serialized, output_indices, run)


def parse_example_node_def(op_name: str, subgraph, operator):
    """The TensorFlow NodeDef of a TFLite ParseExample(V2) operator (attributes from its tensors).

    Args:
      op_name: "ParseExample" or "ParseExampleV2".
      subgraph: the flatbuffer subgraph object holding the operator.
      operator: the operator object.

    Returns:
      A `NodeDef` without inputs.
    """
    from flatbuffers import flexbuffers
    from tensorflow.core.framework import node_def_pb2

    options = {}
    if operator.customOptions is not None and len(operator.customOptions):
        try:
            options = flexbuffers.Loads(bytes(operator.customOptions)) or {}
        except Exception:  # noqa: BLE001 - options are optional hints
            options = {}
    num_sparse = int(options.get("num_sparse", 0)) if isinstance(options, dict) else 0
    tensors = subgraph.tensors
    inputs = [int(i) for i in operator.inputs]
    outputs = [int(i) for i in operator.outputs]

    def dtype_of(index: int) -> int:
        return _TF_OF_TFLITE[tensors[index].type]

    node = node_def_pb2.NodeDef(name=op_name, op=op_name)
    if op_name == "ParseExampleV2":
        dense_defaults = inputs[5:]
    else:
        num_dense = (len(inputs) - 2 - num_sparse) // 2
        dense_defaults = inputs[2 + num_sparse + num_dense :]
        node.attr["Nsparse"].i = num_sparse
        node.attr["Ndense"].i = num_dense
    node.attr["Tdense"].list.type.extend(dtype_of(i) for i in dense_defaults)
    node.attr["sparse_types"].list.type.extend(
        dtype_of(i) for i in outputs[num_sparse : 2 * num_sparse]
    )
    dense_outputs = outputs[3 * num_sparse : 3 * num_sparse + len(dense_defaults)]
    for index in dense_outputs:
        shape = node.attr["dense_shapes"].list.shape.add()
        for size in list(tensors[index].shape)[1:]:
            shape.dim.add(size=int(size))
    if op_name == "ParseExampleV2":
        node.attr["num_sparse"].i = num_sparse
        node.attr["ragged_value_types"].list.SetInParent()
        node.attr["ragged_split_types"].list.SetInParent()
    if not dense_defaults:
        node.attr["Tdense"].list.SetInParent()
        node.attr["dense_shapes"].list.SetInParent()
    if not num_sparse:
        node.attr["sparse_types"].list.SetInParent()
    return node


def _as_dict(detail: _TensorDetail, shapes: dict[int, tuple[int, ...]]) -> dict[str, Any]:
    return {
        "name": detail.name,
        "index": detail.index,
        "dtype": detail.dtype,
        "shape": np.array(shapes.get(detail.index, detail.shape), dtype=np.int32),
        "shape_signature": np.array(detail.shape_signature, dtype=np.int32),
    }


class ParseExampleInterpreter:
    """An interpreter for a split model: ParseExample in TensorFlow, the rest in `remaining`.

    Offers the part of `tf.lite.Interpreter`'s API that `TfLiteServable` uses in tensor-index
    mode, with the original model's tensor indices and details. One instance per pooled
    interpreter (not thread-safe, like the interpreters it wraps).

    Args:
      model: the split model.
      new_interpreter: makes an interpreter over the remaining model's bytes.
    """

    def __init__(self, model: SplitModel, new_interpreter: Callable[[bytes], Any]) -> None:
        self._model = model
        self._remaining = new_interpreter(model.remaining) if model.remaining else None
        self._remaining_inputs = (
            {d["index"] for d in self._remaining.get_input_details()} if self._remaining else set()
        )
        self._serialized = {step.serialized_index for step in model.steps}
        self._shapes = {d.index: d.shape for d in model.inputs}
        self._fed: dict[int, np.ndarray] = {}
        self._parsed: dict[int, np.ndarray] = {}

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        return {
            key: {"inputs": list(signature.inputs), "outputs": list(signature.outputs)}
            for key, signature in self._model.signatures.items()
        }

    def get_signature_runner(self, key: str) -> _SignatureRunner:
        return _SignatureRunner(self, self._model.signatures[key])

    def _details(self, details: Sequence[_TensorDetail], shapes: dict[int, tuple[int, ...]]):
        return [_as_dict(d, shapes) for d in details]

    def get_input_details(self) -> list[dict]:
        return self._details(self._model.inputs, self._shapes)

    def get_output_details(self) -> list[dict]:
        return self._details(self._model.outputs, {})

    def allocate_tensors(self) -> None:
        if self._remaining is not None:
            self._remaining.allocate_tensors()

    def resize_tensor_input(self, index: int, shape: Sequence[int]) -> None:
        self._shapes[index] = tuple(int(d) for d in shape)
        if index in self._remaining_inputs:
            self._remaining.resize_tensor_input(index, list(shape))

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        self._fed[index] = value
        if index in self._remaining_inputs:
            self._remaining.set_tensor(index, value)

    def invoke(self) -> None:
        self._parsed = {}
        for step in self._model.steps:
            examples = self._fed.get(step.serialized_index)
            if examples is None:
                raise ValueError("ParseExample's serialized input was not set")
            for index, value in zip(step.output_indices, step.run(examples), strict=True):
                self._parsed[index] = value
        if self._remaining is None:
            return
        resized = False
        for index, value in self._parsed.items():
            if index not in self._remaining_inputs:
                continue
            current = next(
                d["shape"] for d in self._remaining.get_input_details() if d["index"] == index
            )
            if tuple(current) != value.shape:
                self._remaining.resize_tensor_input(index, list(value.shape))
                resized = True
        if resized:
            self._remaining.allocate_tensors()
            for index, value in self._fed.items():
                if index in self._remaining_inputs:
                    self._remaining.set_tensor(index, value)
        for index, value in self._parsed.items():
            if index in self._remaining_inputs:
                self._remaining.set_tensor(index, value)
        self._remaining.invoke()

    def get_tensor(self, index: int) -> np.ndarray:
        if index in self._parsed:
            return self._parsed[index]
        return self._remaining.get_tensor(index)


class _SignatureRunner:
    """`tf.lite`'s SignatureRunner API over a `ParseExampleInterpreter` (aliases to tensors)."""

    def __init__(self, interpreter: ParseExampleInterpreter, signature: _SignatureMap) -> None:
        self._interpreter = interpreter
        self._signature = signature

    def get_input_details(self) -> dict[str, dict[str, Any]]:
        return {alias: _as_dict(d, {}) for alias, d in self._signature.inputs.items()}

    def get_output_details(self) -> dict[str, dict[str, Any]]:
        return {alias: _as_dict(d, {}) for alias, d in self._signature.outputs.items()}

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        interpreter = self._interpreter
        for alias, value in inputs.items():
            index = self._signature.inputs[alias].index
            interpreter.resize_tensor_input(index, list(np.shape(value)))
        interpreter.allocate_tensors()
        for alias, value in inputs.items():
            interpreter.set_tensor(self._signature.inputs[alias].index, value)
        interpreter.invoke()
        return {
            alias: interpreter.get_tensor(detail.index)
            for alias, detail in self._signature.outputs.items()
        }
