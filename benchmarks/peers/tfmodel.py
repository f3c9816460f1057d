"""The model code every peer server shares: a SavedModel's serving signature behind TF Serving's
V1 row format (`{"instances": [...]}` -> `{"predictions": [...]}`), one model call per request.

It is what a user of KServe, FastAPI or BentoML would write to serve a SavedModel as fast as
TensorFlow allows from Python (issue 14): the SavedModel's MetaGraph loaded into a TF1 Session,
and the signature's feeds and fetches turned once into a prepared callable
(`Session._make_callable_from_options`), called with numpy arrays. That is the technique
TF Serving's C++ server and tfrelay's own servable use; it costs one C++ call per request, where
`tf.saved_model.load(path).signatures[name](**tensors)` goes through the eager function wrapper
(structured-signature checks, tensor conversion, a `ConcreteFunction` call): measured for
half_plus_two on one core, 11.8k one-instance calls/s against 5.7k. The in-process ceiling
(`benchmarks.ceiling`) calls the model the same way, without HTTP. This is the peers' own code,
written from TensorFlow's API, not imported from tfrelay.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2


class V1Model:
    """A SavedModel's signature answering TF Serving V1 predict bodies.

    Instances must have the signature's shape (half_plus_two's `x` is [-1, 1]: send `[[1.0]]`).

    Args:
      path: the SavedModel (version) directory.
      signature: the signature to call.

    Raises:
      KeyError: the SavedModel has no such signature.
    """

    def __init__(self, path: str, signature: str = "serving_default") -> None:
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        with self._graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(self._session, ["serve"], path)
        signature_def = meta_graph.signature_def[signature]
        self.input_names = sorted(signature_def.inputs)
        self.output_names = sorted(signature_def.outputs)
        #: Input name -> numpy dtype the graph is fed with.
        self.dtypes = {
            name: tf.dtypes.as_dtype(signature_def.inputs[name].dtype).as_numpy_dtype
            for name in self.input_names
        }
        options = config_pb2.CallableOptions(
            feed=[signature_def.inputs[name].name for name in self.input_names],
            fetch=[signature_def.outputs[name].name for name in self.output_names],
        )
        # The public Session.make_callable() would wrap Session.run (Python-side feed checks on
        # every call); the callable made from CallableOptions is one C++ call (TF_SessionRunCallable).
        self._callable = self._session._make_callable_from_options(options)

    def tensors(self, instances: list[Any]) -> dict[str, np.ndarray]:
        """The signature's feeds (numpy arrays of its dtypes) for a list of instances.

        Args:
          instances: rows: values for a single-input signature, else objects keyed by input.

        Returns:
          Input name -> array.
        """
        if isinstance(instances[0], dict):
            columns = {name: [row[name] for row in instances] for name in self.input_names}
        else:
            (name,) = self.input_names
            columns = {name: instances}
        return {
            name: np.asarray(
                _encoded(values) if self.dtypes[name] is object else values,
                dtype=self.dtypes[name],
            )
            for name, values in columns.items()
        }

    def call(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One model call.

        Args:
          feeds: input name -> array, as `tensors` builds them.

        Returns:
          Output name -> array.
        """
        outputs = self._callable(*(feeds[name] for name in self.input_names))
        return dict(zip(self.output_names, outputs, strict=True))

    def predict(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answers a V1 predict body: one model call for all its instances.

        Args:
          body: `{"instances": [...]}`.

        Returns:
          `{"predictions": [...]}`.
        """
        return {"predictions": rows(self.call(self.tensors(body["instances"])))}


def _encoded(values: Any) -> Any:
    """Strings as bytes (a DT_STRING feed is an object array of bytes)."""
    if isinstance(values, str):
        return values.encode()
    if isinstance(values, list):
        return [_encoded(v) for v in values]
    return values


def _jsonable(array: np.ndarray) -> list[Any]:
    if array.dtype == object:
        return [
            _jsonable(item) if isinstance(item, np.ndarray) else item.decode() for item in array
        ]
    return array.tolist()


def rows(outputs: dict[str, np.ndarray]) -> list[Any]:
    """TF Serving's row format: one value per instance for a single output, else one object per
    instance keyed by output name.

    Args:
      outputs: output name -> array (first dimension: instances).

    Returns:
      The `predictions` list.
    """
    arrays = {name: _jsonable(np.asarray(tensor)) for name, tensor in outputs.items()}
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    count = len(next(iter(arrays.values())))
    return [{name: values[i] for name, values in arrays.items()} for i in range(count)]
