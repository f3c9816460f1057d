"""Classify and Regress on serialized tf.Examples: TF Serving's `classifier.cc` / `regressor.cc`
signature checks and result post-processing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tensorflow.core.framework import types_pb2

from tfrelay.serving import errors
from tfrelay.serving.servables.base import DEFAULT_SERVING_SIGNATURE, Servable, Signature

CLASSIFY_INPUTS = "inputs"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"
REGRESS_INPUTS = "inputs"
REGRESS_OUTPUTS = "outputs"


@dataclass(frozen=True)
class Class:
    """One (label, score) pair of a classification result; a missing part is "" or 0.0."""

    label: bytes
    score: float


def _signature(servable: Servable, signature_name: str) -> Signature:
    name = signature_name or DEFAULT_SERVING_SIGNATURE
    signature = servable.signatures.get(name)
    if signature is None:
        raise errors.invalid_argument(
            f"No signature was found with the name: {errors.excerpt(name)}"
        )
    return signature


def _debug_string(signature: Signature, servable: Servable) -> str:
    proto = servable.signature_def_map().get(signature.name)
    return str(proto) if proto is not None else signature.name


def classification_signature(servable: Servable, signature_name: str) -> Signature:
    """Finds and checks a classification signature (structural checks, as TF Serving's default).

    Raises:
      ServingError: INVALID_ARGUMENT naming what is wrong with the signature.
    """
    signature = _signature(servable, signature_name)
    if len(signature.inputs) != 1:
        raise errors.invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise errors.invalid_argument(
            f"Expected one or two output Tensors, found {len(signature.outputs)}"
        )
    if CLASSIFY_INPUTS not in signature.inputs:
        raise errors.invalid_argument(
            f"No classification inputs found in SignatureDef: {_debug_string(signature, servable)}"
        )
    if not {CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES} & set(signature.outputs):
        raise errors.invalid_argument(
            'Expected classification signature outputs to contain at least one of "classes" or '
            f'"scores". Signature was: {_debug_string(signature, servable)}'
        )
    return signature


def regression_signature(servable: Servable, signature_name: str) -> Signature:
    """Finds and checks a regression signature.

    Raises:
      ServingError: INVALID_ARGUMENT naming what is wrong with the signature.
    """
    signature = _signature(servable, signature_name)
    if len(signature.inputs) != 1:
        raise errors.invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise errors.invalid_argument("Expected one output Tensor.")
    if REGRESS_INPUTS not in signature.inputs:
        raise errors.invalid_argument(
            f"No regression inputs found in SignatureDef: {_debug_string(signature, servable)}"
        )
    if REGRESS_OUTPUTS not in signature.outputs:
        raise errors.invalid_argument(
            f"No regression outputs found in SignatureDef: {_debug_string(signature, servable)}"
        )
    return signature


def _examples_tensor(serialized_examples: Sequence[bytes]) -> np.ndarray:
    if not serialized_examples:
        raise errors.invalid_argument("Input is empty.")
    array = np.empty(len(serialized_examples), dtype=object)
    array[:] = list(serialized_examples)
    return array


def classify_call(
    signature: Signature, serialized_examples: Sequence[bytes]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The model call a Classify request makes: (inputs, output aliases to fetch).

    Raises:
      ServingError: INVALID_ARGUMENT "Input is empty." for no examples.
    """
    wanted = [
        k for k in (CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES) if k in signature.outputs
    ]
    return {CLASSIFY_INPUTS: _examples_tensor(serialized_examples)}, wanted


def classification_results(
    signature: Signature, outputs: dict[str, np.ndarray], num_examples: int
) -> list[list[Class]]:
    """Post-processes a classification call's outputs (`PostProcessClassificationResult`).

    Returns:
      One list of classes per example.

    Raises:
      ServingError: INVALID_ARGUMENT when the outputs have the wrong type or shape.
    """
    classes = outputs.get(CLASSIFY_OUTPUT_CLASSES)
    scores = outputs.get(CLASSIFY_OUTPUT_SCORES)
    for name, tensor, dtype in (
        ("classes", classes, types_pb2.DT_STRING),
        ("scores", scores, types_pb2.DT_FLOAT),
    ):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise errors.invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape(tensor)}"
            )
        if signature.outputs[name].dtype != dtype:
            raise errors.invalid_argument(
                f"Expected {name} Tensor of {types_pb2.DataType.Name(dtype)}. Got: "
                f"{signature.outputs[name].dtype_name}"
            )
        if tensor.shape[0] != num_examples:
            raise errors.invalid_argument(
                f"Expected {name} output batch size of {num_examples}. Got: {tensor.shape[0]}"
            )
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise errors.invalid_argument(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    num_classes = (classes if classes is not None else scores).shape[1]
    results: list[list[Class]] = []
    for i in range(num_examples):
        row = []
        for j in range(num_classes):
            label = classes[i, j] if classes is not None else b""
            score = float(scores[i, j]) if scores is not None else 0.0
            row.append(Class(label if isinstance(label, bytes) else str(label).encode(), score))
        results.append(row)
    return results


def run_classify(
    servable: Servable, signature: Signature, serialized_examples: Sequence[bytes]
) -> list[list[Class]]:
    """Classifies serialized tf.Examples (one direct model call).

    Returns:
      One list of classes per example.

    Raises:
      ServingError: INVALID_ARGUMENT when the outputs have the wrong type or shape.
    """
    inputs, wanted = classify_call(signature, serialized_examples)
    outputs = servable.run(signature, inputs, wanted)
    return classification_results(signature, outputs, len(serialized_examples))


def regress_call(
    signature: Signature, serialized_examples: Sequence[bytes]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The model call a Regress request makes: (inputs, output aliases to fetch).

    Raises:
      ServingError: INVALID_ARGUMENT "Input is empty." for no examples.
    """
    return {REGRESS_INPUTS: _examples_tensor(serialized_examples)}, [REGRESS_OUTPUTS]


def regression_results(
    signature: Signature, outputs: dict[str, np.ndarray], num_examples: int
) -> list[float]:
    """Post-processes a regression call's output (`PostProcessRegressionResult`).

    Returns:
      One value per example.

    Raises:
      ServingError: INVALID_ARGUMENT when the output has the wrong type or shape.
    """
    output = outputs[REGRESS_OUTPUTS]
    if not (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)):
        raise errors.invalid_argument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{_shape(output)}"
        )
    if output.shape[0] != num_examples:
        raise errors.invalid_argument(
            f"Input batch size did not match output batch size: {num_examples} vs. "
            f"{output.shape[0]}"
        )
    if signature.outputs[REGRESS_OUTPUTS].dtype != types_pb2.DT_FLOAT:
        raise errors.invalid_argument(
            "Expected output Tensor of DT_FLOAT.  Got: "
            f"{signature.outputs[REGRESS_OUTPUTS].dtype_name}"
        )
    return [float(v) for v in output.reshape(-1)]


def run_regress(
    servable: Servable, signature: Signature, serialized_examples: Sequence[bytes]
) -> list[float]:
    """Regresses serialized tf.Examples (one direct model call).

    Returns:
      One value per example.

    Raises:
      ServingError: INVALID_ARGUMENT when the output has the wrong type or shape.
    """
    inputs, wanted = regress_call(signature, serialized_examples)
    outputs = servable.run(signature, inputs, wanted)
    return regression_results(signature, outputs, len(serialized_examples))


def _shape(tensor: np.ndarray) -> str:
    # tensorflow::TensorShape::DebugString format.
    return "[" + ",".join(str(d) for d in tensor.shape) + "]"


# The most bytes of context copies one Classify/Regress request may make the server build: TF
# Serving prepends the whole serialized context to every example, so a 1 MiB context and 100,000
# empty examples (a 1.2 MiB request) would be 100 GiB (issue 12). 64 MiB allows a 1 KiB context
# on 65,536 examples.
MAX_CONTEXT_COPY_BYTES = 64 * 1024 * 1024


def check_context_copies(
    context_bytes: int, num_examples: int, limit: int = MAX_CONTEXT_COPY_BYTES
) -> None:
    """Refuses a request whose context, copied into each example, would pass `limit` bytes.

    Args:
      context_bytes: the serialized context's length.
      num_examples: how many examples it is prepended to.
      limit: the most bytes of copies accepted.

    Raises:
      ServingError: INVALID_ARGUMENT naming the sizes and the limit (TF Serving has no limit).
    """
    copies = context_bytes * num_examples
    if copies > limit:
        raise errors.invalid_argument(
            f"Input is too large: its {context_bytes}-byte context copied into each of its "
            f"{num_examples} examples would take {copies} bytes, over the limit of {limit}"
        )


def serialized_examples(
    request_input, max_context_copy_bytes: int = MAX_CONTEXT_COPY_BYTES
) -> list[bytes]:
    """The serialized tf.Examples of a `tensorflow.serving.Input` proto.

    TF Serving prepends the serialized context to each example (protobuf merge semantics give
    every example the context's features, its own winning on a clash).

    Args:
      request_input: the request's `input`.
      max_context_copy_bytes: the most bytes of context copies accepted.

    Raises:
      ServingError: INVALID_ARGUMENT for an empty input or a context whose copies would pass
        MAX_CONTEXT_COPY_BYTES, UNIMPLEMENTED for an unknown kind.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        context = with_context.context.SerializeToString()
        check_context_copies(len(context), len(with_context.examples), max_context_copy_bytes)
        examples = [context + e.SerializeToString() for e in with_context.examples]
    elif kind is None:
        examples = []
    else:
        raise errors.ServingError(
            errors.Code.UNIMPLEMENTED, f"Input with kind {kind} not supported."
        )
    if not examples:
        raise errors.invalid_argument("Input is empty.")
    return examples
