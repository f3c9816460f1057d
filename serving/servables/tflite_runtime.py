"""Which TFLite interpreter runs a `model.tflite` (issue 14).

`tf.lite.Interpreter` is deprecated since TensorFlow 2.18 in favour of LiteRT's interpreter
(`ai_edge_litert.interpreter`, pip `ai-edge-litert`), which the serving stack installs. LiteRT's
wheel carries the builtin kernels only, not the Select-TF-ops (flex) delegate. So:

- a model without flex ops runs on LiteRT where it is installed (TFLite's ParseExample custom ops
  are run by TensorFlow in front of the interpreter: `tflite_parse_example.py`);
- a model with flex ops runs on `tf.lite.Interpreter`: TensorFlow 2.16's carries the flex delegate
  (the pipeline stack); TensorFlow 2.21's pip package has none, so there such a model fails to
  load with TensorFlow's "Select TensorFlow op(s) ... not supported by this interpreter";
- where LiteRT is missing (the pipeline stack), `tf.lite.Interpreter` runs all.
"""

from __future__ import annotations

import functools
from typing import Any

LITERT = "LiteRT"
TF_LITE = "tf.lite"
_FLEX_PREFIX = b"Flex"


@functools.cache
def _litert_interpreter_class() -> type | None:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    return Interpreter


def has_flex_ops(content: bytes) -> bool:
    """Whether the model calls Select-TF-ops (custom op codes named `Flex...`).

    Args:
      content: the model's flatbuffer.

    Returns:
      True when an operator code is a flex op.
    """
    if _FLEX_PREFIX not in content:  # the common case costs one scan of the bytes
        return False
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(content, 0)
    for index in range(model.OperatorCodesLength()):
        custom = model.OperatorCodes(index).CustomCode()
        if custom is not None and custom.startswith(_FLEX_PREFIX):
            return True
    return False


def runtime_for(content: bytes) -> str:
    """The interpreter that runs this model: `LITERT` or `TF_LITE` (see the module docstring).

    Args:
      content: the model's flatbuffer.

    Returns:
      The runtime's name.
    """
    if _litert_interpreter_class() is None or has_flex_ops(content):
        return TF_LITE
    return LITERT


def new_interpreter(content: bytes, runtime: str, num_threads: int | None = None) -> Any:
    """A new interpreter over `content` on `runtime`.

    Args:
      content: the model's flatbuffer.
      runtime: `runtime_for(content)`.
      num_threads: the interpreter's CPU threads (None: the runtime's default).

    Returns:
      An interpreter with tf.lite.Interpreter's API (LiteRT keeps it).
    """
    if runtime == LITERT:
        interpreter_class = _litert_interpreter_class()
    else:
        import tensorflow as tf

        interpreter_class = tf.lite.Interpreter
    return interpreter_class(model_content=content, num_threads=num_threads)
