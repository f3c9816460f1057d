"""The model code every peer server shares: a SavedModel's serving signature behind TF Serving's
V1 row format (`{"instances": [...]}` -> `{"predictions": [...]}`), one model call per request.

It is what a user of KServe, FastAPI or BentoML writes to serve a SavedModel: load it with
`tf.saved_model.load`, turn the JSON instances into tensors of the signature's dtypes, call the
signature, turn the outputs back into lists. The in-process ceiling (`benchmarks.ceiling`) calls
the signature the same way, without HTTP.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


class V1Model:
    """A SavedModel's signature answering TF Serving V1 predict bodies.

    Instances must have the signature's shape (half_plus_two's `x` is [-1, 1]: send `[[1.0]]`);
    TF Serving would also take `[1.0]`, feeding the graph past its static shape, which a
    signature function refuses.

    Args:
      path: the SavedModel (version) directory.
      signature: the signature to call.
    """

    def __init__(self, path: str, signature: str = "serving_default") -> None:
        self._loaded = tf.saved_model.load(path)  # keeps the signature's variables alive
        self.function = self._loaded.signatures[signature]
        _, self.specs = self.function.structured_input_signature

    def tensors(self, instances: list[Any]) -> dict[str, tf.Tensor]:
        """The signature's keyword arguments for a list of instances (row format)."""
        if isinstance(instances[0], dict):
            columns = {name: [row[name] for row in instances] for name in self.specs}
        else:
            (name,) = self.specs
            columns = {name: instances}
        return {
            name: tf.constant(values, dtype=self.specs[name].dtype)
            for name, values in columns.items()
        }

    def predict(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answers a V1 predict body: one model call for all its instances."""
        outputs = self.function(**self.tensors(body["instances"]))
        return {"predictions": rows(outputs)}


def _jsonable(array: np.ndarray) -> list[Any]:
    if array.dtype == object:
        return [
            _jsonable(item) if isinstance(item, np.ndarray) else item.decode() for item in array
        ]
    return array.tolist()


def rows(outputs: dict[str, tf.Tensor]) -> list[Any]:
    """TF Serving's row format: one value per instance for a single output, else one object per
    instance keyed by output name."""
    arrays = {name: _jsonable(tensor.numpy()) for name, tensor in outputs.items()}
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    count = len(next(iter(arrays.values())))
    return [{name: values[i] for name, values in arrays.items()} for i in range(count)]
