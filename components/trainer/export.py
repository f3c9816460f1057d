"""Serving-ready export of a tabular model: signatures, warmup requests, and the layout the
Optimizer reads back.

```
<model.uri>/Format-Serving/        the SavedModel that is pushed and served
    saved_model.pb, variables/
    assets.extra/tf_serving_warmup_requests
<model.uri>/Format-TFRelay/        what it was built from (for the Optimizer)
    core/                          the Keras core model (tf_keras SavedModel)
    tabular.json                   features, statistics, label vocabulary, task
```

Signatures:
- `serving_default`: raw named features ([batch] tensors) -> `class_ids`, `classes`,
  `probabilities` (classification) or `predictions` (regression).
- `classify` / `regress`: serialized tf.Examples (`inputs`) -> `classes` + `scores` / `outputs`,
  the shapes TF Serving's Classify and Regress APIs expect.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tensorflow_serving.apis import (
    classification_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from tfrelay.components.trainer.features import Feature, Kind, decode_examples, parse_examples
from tfrelay.components.trainer.preprocessing import FeatureStats, Preprocessor

SERVING_DIR = "Format-Serving"
TFRELAY_DIR = "Format-TFRelay"
CORE_DIR = "core"
SPEC_FILE = "tabular.json"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

CLASSIFY_SIGNATURE = "classify"
REGRESS_SIGNATURE = "regress"


@dataclasses.dataclass
class TabularSpec:
    """Everything besides the trained weights that defines a tabular model.

    Attributes:
      features: input features, in column order.
      stored_dtypes: how numeric features are stored in the examples ("float32" or "int64").
      stats: preprocessing statistics from the training data.
      task: "classification" or "regression".
      label_key: the label feature.
      label_vocabulary: class names, index = class id (classification only).
    """

    features: list[Feature]
    stored_dtypes: dict[str, str]
    stats: FeatureStats
    task: str
    label_key: str
    label_vocabulary: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "features": [{"name": f.name, "kind": f.kind.value} for f in self.features],
            "stored_dtypes": self.stored_dtypes,
            "stats": self.stats.to_json(),
            "task": self.task,
            "label_key": self.label_key,
            "label_vocabulary": self.label_vocabulary,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> TabularSpec:
        return cls(
            features=[Feature(f["name"], Kind(f["kind"])) for f in data["features"]],
            stored_dtypes=dict(data["stored_dtypes"]),
            stats=FeatureStats.from_json(data["stats"]),
            task=data["task"],
            label_key=data["label_key"],
            label_vocabulary=list(data.get("label_vocabulary", [])),
        )

    @property
    def stored(self) -> dict[str, tf.DType]:
        return {name: tf.as_dtype(dtype) for name, dtype in self.stored_dtypes.items()}


class ServingModel(tf.Module):
    """Preprocessing + Keras core + output decoding, with the serving signatures.

    Args:
      core: the trained Keras model over the preprocessed float vector.
      spec: the model's TabularSpec.
    """

    def __init__(self, core: keras.Model, spec: TabularSpec) -> None:
        super().__init__(name="serving_model")
        self.core = core
        self.spec = spec
        self.preprocessor = Preprocessor(spec.features, spec.stats)
        self._classes = tf.constant(spec.label_vocabulary or [""], tf.string)

    def outputs(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Raw features -> the serving_default outputs."""
        predictions = self.core(self.preprocessor(features), training=False)
        if self.spec.task == REGRESSION:
            return {"predictions": tf.reshape(predictions, [-1])}
        class_ids = tf.argmax(predictions, axis=1)
        return {
            "class_ids": class_ids,
            "classes": tf.gather(self._classes, class_ids),
            "probabilities": predictions,
        }

    def _parse(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        # Lenient: clients may send 40 or 40.0 for any numeric feature.
        return decode_examples(serialized, self.spec.features)

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """Concrete functions for `tf.saved_model.save(..., signatures=...)`."""
        input_specs = {
            f.name: tf.TensorSpec([None], f.dtype, name=f.name) for f in self.spec.features
        }
        serve = tf.function(lambda **features: self.outputs(features))
        signatures = {"serving_default": serve.get_concrete_function(**input_specs)}
        examples = tf.TensorSpec([None], tf.string, name="inputs")
        if self.spec.task == REGRESSION:

            @tf.function(input_signature=[examples])
            def regress(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
                return {"outputs": self.outputs(self._parse(serialized))["predictions"]}

            signatures[REGRESS_SIGNATURE] = regress.get_concrete_function()
        else:

            @tf.function(input_signature=[examples])
            def classify(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
                scores = self.outputs(self._parse(serialized))["probabilities"]
                classes = tf.tile(self._classes[None, :], [tf.shape(scores)[0], 1])
                return {"classes": classes, "scores": scores}

            signatures[CLASSIFY_SIGNATURE] = classify.get_concrete_function()
        return signatures


def _tensor_proto(values: np.ndarray, dtype: tf.DType):
    return tf.make_tensor_proto(
        values.astype(object) if dtype == tf.string else values, dtype=dtype
    )


def warmup_requests(
    spec: TabularSpec, serialized_examples: Sequence[bytes]
) -> list[prediction_log_pb2.PredictionLog]:
    """TF Serving warmup records built from real examples: one Predict on `serving_default`
    (raw features) and one Classify/Regress on the tf.Example signature."""
    if not serialized_examples:
        return []
    parsed = {
        name: tensor.numpy()
        for name, tensor in parse_examples(
            tf.constant(list(serialized_examples)), spec.features, spec.stored
        ).items()
    }
    predict = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(signature_name="serving_default")
    )
    for feature in spec.features:
        predict.inputs[feature.name].CopyFrom(_tensor_proto(parsed[feature.name], feature.dtype))
    logs = [
        prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=predict))
    ]
    examples = input_pb2.Input(
        example_list=input_pb2.ExampleList(
            examples=[tf.train.Example.FromString(s) for s in serialized_examples]
        )
    )
    if spec.task == REGRESSION:
        request = regression_pb2.RegressionRequest(
            model_spec=model_pb2.ModelSpec(signature_name=REGRESS_SIGNATURE), input=examples
        )
        logs.append(
            prediction_log_pb2.PredictionLog(
                regress_log=prediction_log_pb2.RegressLog(request=request)
            )
        )
    else:
        request = classification_pb2.ClassificationRequest(
            model_spec=model_pb2.ModelSpec(signature_name=CLASSIFY_SIGNATURE), input=examples
        )
        logs.append(
            prediction_log_pb2.PredictionLog(
                classify_log=prediction_log_pb2.ClassifyLog(request=request)
            )
        )
    return logs


def write_warmup_file(serving_dir: str, logs: Sequence[prediction_log_pb2.PredictionLog]) -> str:
    """Writes `assets.extra/tf_serving_warmup_requests` (a TFRecord of PredictionLogs)."""
    path = os.path.join(serving_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def export_model(
    core: keras.Model,
    spec: TabularSpec,
    model_uri: str,
    warmup_examples: Sequence[bytes] = (),
    serving_dir: str | None = None,
) -> str:
    """Exports the serving SavedModel (with warmup) and the Optimizer's Format-TFRelay layout.

    Args:
      core: the trained Keras core.
      spec: its TabularSpec.
      model_uri: the Model artifact's URI.
      warmup_examples: serialized eval examples to build warmup requests from.
      serving_dir: where the SavedModel goes (default `<model_uri>/Format-Serving`).

    Returns:
      The serving directory.
    """
    serving_dir = serving_dir or os.path.join(model_uri, SERVING_DIR)
    module = ServingModel(_weights_only(core), spec)
    tf.saved_model.save(module, serving_dir, signatures=module.signatures())
    write_warmup_file(serving_dir, warmup_requests(spec, warmup_examples))
    tfrelay_dir = os.path.join(model_uri, TFRELAY_DIR)
    core.save(os.path.join(tfrelay_dir, CORE_DIR), include_optimizer=False, save_format="tf")
    with tf.io.gfile.GFile(os.path.join(tfrelay_dir, SPEC_FILE), "w") as f:
        f.write(json.dumps(spec.to_json(), indent=2, sort_keys=True))
    return serving_dir


def _weights_only(core: keras.Model) -> keras.Model:
    """The core without its optimizer: a compiled model tracks Adam's slots, which would triple
    the exported variables. Falls back to the core itself for models clone_model cannot copy
    (subclassed ones), whose optimizer is then detached instead."""
    try:
        clone = keras.models.clone_model(core)
    except (ValueError, TypeError, NotImplementedError):
        core.optimizer = None
        return core
    clone.set_weights(core.get_weights())
    return clone


def load_tabular_model(model_uri: str) -> tuple[keras.Model, TabularSpec]:
    """Reads back what `export_model` wrote (the Keras core and its spec).

    Raises:
      FileNotFoundError: the model was not exported by tfrelay's Trainer (it has no
        Format-TFRelay directory).
    """
    tfrelay_dir = os.path.join(model_uri, TFRELAY_DIR)
    spec_path = os.path.join(tfrelay_dir, SPEC_FILE)
    if not tf.io.gfile.exists(spec_path):
        raise FileNotFoundError(
            f"{model_uri} has no {TFRELAY_DIR}/{SPEC_FILE}: it was not exported by tfrelay's "
            "Trainer (a user run_fn can call tfrelay.components.trainer.export.export_model)."
        )
    with tf.io.gfile.GFile(spec_path) as f:
        spec = TabularSpec.from_json(json.load(f))
    core = keras.models.load_model(os.path.join(tfrelay_dir, CORE_DIR), compile=False)
    return core, spec
