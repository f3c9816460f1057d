"""Answering one logged request in process, as the model server would (no TFX types).

A logged request is answered through the model server's own code (`tfrelay.serving.api`), so
the signature lookup, the checks and the Classify/Regress post-processing are the ones clients
get. Each answer is reduced to what the comparison needs: per prediction (one example of a
Classify/Regress request, one row of a Predict batch) a top class or a value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfrelay.serving.api import classify_regress, predict
from tfrelay.serving.servables.base import REGRESS_METHOD, Servable

CLASSES = "classes"  # a top class per prediction (labels, or ids)
VALUES = "values"  # a regression value per prediction

# The log kinds a model server answers; the others (session_run_log, none) are never replayed.
REPLAYABLE_KINDS = ("predict_log", "classify_log", "regress_log", "multi_inference_log")


class CannotServe(Exception):
    """The model serves no signature for this request (its kind, or the signature it names)."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """One response, reduced for comparison.

    Attributes:
      parts: (what, kind, values) per answered part: `what` names it (e.g. "predict
        serving_default/classes", "classify classify"), `kind` is CLASSES or VALUES, `values` an
        array with one entry per prediction.
      others: {what: (kind, values)} of a Predict's other comparable outputs, so the candidate
        is compared on the output the serving version's answer stands for, even when the
        candidate would pick another (e.g. it added a `classes` output).
    """

    parts: tuple[tuple[str, str, np.ndarray], ...]
    others: Mapping[str, tuple[str, np.ndarray]] = dataclasses.field(default_factory=dict)

    def find(self, what: str) -> tuple[str, np.ndarray] | None:
        """(kind, values) of the part or other output named `what`, or None."""
        for name, kind, values in self.parts:
            if name == what:
                return kind, values
        return self.others.get(what)


def _ranked_outputs(outputs: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """(alias, kind) of the comparable Predict outputs, the one that stands for the prediction
    first.

    One output per response is compared, so a classifier's `class_ids`, `classes` and
    `probabilities` count as one prediction, not three. Labels first: they stay comparable when
    the candidate knows other classes than the serving version (ids and score columns would not).
    """
    ranked = []
    for alias, array in outputs.items():
        if array.ndim == 0:
            continue
        if array.ndim == 1 and array.dtype.kind in "OSU":
            ranked.append((0, alias, CLASSES))
        elif array.dtype.kind == "f" and array.ndim == 2 and array.shape[1] > 1:
            ranked.append((1, alias, CLASSES))  # scores: the top class is the argmax
        elif array.ndim == 1 and array.dtype.kind in "iub":
            ranked.append((2, alias, CLASSES))
        elif array.dtype.kind == "f" and (array.ndim == 1 or array.shape[1:] == (1,)):
            ranked.append((3, alias, VALUES))
    return [(alias, kind) for _, alias, kind in sorted(ranked)]


def predict_values(array: np.ndarray, kind: str) -> np.ndarray:
    """One value per prediction of a Predict output: its top class, or its regression value."""
    if kind == VALUES:
        return array.reshape(-1).astype(np.float64)
    if array.dtype.kind == "f" and array.ndim == 2:
        return np.argmax(array, axis=1)
    return array.reshape(-1)


def _top_classes(results: list[list[classify_regress.Class]]) -> np.ndarray:
    top = np.empty(len(results), dtype=object)
    for i, row in enumerate(results):
        # The highest score's label; a classes-only signature has scores 0.0: its first class.
        top[i] = max(row, key=lambda c: c.score).label if row else b""
    return top


Runner = Callable[[], Answer]


def plan(servable: Servable, log: prediction_log_pb2.PredictionLog) -> Runner:
    """How `servable` answers `log`: the signature is resolved now, the model runs later.

    Args:
      servable: a loaded servable.
      log: one logged request.

    Returns:
      A function that runs the request and returns its Answer (raising whatever the model or the
      server's checks raise).

    Raises:
      CannotServe: the log's kind is not a request a model server answers, or the servable has
        no fitting signature for it.
    """
    kind = log.WhichOneof("log_type")
    try:
        if kind == "predict_log":
            return _plan_predict(servable, log.predict_log.request)
        if kind == "classify_log":
            request = log.classify_log.request
            signature = classify_regress.classification_signature(
                servable, request.model_spec.signature_name
            )
            return lambda: _classify(servable, signature, request.input, "classify")
        if kind == "regress_log":
            request = log.regress_log.request
            signature = classify_regress.regression_signature(
                servable, request.model_spec.signature_name
            )
            return lambda: _regress(servable, signature, request.input, "regress")
        if kind == "multi_inference_log":
            return _plan_multi_inference(servable, log.multi_inference_log.request)
    except Exception as err:  # any signature problem means "not served here"
        raise CannotServe(f"{kind}: {err}") from err
    raise CannotServe(f"{kind or 'an empty log'} is not a request a model server answers")


def _plan_predict(servable: Servable, request) -> Runner:
    signature = predict.find_signature(servable, request.model_spec.signature_name)

    def run() -> Answer:
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        outputs = predict.run_predict(servable, signature, inputs, list(request.output_filter))
        answers = [
            (f"predict {signature.name}/{alias}", kind, predict_values(outputs[alias], kind))
            for alias, kind in _ranked_outputs(outputs)
        ]
        others = {what: (kind, values) for what, kind, values in answers[1:]}
        return Answer(tuple(answers[:1]), others)

    return run


def _classify(servable: Servable, signature, request_input, what: str) -> Answer:
    examples = classify_regress.serialized_examples(request_input)
    results = classify_regress.run_classify(servable, signature, examples)
    return Answer(((f"{what} {signature.name}", CLASSES, _top_classes(results)),))


def _regress(servable: Servable, signature, request_input, what: str) -> Answer:
    examples = classify_regress.serialized_examples(request_input)
    values = classify_regress.run_regress(servable, signature, examples)
    return Answer(((f"{what} {signature.name}", VALUES, np.asarray(values, np.float64)),))


def _plan_multi_inference(servable: Servable, request) -> Runner:
    tasks = []
    for task in request.tasks:
        name = task.model_spec.signature_name
        if task.method_name == REGRESS_METHOD:
            tasks.append((_regress, classify_regress.regression_signature(servable, name)))
        else:
            tasks.append((_classify, classify_regress.classification_signature(servable, name)))
    if not tasks:
        raise CannotServe("a multi_inference_log without tasks")

    def run() -> Answer:
        parts = []
        for answer, signature in tasks:
            parts.extend(answer(servable, signature, request.input, "multi_inference").parts)
        return Answer(tuple(parts))

    return run
