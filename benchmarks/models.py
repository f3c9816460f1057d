"""The SavedModels the benchmark serves and the requests it sends them.

- half_plus_two: TF Serving's own test model (`../shared/testdata/tf_serving/`), or the same
  model built by `tests/support/models.py` when that folder is absent. half_plus_three (for the
  hot swap, so answers change) comes from the same places.
- penguins: the MLP the project's own pipeline trains and pushes (`tfrelay pipeline run
  --no-deploy` into benchmarks/.work/penguins, run once and reused).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
from typing import Any

from benchmarks.procs import PROJECT_BIN, REPO

TESTDATA = REPO.parent / "shared" / "testdata" / "tf_serving"

# One penguin, raw features, as the pipeline's serving signature takes them.
PENGUIN = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181,
    "body_mass_g": 3750,
    "island": "Torgersen",
    "sex": "male",
}


@dataclasses.dataclass(frozen=True)
class ModelCase:
    """A model as the benchmark serves it.

    Attributes:
      name: the name clients address.
      version_dir: the SavedModel the peers and the ceiling load.
      base_path: the directory of versions tfrelay serves (`--model_base_path`).
      instance: one instance of the row format (`{"instances": [instance, ...]}`).
    """

    name: str
    version_dir: pathlib.Path
    base_path: pathlib.Path
    instance: Any

    def instances(self, count: int) -> list[Any]:
        return [self.instance] * count

    def body(self, count: int = 1) -> bytes:
        """The REST predict body with `count` copies of the instance."""
        return json.dumps({"instances": self.instances(count)}).encode()


def _build_half_plus(export_dir: pathlib.Path, intercept: float) -> None:
    """y = 0.5x + intercept, built as TF Serving's test model is (tests/support/models.py)."""
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "from support.models import write_half_plus_two;"
        "write_half_plus_two(sys.argv[1], b=float(sys.argv[2]))"
    )
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(PROJECT_BIN / "python"), "-c", code, str(export_dir), str(intercept)],
        cwd=REPO,
        check=True,
    )


def half_plus(work_dir: pathlib.Path, intercept: int) -> pathlib.Path:
    """The SavedModel (version directory) of y = 0.5x + 2 or + 3."""
    name = {2: "two", 3: "three"}[intercept]
    shared = TESTDATA / f"saved_model_half_plus_{name}" / "00000123"
    if intercept == 2:
        shared = TESTDATA / "saved_model_half_plus_two_cpu" / "00000123"
    if (shared / "saved_model.pb").exists():
        return shared
    built = work_dir / "models" / f"half_plus_{name}" / "1"
    if not (built / "saved_model.pb").exists():
        print(f"setup: building half_plus_{name} (no {shared})", flush=True)
        _build_half_plus(built, float(intercept))
    return built


def _newest_version(base_path: pathlib.Path) -> pathlib.Path | None:
    versions = [
        p for p in base_path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").exists()
    ]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def penguin_model(work_dir: pathlib.Path) -> pathlib.Path:
    """The pipeline's pushed penguin SavedModel; runs the pipeline the first time (~2-3 min)."""
    workdir = work_dir / "penguins"
    base_path = workdir / "bucket" / "penguins"
    version = _newest_version(base_path)
    if version is None:
        print(
            "setup: training the penguin model with `tfrelay pipeline run` (~2-3 min)", flush=True
        )
        subprocess.run(
            [
                str(PROJECT_BIN / "tfrelay"),
                "pipeline",
                "run",
                "--workdir",
                str(workdir),
                "--no-deploy",
            ],
            cwd=REPO,
            check=True,
        )
        version = _newest_version(base_path)
        if version is None:
            raise RuntimeError(f"the pipeline pushed nothing to {base_path}")
    return version


def prepare(names: list[str], work_dir: pathlib.Path) -> dict[str, ModelCase]:
    """The throughput scenario's models, by name ("half_plus_two", "penguins")."""
    cases = {}
    for name in names:
        if name == "half_plus_two":
            version_dir = half_plus(work_dir, 2)
            cases[name] = ModelCase(name, version_dir, version_dir.parent, [1.0])
        elif name == "penguins":
            version_dir = penguin_model(work_dir)
            cases[name] = ModelCase(name, version_dir, version_dir.parent, PENGUIN)
        else:
            raise ValueError(f"unknown model {name!r} (half_plus_two, penguins)")
    return cases
