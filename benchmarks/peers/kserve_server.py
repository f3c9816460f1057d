"""KServe 0.21's Python ModelServer serving one SavedModel on the V1 protocol
(`POST /v1/models/<name>:predict`), the way KServe documents custom model servers.

Run with benchmarks/.venvs/kserve/bin/python; KServe's own flags (`--http_port`,
`--enable_grpc`, `--workers`, ...) are parsed by KServe. Everything else is KServe's default.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import kserve

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tfmodel import V1Model


class SavedModelPredictor(kserve.Model):
    """One SavedModel; `predict` makes one model call per request."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.model: V1Model | None = None
        self.load()

    def load(self) -> bool:
        self.model = V1Model(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> dict:
        return self.model.predict(payload)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    kserve.ModelServer().start([SavedModelPredictor(args.model_name, args.model_path)])
