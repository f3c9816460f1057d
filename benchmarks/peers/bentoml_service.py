"""BentoML 1.4 serving one SavedModel with the new-style `@bentoml.service` API, on the same
route and JSON as TF Serving's REST API, one model call per request.

Run from this directory with benchmarks/.venvs/bentoml/bin/bentoml:
  BENCH_MODEL_NAME=NAME BENCH_MODEL_PATH=DIR bentoml serve bentoml_service:SavedModelService \\
      --host 127.0.0.1 --port PORT
Everything else is BentoML's default (one worker here, as the other servers have one process).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import bentoml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tfmodel import V1Model

MODEL_NAME = os.environ.get("BENCH_MODEL_NAME", "model")


@bentoml.service(workers=1)
class SavedModelService:
    """One SavedModel; `predict` takes the V1 body's `instances` field."""

    def __init__(self) -> None:
        self.model = V1Model(os.environ["BENCH_MODEL_PATH"])

    @bentoml.api(route=f"/v1/models/{MODEL_NAME}:predict")
    def predict(self, instances: list[Any]) -> dict[str, Any]:
        return self.model.predict({"instances": instances})
