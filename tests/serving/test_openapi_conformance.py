"""The OpenAPI description (serving/rest/openapi.json, served at /v1/openapi.json) says what the
server does: schemathesis sends requests generated from it (valid and invalid) to a live
`tfrelay-model-server` and checks every answer against it (tensorflow/serving#1763, issue 16).

The server serves TF Serving's own half_plus_two test model when ../shared is present, else the
same model built by tests/support/models.py, so the test runs in a user's clone too. Each
generated request is sent twice: as generated (mostly names no served model, so it exercises
routing and the 400/404 answers) and with the path pointed at the served model, version and
label (so the bodies reach the JSON conversion and the model).

Bounded: at most MAX_EXAMPLES generated cases per operation (20 operations), each request with a
timeout, and the whole module under pytest-timeout.

The fixtures live here rather than in tests/serving/conftest.py because they are this module's
alone (a server with a label and metrics, started once for the module).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys
from collections.abc import Iterator

import httpx
import pytest

if sys.version_info < (3, 11):
    # `make test` collects tests/serving on the pipeline stack too (for its both_stacks tests);
    # schemathesis is a dev dependency of the serving stack only.
    pytest.skip("schemathesis runs on the serving stack", allow_module_level=True)

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support.models import write_half_plus_two
from support.paths import REPO_ROOT, TF_SERVING_TESTDATA
from support.servers import InProcessModelServer, ModelServerProcess, wait_for_version
from tfrelay.serving.options import ServerOptions

pytestmark = pytest.mark.timeout(300)

MODEL = "half_plus_two"
VERSION = 123
LABEL = "stable"
# `make test` runs 50 per operation; OPENAPI_MAX_EXAMPLES=1000 explores further by hand.
MAX_EXAMPLES = int(os.environ.get("OPENAPI_MAX_EXAMPLES", "50"))
REQUEST_TIMEOUT_SECONDS = 10
DOCUMENT = REPO_ROOT / "serving" / "rest" / "openapi.json"
INT64_MAX = 2**63 - 1


def _version_past_int64(case) -> bool:
    version = (case.path_parameters or {}).get("version")
    try:
        return int(str(version)) > INT64_MAX
    except ValueError:
        return False


def response_schema_conformance_with_tf_servings_empty_400(ctx, response, case):
    """Schemathesis's response-schema check, except for the one answer TF Serving gives with an
    empty body (the description says so): a version number past int64 is refused with 400
    before any JSON is written (`TF_RETURN_IF_ERROR` in http_rest_api_handler.cc's
    ProcessRequest). tfrelay copies it; that answer is checked exactly instead of as JSON."""
    if _version_past_int64(case):
        assert (response.status_code, response.content) == (400, b""), (
            f"a version past int64 gets TF Serving's empty 400, not {response.status_code} "
            f"{response.content[:200]!r}"
        )
        return None
    return response_schema_conformance(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance_with_tf_servings_empty_400,
]


def half_plus_two_base_path(tmp: pathlib.Path) -> pathlib.Path:
    """TF Serving's saved_model_half_plus_two_cpu (version 123) when ../shared has it, else the
    same graph exported by tests/support/models.py."""
    shared = TF_SERVING_TESTDATA / "saved_model_half_plus_two_cpu"
    if shared.is_dir():
        return shared
    base = tmp / MODEL
    write_half_plus_two(base / str(VERSION))
    return base


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[ModelServerProcess]:
    """`tfrelay-model-server` on loopback: half_plus_two with the label `stable`, and metrics."""
    tmp = tmp_path_factory.mktemp("openapi")
    config = tmp / "models.config"
    config.write_text(
        "model_config_list {\n  config {\n"
        f'    name: "{MODEL}"\n    base_path: "{half_plus_two_base_path(tmp)}"\n'
        '    model_platform: "tensorflow"\n'
        f'    version_labels {{ key: "{LABEL}" value: {VERSION} }}\n'
        "  }\n}\n"
    )
    monitoring = tmp / "monitoring.config"
    monitoring.write_text(
        'prometheus_config: {\n  enable: true,\n  path: "/monitoring/prometheus/metrics"\n}\n'
    )
    server = ModelServerProcess(
        [f"--model_config_file={config}", f"--monitoring_config_file={monitoring}"],
        log_path=tmp / "server.log",
    )
    with server:
        wait_for_version(server.url, MODEL, VERSION)
        yield server
        # Kept for a failing run: the server's own account of what it answered.
        shutil.copy(server.log_path, tmp / "server-final.log")


# Loaded from the repository file, which the server serves byte for byte (checked below):
# schemathesis 4.32's lazy loader (`schemathesis.pytest.from_fixture`) fails on pytest 9, and a
# schema loaded at import gives each operation its own test id.
schema = schemathesis.openapi.from_path(DOCUMENT)


def _aimed_at_the_served_model(case) -> None:
    """Points the path parameters at what the server serves, keeping the generated body."""
    parameters = case.path_parameters or {}
    if "name" in parameters:
        parameters["name"] = MODEL
    if "version" in parameters:
        parameters["version"] = VERSION
    if "label" in parameters:
        parameters["label"] = LABEL


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_generated_request_is_answered_as_the_description_says(case, served):
    case.call_and_validate(base_url=served.url, checks=CHECKS, timeout=REQUEST_TIMEOUT_SECONDS)
    if case.path_parameters:
        _aimed_at_the_served_model(case)
        case.call_and_validate(base_url=served.url, checks=CHECKS, timeout=REQUEST_TIMEOUT_SECONDS)


def test_served_description_is_the_repository_file(served):
    response = httpx.get(f"{served.url}/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == DOCUMENT.read_bytes()


def test_description_covers_every_route_the_server_answers():
    # The REST routes in serving/rest/routes.py and app.py, each with its version and label forms.
    document = json.loads(DOCUMENT.read_text())
    expected = {"/v1/models", "/v1/openapi.json", "/healthz", "/readyz"}
    expected.add("/monitoring/prometheus/metrics")
    for target in ("", "/versions/{version}", "/labels/{label}"):
        base = "/v1/models/{name}" + target
        expected |= {base, base + "/metadata"}
        expected |= {f"{base}:{action}" for action in ("predict", "classify", "regress")}
    assert set(document["paths"]) == expected


def test_a_version_past_int64_gets_tf_servings_400_with_an_empty_body(served):
    # The one answer the description documents without a JSON body (see the check above).
    response = httpx.post(
        f"{served.url}/v1/models/{MODEL}/versions/{INT64_MAX + 1}:predict",
        json={"instances": [[1.0]]},
        timeout=10,
    )
    assert (response.status_code, response.content) == (400, b"")


def test_description_is_served_without_a_token_when_every_other_path_needs_one(
    tmp_path, model_root
):
    token_file = tmp_path / "tokens"
    token_file.write_text("s3cret\n")
    options = ServerOptions(
        model_name=MODEL,
        model_base_path=str(model_root / "half_plus_two"),
        auth_token_file=str(token_file),
    )
    with InProcessModelServer(options) as server:
        document = httpx.get(f"{server.url}/v1/openapi.json", timeout=10)
        status = httpx.get(f"{server.url}/v1/models/{MODEL}", timeout=10)
    assert document.status_code == 200 and document.content == DOCUMENT.read_bytes()
    assert status.status_code == 401


# What each operation's success looks like on the served model: the path it is sent to. The
# bodies are the description's own examples (TF Serving's half_plus_two signatures).
SUCCESS_PATH_PARAMETERS = {"name": MODEL, "version": VERSION, "label": LABEL}


@pytest.mark.parametrize(
    "operation",
    [result.ok() for result in schema.get_all_operations()],
    ids=lambda operation: f"{operation.method.upper()} {operation.path}",
)
def test_documented_example_succeeds_and_its_answer_matches_the_description(served, operation):
    # Generated requests rarely get a 200 (a random body is rarely a valid tensor): this sends
    # each operation's documented example to the served model, so every 200 schema is checked
    # against a real answer.
    parameters = {
        name: SUCCESS_PATH_PARAMETERS[name]
        for name in ("name", "version", "label")
        if "{" + name + "}" in operation.path
    }
    body = operation.definition.raw.get("requestBody")
    example = None
    if body is not None:
        ref = body["content"]["application/json"]["schema"]["$ref"]
        document = json.loads(DOCUMENT.read_text())
        example = document["components"]["schemas"][ref.rsplit("/", 1)[1]]["example"]
    case = operation.Case(
        path_parameters=parameters or None,
        **({"body": example, "media_type": "application/json"} if example is not None else {}),
    )
    response = case.call_and_validate(
        base_url=served.url, checks=CHECKS, timeout=REQUEST_TIMEOUT_SECONDS
    )
    assert response.status_code == 200, response.text
