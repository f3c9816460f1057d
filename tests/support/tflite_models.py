"""TFLite fixture models built by the tests (y = a*x + b, converted with TF's own converter)."""

from __future__ import annotations

import os
import pathlib

import tensorflow as tf


class _HalfPlusTwo(tf.Module):
    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = tf.constant(a)
        self.b = tf.constant(b)

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": self.a * x + self.b}


def write_tflite_half_plus(
    version_dir: str | os.PathLike, a: float = 0.5, b: float = 2.0, signatures: bool = True
) -> pathlib.Path:
    """Writes `<version_dir>/model.tflite`.

    Args:
      version_dir: the version directory (created).
      a: slope.
      b: intercept.
      signatures: keep the converter's `serving_default` signature (served through a signature
        runner); False strips it, so the server must generate one from the tensors.

    Returns:
      The model file's path.
    """
    module = _HalfPlusTwo(a, b)
    function = module.serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    content = converter.convert()
    if not signatures:
        from tensorflow.lite.tools import flatbuffer_utils

        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
        model.signatureDefs = []
        content = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    path = pathlib.Path(version_dir) / "model.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def add_signature_defs_metadata(model_path: str | os.PathLike, signature_defs: dict) -> None:
    """Stores SignatureDefs in a TFLite model the way TF Serving's tooling does
    (`signature_defs_metadata`: a FlexBuffer map of serialized SignatureDef protos).

    Args:
      model_path: an existing model.tflite, rewritten in place.
      signature_defs: {signature key: meta_graph_pb2.SignatureDef}.
    """
    from flatbuffers import flexbuffers
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    builder = flexbuffers.Builder()
    with builder.Map():
        for key, proto in sorted(signature_defs.items()):
            builder.Key(key)
            # Binary proto bytes as a FlexBuffer string (the public String() takes text only).
            builder._WriteBlob(
                proto.SerializeToString(), append_zero=True, type_=flexbuffers.Type.STRING
            )
    data = bytes(builder.Finish())
    path = pathlib.Path(model_path)
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(path.read_bytes()))
    buffer = schema.BufferT()
    buffer.data = list(data)
    model.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name = b"signature_defs_metadata"
    metadata.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), metadata]
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))


class _ParseThenAffine(tf.Module):
    FEATURES = {"x": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(examples, self.FEATURES)
        return {"y": parsed["x"] * 2.0 + 1.0}


def write_tflite_parse_then_affine(version_dir: str | os.PathLike) -> pathlib.Path:
    """Writes a `model.tflite` that parses serialized tf.Examples (TFLite's custom ParseExampleV2
    op) and computes y = 2x + 1 on feature x (default 0) with builtin ops, the shape of a TFX
    model converted with its parsing, as TF Serving serves them.

    Args:
      version_dir: the version directory (created).

    Returns:
      The model file's path.
    """
    module = _ParseThenAffine()
    function = module.serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    # TFLite's own ParseExample kernel (a custom op), not Select-TF-ops.
    converter.allow_custom_ops = True
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path = pathlib.Path(version_dir) / "model.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())
    return path
