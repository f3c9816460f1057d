"""The Optimizer's digits benchmark: the CNN of `tfrelay.pipelines.datasets.digits` (about 284k
parameters) trained by the Trainer on scikit-learn's digits, then optimized by the Optimizer
executor twice: prune 80% -> int8, and int8 alone.

The acceptance test asserts on it; running it as a script refreshes the README's figures:

    .venv/bin/python tests/support/optimizer_digits.py docs

writes docs/optimizer-digits.png (the chart), .json (every figure) and .md (the table).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import tempfile

from tfx.types import standard_artifacts

# Run as a script: make `support` and `tfrelay` importable as under pytest.
if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import tfrelay  # noqa: F401  (pins Keras 2 before TensorFlow loads)
from support.examples import examples_from_csv
from support.optimizing import optimize, read_report
from support.training import train
from tfrelay.components.optimizer import Prune, Quantize, report
from tfrelay.pipelines.datasets import digits

EPOCHS = 12
LEARNING_RATE = 0.001
PRUNE = Prune(target_sparsity=0.8, epochs=3)
MAX_ACCURACY_DROP = 0.01


@dataclasses.dataclass
class DigitsRun:
    """The trained model and the two Optimizer runs.

    Attributes:
      model: the Trainer's Model artifact.
      pruned: the report of prune 80% -> int8.
      quantized: the report of int8 alone.
      blessed: each run's blessing ({"prune+int8": bool, "int8": bool}).
    """

    model: standard_artifacts.Model
    pruned: dict
    quantized: dict
    blessed: dict

    def rows(self) -> dict[str, dict]:
        """{row name: figures}: original, prune 80%, int8, prune 80% -> int8."""
        original, pruned, pruned_int8 = self.pruned["models"]
        return {
            "original": original,
            "prune 80%": pruned,
            "int8": self.quantized["models"][1],
            "prune 80% -> int8": pruned_int8,
        }


def run(root: pathlib.Path) -> DigitsRun:
    """Trains the CNN and runs the Optimizer twice, under `root`."""
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
    return DigitsRun(
        model=model,
        pruned=read_report(pruned_report),
        quantized=read_report(int8_report),
        blessed={
            "prune+int8": pruned_blessing.get_int_custom_property("blessed") == 1,
            "int8": int8_blessing.get_int_custom_property("blessed") == 1,
        },
    )


def combined_report(result: DigitsRun) -> dict:
    """One report with the four rows, for the chart and the table."""
    rows = list(result.rows().values())
    combined = dict(result.pruned)
    combined["models"] = rows
    combined["description"] = "digits CNN, 284k parameters"
    combined["blessed"] = all(result.blessed.values())
    combined["techniques"] = {
        "prune 80% -> int8": result.pruned["techniques"],
        "int8": result.quantized["techniques"],
    }
    original, final = rows[0], rows[-1]
    combined["result"] = dict(combined["result"])
    combined["result"]["gzipped_size_ratio"] = round(
        original["gzipped_bytes"] / final["gzipped_bytes"], 3
    )
    return combined


def main(out_dir: str) -> None:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tfrelay-digits-") as scratch:
        result = run(pathlib.Path(scratch))
        combined = combined_report(result)
    (out / "optimizer-digits.json").write_text(
        json.dumps(combined, indent=2, sort_keys=True) + "\n"
    )
    (out / "optimizer-digits.png").write_bytes(report.plot(combined))
    (out / "optimizer-digits.md").write_text(report.table(combined) + "\n")
    print(report.table(combined))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs")
