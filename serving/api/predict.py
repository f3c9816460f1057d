"""Predict: TF Serving's `predict_util.cc` checks, then one signature run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tfrelay.serving import errors
from tfrelay.serving.servables.base import DEFAULT_SERVING_SIGNATURE, Servable, Signature


def find_signature(servable: Servable, signature_name: str) -> Signature:
    """Looks up the signature a Predict request names (empty means `serving_default`).

    Raises:
      ServingError: FAILED_PRECONDITION `Serving signature key "x" not found.` (as predict_util).
    """
    name = signature_name or DEFAULT_SERVING_SIGNATURE
    signature = servable.signatures.get(name)
    if signature is None:
        raise errors.failed_precondition(
            f'Serving signature key "{errors.excerpt(name)}" not found.'
        )
    return signature


def check_inputs(signature: Signature, inputs: Mapping[str, np.ndarray]) -> None:
    """Rejects a request whose input aliases differ from the signature's.

    Raises:
      ServingError: INVALID_ARGUMENT with TF Serving's "input size does not match signature"
        message.
    """
    sent = set(inputs)
    expected = set(signature.inputs)
    if sent == expected:
        return
    extra = sorted(sent - expected)
    missing = sorted(expected - sent)
    # The client's aliases are quoted as an excerpt (issue 12: 10,000 long aliases would make a
    # message of megabytes); the signature's own names in full, as TF Serving.
    raise errors.invalid_argument(
        f"input size does not match signature: {len(sent)}!={len(expected)} "
        f"len({{{_joined(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
        f"Sent extra: {{{_joined(extra)}}}. Missing but required: {{{','.join(missing)}}}."
    )


def _joined(aliases: list[str]) -> str:
    # TF Serving's StrJoin(..., ","), cut as errors.excerpt would cut it, without joining all.
    kept, size = [], 0
    for alias in aliases:
        if size > errors.EXCERPT_CHARS:
            return ",".join(kept)[: errors.EXCERPT_CHARS] + "..."
        kept.append(alias)
        size += len(alias) + 1
    return errors.excerpt(",".join(kept))


def output_keys(signature: Signature, output_filter: Sequence[str]) -> list[str]:
    """The outputs to fetch: all of the signature's, or the filtered ones in request order.

    Raises:
      ServingError: INVALID_ARGUMENT for an unknown or duplicate alias.
    """
    if not output_filter:
        return sorted(signature.outputs)
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            raise errors.invalid_argument(
                f"output tensor alias not found in signature: {errors.excerpt(alias)} Outputs "
                "expected to be in "
                f"the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise errors.invalid_argument(f"duplicate output tensor alias: {errors.excerpt(alias)}")
        seen.add(alias)
    return list(output_filter)


def run_predict(
    servable: Servable,
    signature: Signature,
    inputs: Mapping[str, np.ndarray],
    output_filter: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Runs a Predict request on a pinned servable.

    Args:
      servable: the version serving the request.
      signature: the signature to run (see `find_signature`).
      inputs: {alias: array} already converted to the signature's dtypes.
      output_filter: output aliases wanted; empty for all.

    Returns:
      {output alias: array}.

    Raises:
      ServingError: a bad input set, output filter or TensorFlow's own rejection.
    """
    check_inputs(signature, inputs)
    return servable.run(signature, inputs, output_keys(signature, output_filter))
