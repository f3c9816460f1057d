"""The serving contract: the candidate loads in tfrelay's model server, answers its warmup
requests, and keeps the inputs of the version clients use today."""

from __future__ import annotations

import os

from tfrelay.serving.servables.base import DEFAULT_SERVING_SIGNATURE, Servable, TensorSpec
from tfrelay.serving.servables.saved_model import SavedModelServable
from tfrelay.serving.warmup import replay


def _describe(spec: TensorSpec) -> str:
    shape = (
        "unknown rank" if spec.shape is None else "[" + ",".join(str(d) for d in spec.shape) + "]"
    )
    return f"{spec.dtype_name} {shape}"


def input_changes(
    baseline: Servable, candidate: Servable, signature: str = DEFAULT_SERVING_SIGNATURE
) -> list[str]:
    """How the candidate's inputs differ from the baseline's (each difference breaks clients).

    Returns:
      Human-readable differences; empty when every baseline input is kept with its dtype and
      shape, and no new input is required.
    """
    base = baseline.signatures.get(signature)
    new = candidate.signatures.get(signature)
    if base is None:
        return []
    if new is None:
        return [f"signature {signature!r} is gone"]
    changes = []
    for name, spec in sorted(base.inputs.items()):
        if name not in new.inputs:
            changes.append(f"{signature} input {name!r} ({_describe(spec)}) was removed")
        elif (new.inputs[name].dtype, new.inputs[name].shape) != (spec.dtype, spec.shape):
            changes.append(
                f"{signature} input {name!r} changed from {_describe(spec)} to {_describe(new.inputs[name])}"
            )
    for name in sorted(set(new.inputs) - set(base.inputs)):
        changes.append(f"{signature} input {name!r} is new: clients do not send it")
    return changes


def check_serving_contract(candidate_path: str, baseline_path: str | None) -> tuple[list[str], int]:
    """Loads the candidate as the model server would and checks it.

    Args:
      candidate_path: the candidate SavedModel directory.
      baseline_path: the baseline SavedModel directory, or None on a first run.

    Returns:
      (failed checks, warmup records replayed).
    """
    failures: list[str] = []
    candidate = SavedModelServable("candidate", 0, candidate_path)
    try:
        candidate.load()
    except Exception as err:  # noqa: BLE001 - any load failure is a failed check
        return [f"the candidate does not load in the model server: {err}"], 0
    try:
        try:
            replayed, _ = replay(candidate)
        except Exception as err:  # noqa: BLE001 - a failing warmup fails the load in TF Serving
            failures.append(f"the candidate fails its warmup requests: {err}")
            replayed = 0
        if baseline_path:
            baseline = SavedModelServable("baseline", 0, baseline_path)
            baseline.load()
            try:
                failures.extend(input_changes(baseline, candidate))
            finally:
                baseline.unload()
    finally:
        candidate.unload()
    return failures, replayed


def _output_shape(
    saved_model_dir: str, signature_name: str, output_key: str
) -> tuple[int, ...] | None:
    from tensorflow.core.protobuf import saved_model_pb2

    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        signature = meta_graph.signature_def.get(signature_name)
        if signature is not None and output_key in signature.outputs:
            shape = signature.outputs[output_key].tensor_shape
            return None if shape.unknown_rank else tuple(int(d.size) for d in shape.dim)
    return None


def prediction_shape_change(
    baseline_path: str, candidate_path: str, signature_name: str, output_key: str
) -> str | None:
    """Why the baseline's predictions cannot be compared with the candidate's, if they cannot.

    TFMA cannot compute change thresholds between models whose prediction tensors differ in
    shape (e.g. a retrain that learned a class the serving version never saw).

    Returns:
      A reason, or None when the shapes agree.
    """
    baseline = _output_shape(baseline_path, signature_name, output_key)
    candidate = _output_shape(candidate_path, signature_name, output_key)
    if baseline == candidate:
        return None
    return (
        f"{signature_name} output {output_key!r} is {list(candidate or [])} in the candidate but "
        f"{list(baseline or [])} in the serving version"
    )
