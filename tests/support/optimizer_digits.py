"""The Optimizer's digits benchmark: the CNN of `tfrelay.pipelines.datasets.digits` (about 284k
parameters) trained by the Trainer on scikit-learn's digits, then optimized by the Optimizer
executor four times: prune 80% -> int8; int8 alone; distilled into the built-in student (the
CNN at a quarter of its filters and units) -> int8; and distilled into a user's student
function (`mlp_student`, a 64-128-10 MLP) -> int8.

The acceptance tests assert on it; running it as a script refreshes the README's figures and
prints the distillation's acceptance figures (issue 18):

    .venv/bin/python tests/support/optimizer_digits.py docs

writes docs/optimizer-digits.png (the chart), .json (every figure) and .md (the table).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import statistics
import sys
import tempfile
from typing import TYPE_CHECKING

from tfx.types import standard_artifacts

if TYPE_CHECKING:
    pass

# Run as a script: make `support` and `tfrelay` importable as under pytest.
if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import tfrelay  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from support.examples import examples_from_csv
from support.optimizing import optimize, read_report
from support.training import train
from tfrelay.components.optimizer import Distill, Prune, Quantize, data, measure, report
from tfrelay.components.trainer.export import SERVING_DIR
from tfrelay.pipelines.datasets import digits

EPOCHS = 12
LEARNING_RATE = 0.001
PRUNE = Prune(target_sparsity=0.8, epochs=3)
# The built-in student: conv 32 -> 8 and 64 -> 16 filters, dense 256 -> 64 units (15x fewer
# parameters); 30 epochs (1140 steps, about 10 s here) bring it to the teacher's accuracy.
DISTILL = Distill(width=0.25, epochs=30)
# A student without convolutions: the narrowed CNN's convolutions still cost about 0.6 ms per
# 128 examples against the serving function's fixed 1.2-1.4 ms (preprocessing 64 raw columns),
# so it stays under 2x faster at 128 examples; this MLP's core costs next to nothing.
MLP_STUDENT = digits.MLP_STUDENT
DISTILL_MLP = Distill(student=MLP_STUDENT, epochs=40)
MAX_ACCURACY_DROP = 0.01
# Turns of side-by-side timing (interleaved_latency): about 3 s each.
ROUNDS = 7


@dataclasses.dataclass
class DigitsRun:
    """The trained model and the four Optimizer runs.

    Attributes:
      model: the Trainer's Model artifact.
      pruned: the report of prune 80% -> int8.
      quantized: the report of int8 alone.
      distilled: the report of distill (width 0.25) -> int8.
      distilled_mlp: the report of distill (mlp_student) -> int8.
      blessed: each run's blessing ({"prune+int8": bool, "int8": bool, "distill+int8": bool,
        "distill mlp+int8": bool}).
      examples: the Examples (train and eval splits).
      models: {row name: the model's path} for the teacher and the distilled rows (a SavedModel
        directory or a .tflite file), to time them again side by side.
    """

    model: standard_artifacts.Model
    pruned: dict
    quantized: dict
    distilled: dict
    distilled_mlp: dict
    blessed: dict
    examples: standard_artifacts.Examples | None = None
    models: dict[str, str] = dataclasses.field(default_factory=dict)

    def rows(self) -> dict[str, dict]:
        """{row name: figures}: original, prune 80%, int8, prune 80% -> int8, then each student
        and the student -> int8."""
        original, pruned, pruned_int8 = self.pruned["models"]
        _, student, student_int8 = self.distilled["models"]
        _, mlp, mlp_int8 = self.distilled_mlp["models"]
        return {
            "original": original,
            "prune 80%": pruned,
            "int8": self.quantized["models"][1],
            "prune 80% -> int8": pruned_int8,
            student["name"]: student,
            student_int8["name"]: student_int8,
            mlp["name"]: mlp,
            mlp_int8["name"]: mlp_int8,
        }

    def distillation_figures(self, interleaved: dict[str, dict] | None = None) -> list[dict]:
        """The acceptance figures of issue 18 for each distilled row, against the teacher:
        parameter ratio, 128-example latency speedup, accuracy change (points) and gzipped
        ratio.

        Args:
          interleaved: `interleaved_latency`'s timings, to add the side-by-side speedups.

        Returns:
          One dict of figures per distilled row.
        """
        rows = self.rows()
        teacher = rows["original"]
        figures = []
        for name, row in rows.items():
            if not name.startswith("distill"):
                continue
            side_by_side = {}
            if interleaved and name in interleaved:
                timed, base = interleaved[name], interleaved["original"]
                side_by_side = {
                    "interleaved_batch_speedup": round(
                        base["latency_batch_ms"] / timed["latency_batch_ms"], 2
                    ),
                    "interleaved_single_speedup": round(
                        base["latency_single_ms"] / timed["latency_single_ms"], 2
                    ),
                    "interleaved_latency_batch_ms": round(timed["latency_batch_ms"], 4),
                    "interleaved_latency_single_ms": round(timed["latency_single_ms"], 4),
                }
            figures.append(
                {
                    **side_by_side,
                    "model": name,
                    "parameters": row["parameters"],
                    "parameter_ratio": round(teacher["parameters"] / row["parameters"], 2),
                    "latency_batch_ms": row["latency_batch_ms"],
                    "latency_batch_speedup": round(
                        teacher["latency_batch_ms"] / row["latency_batch_ms"], 2
                    ),
                    "latency_single_speedup": round(
                        teacher["latency_single_ms"] / row["latency_single_ms"], 2
                    ),
                    "accuracy_change_points": round(
                        (row["accuracy"] - teacher["accuracy"]) * 100, 2
                    ),
                    "size_ratio": round(teacher["size_bytes"] / row["size_bytes"], 2),
                    "gzipped_ratio": round(teacher["gzipped_bytes"] / row["gzipped_bytes"], 2),
                }
            )
        return figures


def run(root: pathlib.Path) -> DigitsRun:
    """Trains the CNN and runs the Optimizer four times, under `root`."""
    examples = examples_from_csv(digits.write_all(root / "data"), root / "examples")
    model = train(
        examples,
        root / "trained",
        label_key=digits.LABEL_KEY,
        feature_keys=json.dumps(digits.FEATURE_KEYS),
        core_model_fn=digits.CORE_MODEL_FN,
        epochs=EPOCHS,
        learning_rate=LEARNING_RATE,
    )
    _, pruned_blessing, pruned_report = optimize(
        model, examples, root / "prune-int8", [PRUNE, Quantize("int8")], MAX_ACCURACY_DROP
    )
    _, int8_blessing, int8_report = optimize(
        model, examples, root / "int8", [Quantize("int8")], MAX_ACCURACY_DROP
    )
    _, distill_blessing, distill_report = optimize(
        model, examples, root / "distill-int8", [DISTILL, Quantize("int8")], MAX_ACCURACY_DROP
    )
    _, mlp_blessing, mlp_report = optimize(
        model,
        examples,
        root / "distill-mlp-int8",
        [DISTILL_MLP, Quantize("int8")],
        MAX_ACCURACY_DROP,
    )
    return DigitsRun(
        model=model,
        pruned=read_report(pruned_report),
        quantized=read_report(int8_report),
        distilled=read_report(distill_report),
        distilled_mlp=read_report(mlp_report),
        blessed={
            "prune+int8": pruned_blessing.get_int_custom_property("blessed") == 1,
            "int8": int8_blessing.get_int_custom_property("blessed") == 1,
            "distill+int8": distill_blessing.get_int_custom_property("blessed") == 1,
            "distill mlp+int8": mlp_blessing.get_int_custom_property("blessed") == 1,
        },
        examples=examples,
        models=_distilled_models(model, [distill_report, mlp_report]),
    )


def _distilled_models(model: standard_artifacts.Model, reports: list) -> dict[str, str]:
    """{row name: path} of the teacher and of each distill -> int8 run's two models (its output
    holds the student's SavedModel and the int8 model.tflite)."""
    paths = {"original": str(pathlib.Path(model.uri) / SERVING_DIR)}
    for artifact in reports:
        content = read_report(artifact)
        serving = pathlib.Path(content["optimized_model_uri"]) / SERVING_DIR
        _, student, quantized = content["models"]
        paths[student["name"]] = str(serving)
        paths[quantized["name"]] = str(serving / measure.TFLITE_FILE)
    return paths


def interleaved_latency(result: DigitsRun, rounds: int = ROUNDS) -> dict[str, dict]:
    """Times the teacher and the distilled models again, in turns, as the Optimizer does (the
    median of in-process calls on raw features), and keeps each model's median over the rounds.

    Each Optimizer run times its rows minutes apart, so on a shared machine a busy minute can
    land on one row only; in turns, every model sees the same load.

    Args:
      result: the digits run (its models must still be on disk).
      rounds: how many turns.

    Returns:
      {row name: {"latency_single_ms": ..., "latency_batch_ms": ...}}.
    """
    from tfrelay.components.trainer.export import load_tabular_model

    _, spec = load_tabular_model(result.model.uri)
    split = data.load_split(
        data.split_files(str(pathlib.Path(result.examples.uri) / "Split-eval")), spec
    )
    single = {name: values[:1] for name, values in split.raw.items()}
    batch = {name: values[: measure.BATCH_SIZE] for name, values in split.raw.items()}
    predictors = {}
    for name, path in result.models.items():
        if path.endswith(".tflite"):
            predictors[name] = measure.tflite_predictor(pathlib.Path(path).read_bytes())
        else:
            predictors[name] = measure.saved_model_predictor(path)
    timings: dict[str, dict[str, list[float]]] = {
        name: {"latency_single_ms": [], "latency_batch_ms": []} for name in predictors
    }
    for _ in range(rounds):
        for name, predict in predictors.items():
            timings[name]["latency_single_ms"].append(
                measure.latency_ms(predict, single, measure.SINGLE_RUNS)
            )
            timings[name]["latency_batch_ms"].append(
                measure.latency_ms(predict, batch, measure.BATCH_RUNS)
            )
    return {
        name: {key: statistics.median(values) for key, values in figures.items()}
        for name, figures in timings.items()
    }


def combined_report(result: DigitsRun, interleaved: dict[str, dict] | None = None) -> dict:
    """One report with the eight rows, for the chart and the table (and the distillation's
    figures, with the side-by-side timings when given)."""
    rows = list(result.rows().values())
    combined = dict(result.pruned)
    combined["models"] = rows
    combined["description"] = "digits CNN, 284k parameters"
    combined["blessed"] = all(result.blessed.values())
    combined["techniques"] = {
        "prune 80% -> int8": result.pruned["techniques"],
        "int8": result.quantized["techniques"],
        result.distilled["description"]: result.distilled["techniques"],
        result.distilled_mlp["description"]: result.distilled_mlp["techniques"],
    }
    combined["distillation"] = result.distillation_figures(interleaved)
    # The headline (the chart's title) compares the last row with the original, as an
    # Optimizer report does.
    original, final = rows[0], rows[-1]
    combined["result"] = {
        "accuracy_before": original["accuracy"],
        "accuracy_after": final["accuracy"],
        "accuracy_drop": round(original["accuracy"] - final["accuracy"], 6),
        "agreement": final["agreement"],
        "size_ratio": round(original["size_bytes"] / final["size_bytes"], 3),
        "gzipped_size_ratio": round(original["gzipped_bytes"] / final["gzipped_bytes"], 3),
        "latency_single_speedup": round(
            original["latency_single_ms"] / final["latency_single_ms"], 3
        ),
        "latency_batch_speedup": round(original["latency_batch_ms"] / final["latency_batch_ms"], 3),
        "final_model": final["name"],
    }
    return combined


def main(out_dir: str) -> None:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tfrelay-digits-") as scratch:
        result = run(pathlib.Path(scratch))
        combined = combined_report(result, interleaved_latency(result))
    (out / "optimizer-digits.json").write_text(
        json.dumps(combined, indent=2, sort_keys=True) + "\n"
    )
    (out / "optimizer-digits.png").write_bytes(report.plot(combined))
    (out / "optimizer-digits.md").write_text(report.table(combined) + "\n")
    print(report.table(combined))
    print("\nDistillation against the teacher (issue 18 acceptance: >= 4x fewer parameters, >= 2x")
    print("faster at 128 examples, within 1 point of accuracy; with int8 >= 10x smaller gzipped):")
    for figure in combined["distillation"]:
        print(
            f"  {figure['model']}: {figure['parameter_ratio']}x fewer parameters "
            f"({figure['parameters']}), {figure['latency_batch_speedup']}x faster at 128 examples "
            f"({figure['latency_batch_ms']:.2f} ms), {figure['latency_single_speedup']}x at 1, "
            f"accuracy {figure['accuracy_change_points']:+.2f} points, "
            f"{figure['size_ratio']}x smaller on disk, {figure['gzipped_ratio']}x gzipped; timed "
            f"in turns with the teacher: {figure['interleaved_batch_speedup']}x faster at 128 "
            f"({figure['interleaved_latency_batch_ms']:.2f} ms), "
            f"{figure['interleaved_single_speedup']}x at 1 "
            f"({figure['interleaved_latency_single_ms']:.2f} ms)"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
