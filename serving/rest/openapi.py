"""The OpenAPI 3 description of the REST API (`openapi.json` beside this file), served at
`GET /v1/openapi.json` (tensorflow/serving#1763).

The document is kept by hand next to the code it describes and checked against a live server by
tests/serving/test_openapi_conformance.py (schemathesis), so it says what the server does, quirks
included, rather than what TF Serving's docs say.
"""

from __future__ import annotations

import functools
from importlib import resources

# Outside TF Serving's routes in meaning, though under /v1: answered before them (see app.py).
PATH = "/v1/openapi.json"


@functools.cache
def document() -> bytes:
    """The document's bytes, read once from the package data (the wheel carries *.json)."""
    return resources.files(__package__).joinpath("openapi.json").read_bytes()
