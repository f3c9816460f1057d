"""The naive server: FastAPI + uvicorn (uvloop, httptools), one model call per request, on the
same route and JSON as TF Serving's REST API. Everything else is FastAPI's and uvicorn's default.

Run with benchmarks/.venvs/fastapi/bin/python:
  fastapi_server.py --model-name NAME --model-path DIR --port PORT
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tfmodel import V1Model


def create_app(model_name: str, model: V1Model) -> FastAPI:
    app = FastAPI()

    @app.post(f"/v1/models/{model_name}:predict")
    async def predict(request: Request) -> dict[str, Any]:
        return model.predict(await request.json())

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.model_name, V1Model(args.model_path)), host=args.host, port=args.port
    )
