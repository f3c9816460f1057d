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
