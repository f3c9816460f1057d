"""Classify/regress request bodies -> serialized tf.Examples (`json_tensor.cc`,
FillClassifyRegressRequestFromJson), with TF Serving's feature-type inference and messages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tensorflow.core.example import example_pb2, feature_pb2

from tfrelay.serving import errors
from tfrelay.serving.api.classify_regress import check_context_copies
from tfrelay.serving.rest.json_input import (
    decode_b64,
    is_b64_object,
    json_type,
    value_to_string,
)

_FLOAT32_MAX = 3.4028234663852886e38
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1

_BYTES, _FLOAT, _INT64 = "bytes", "float", "int64"


def _kind_of(name: str, value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return _INT64, int(value)
    if isinstance(value, str):
        return _BYTES, value.encode("utf-8")
    if is_b64_object(value):
        return _BYTES, decode_b64(value)
    if isinstance(value, int) and value <= _UINT64_MAX:
        if value > _INT64_MAX:
            raise errors.invalid_argument(
                f"Feature: {errors.excerpt(name)} has uint64 element. Only int64 is supported."
            )
        return _INT64, value
    if isinstance(value, (int, float)):
        number = float(value)
        if math.isfinite(number) and abs(number) > _FLOAT32_MAX:
            raise errors.invalid_argument(
                f"Cannot convert JSON value: {value_to_string(value)} to float without loss of "
                "precision."
            )
        return _FLOAT, number
    raise errors.invalid_argument(
        f"Feature: {errors.excerpt(name)} has element with unexpected JSON type: {json_type(value)}"
    )


def _feature(name: str, value: Any) -> feature_pb2.Feature:
    elements = value if isinstance(value, list) else [value]
    kind = None
    converted = []
    for element in elements:
        element_kind, element_value = _kind_of(name, element)
        if kind is not None and element_kind != kind:
            raise errors.invalid_argument(
                f"Unexpected element type in feature: {errors.excerpt(name)} expecting type: {kind}"
            )
        kind = element_kind
        converted.append(element_value)
    feature = feature_pb2.Feature()
    if kind == _BYTES:
        feature.bytes_list.value.extend(converted)
    elif kind == _FLOAT:
        feature.float_list.value.extend(converted)
    elif kind == _INT64:
        feature.int64_list.value.extend(converted)
    return feature


def example_from_json(value: Any) -> example_pb2.Example:
    """One JSON object -> one tf.Example (each key a feature).

    Raises:
      ServingError: INVALID_ARGUMENT naming the offending feature.
    """
    if not isinstance(value, dict):
        raise errors.invalid_argument(
            f"Example must be JSON object but got JSON {json_type(value)}"
        )
    example = example_pb2.Example()
    for name, feature_value in value.items():
        example.features.feature[name].CopyFrom(_feature(name, feature_value))
    return example


def serialized_examples(doc: Mapping[str, Any], method: str) -> list[bytes]:
    """The serialized examples of a classify/regress body, each merged with its `context`.

    Args:
      doc: the parsed body.
      method: "classify" or "regress" (named in TF Serving's message for a missing key).

    Returns:
      Serialized tf.Examples, one per entry of `examples`.

    Raises:
      ServingError: INVALID_ARGUMENT with TF Serving's message.
    """
    context = b""
    if "context" in doc:
        context = example_from_json(doc["context"]).SerializeToString()
    if "examples" not in doc:
        raise errors.invalid_argument(
            f"JSON Value: {value_to_string(dict(doc))} When method is {method}, key 'examples' "
            "is expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise errors.invalid_argument(
            f"JSON Value: {value_to_string(dict(doc))} Expecting 'examples' value to be an "
            "list/array"
        )
    if not examples:
        raise errors.invalid_argument(
            f"JSON Value: {value_to_string(dict(doc))} 'examples' value is an empty array"
        )
    # The copies are bounded as on gRPC (issue 12): a 1 MiB context and 10^4 tiny examples would
    # otherwise make 10 GB of request bytes from a 1 MB body.
    check_context_copies(len(context), len(examples))
    # TF Serving prepends the serialized context to each serialized example: protobuf merge
    # semantics then give each example the context's features, its own winning on a clash.
    return [context + example_from_json(example).SerializeToString() for example in examples]
