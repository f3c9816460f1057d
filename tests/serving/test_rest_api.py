"""TF Serving's REST API, answered as tensorflow_model_server answers it.

Expected values come from TF Serving's own tests (`http_rest_api_handler_test.cc`,
`tensorflow_model_server_test.py`) and REST docs. The server is the real `tfrelay-model-server`
command started with TF Serving's flags, on our fixture half_plus_two and, when ../shared is
present, on TF Serving's own test model.
"""

from __future__ import annotations

import json
import math

import httpx
import pytest

from support.paths import TF_SERVING_TESTDATA
from support.servers import ModelServerProcess, wait_for_version

# The pipeline relies on this code (the Validator and the pusher run it on the pipeline stack), so
# `make test` runs these tests on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks

MODEL_SOURCES = ["fixture", "tf_serving_testdata"]


def _tensor_info(name: str, dtype: str, dims: list[int] | None) -> dict:
    shape = (
        {"dim": [], "unknown_rank": True}
        if dims is None
        else {"dim": [{"size": str(d), "name": ""} for d in dims], "unknown_rank": False}
    )
    return {"dtype": dtype, "tensor_shape": shape, "name": name}


def _signature(inputs: dict, outputs: dict, method: str) -> dict:
    return {"inputs": inputs, "outputs": outputs, "method_name": method, "defaults": {}}


# The signature_def part of TF Serving's half_plus_two_model_metadata.json.
HALF_PLUS_TWO_SIGNATURES = {
    "serving_default": _signature(
        {"x": _tensor_info("x:0", "DT_FLOAT", [-1, 1])},
        {"y": _tensor_info("y:0", "DT_FLOAT", [-1, 1])},
        "tensorflow/serving/predict",
    ),
    "classify_x_to_y": _signature(
        {"inputs": _tensor_info("tf_example:0", "DT_STRING", None)},
        {"scores": _tensor_info("y:0", "DT_FLOAT", [-1, 1])},
        "tensorflow/serving/classify",
    ),
    "regress_x_to_y": _signature(
        {"inputs": _tensor_info("tf_example:0", "DT_STRING", None)},
        {"outputs": _tensor_info("y:0", "DT_FLOAT", [-1, 1])},
        "tensorflow/serving/regress",
    ),
    "regress_x_to_y2": _signature(
        {"inputs": _tensor_info("tf_example:0", "DT_STRING", None)},
        {"outputs": _tensor_info("y2:0", "DT_FLOAT", [-1, 1])},
        "tensorflow/serving/regress",
    ),
    "regress_x2_to_y3": _signature(
        {"inputs": _tensor_info("x2:0", "DT_FLOAT", [-1, 1])},
        {"outputs": _tensor_info("y3:0", "DT_FLOAT", [-1, 1])},
        "tensorflow/serving/regress",
    ),
}


@pytest.fixture(scope="module", params=MODEL_SOURCES)
def server(request, model_root, tmp_path_factory):
    """tfrelay-model-server with TF Serving's flags and the default model name ("default")."""
    if request.param == "fixture":
        base_path = model_root / "half_plus_two"
    else:
        base_path = TF_SERVING_TESTDATA / "saved_model_half_plus_two_cpu"
        if not base_path.is_dir():
            pytest.skip(f"TF Serving test models not present at {TF_SERVING_TESTDATA}")
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with ModelServerProcess([f"--model_base_path={base_path}"], log_path=log) as process:
        wait_for_version(process.url, "default", 123)
        yield process


def post(server, path: str, body) -> httpx.Response:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return httpx.post(f"{server.url}{path}", content=content, timeout=10)


# -- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (
            "/v1/models/default:predict",
            {"instances": [1.0, 2.0, 5.0]},
            {"predictions": [2.5, 3.0, 4.5]},
        ),
        (
            "/v1/models/default:predict",
            {"instances": [[1.0], [2.0]]},
            {"predictions": [[2.5], [3.0]]},
        ),
        (
            "/v1/models/default:predict",
            {"instances": [[1.0, 2.0], [3.0, 4.0]]},
            {"predictions": [[2.5, 3.0], [3.5, 4.0]]},
        ),
        (
            "/v1/models/default/versions/123:predict",
            {"instances": [1.0, 2.0]},
            {"predictions": [2.5, 3.0]},
        ),
        (
            "/v1/models/default/versions/123:predict",
            {"signature_name": "serving_default", "instances": [3.0, 4.0]},
            {"predictions": [3.5, 4.0]},
        ),
        (
            "/v1/models/default/versions/123:predict",
            {"signature_name": "serving_default", "inputs": [3.0, 4.0]},
            {"outputs": [3.5, 4.0]},
        ),
        (
            "/v1/models/default:predict",
            {"inputs": {"x": [[1.0], [5.0]]}},
            {"outputs": [[2.5], [4.5]]},
        ),
        (
            "/v1/models/default:predict",
            {"instances": [{"x": [1.0]}, {"x": [3.0]}]},
            {"predictions": [[2.5], [3.5]]},
        ),
        (
            "/v1/models/default:regress",
            {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]},
            {"results": [42.0]},
        ),
        (
            "/v1/models/default:regress",
            {"signature_name": "regress_x_to_y2", "examples": [{"x": 80.0}, {"x": 2.0}]},
            {"results": [43.0, 4.0]},
        ),
        (
            "/v1/models/default:classify",
            {"signature_name": "classify_x_to_y", "examples": [{"x": 20.0}]},
            {"results": [[["", 12.0]]]},
        ),
        (
            "/v1/models/default:classify",
            {
                "signature_name": "classify_x_to_y",
                "context": {"x": 10.0},
                "examples": [{}, {"x": 2.0}],
            },
            {"results": [[["", 7.0]], [["", 3.0]]]},
        ),
        ("/V1/MODELS/default:predict", {"instances": [1.0]}, {"predictions": [2.5]}),
    ],
)
def test_requests_get_tf_servings_answers(server, path, body, expected):
    response = post(server, path, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected


def test_non_finite_inputs_and_outputs_use_tf_servings_tokens(server):
    response = post(
        server, "/v1/models/default:predict", '{"instances": [NaN, Infinity, -Infinity, 2.0]}'
    )
    assert response.status_code == 200
    values = json.loads(response.text)["predictions"]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 3.0]
    assert "NaN" in response.text and "-Infinity" in response.text


def test_status_is_tf_servings_json(server):
    expected = {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    for path in (
        "/v1/models/default",
        "/v1/models/default/versions/123",
        "/v1/models/default/labels/anything",
    ):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 200
        assert response.json() == expected


def test_metadata_equals_tf_servings_half_plus_two_metadata(server):
    response = httpx.get(f"{server.url}/v1/models/default/metadata")
    assert response.status_code == 200
    expected = {
        "model_spec": {"name": "default", "signature_name": "", "version": "123"},
        "metadata": {"signature_def": {"signature_def": HALF_PLUS_TWO_SIGNATURES}},
    }
    assert response.json() == expected
    shared_file = TF_SERVING_TESTDATA / "half_plus_two_model_metadata.json"
    if shared_file.exists():
        assert response.json() == json.loads(shared_file.read_text())


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/v1/models/default:predict", "", 400, "JSON Parse error: The document is empty"),
        (
            "POST",
            "/v1/models/default:predict",
            "instances = [1, 2]",
            400,
            "JSON Parse error: Invalid value. at offset: 0",
        ),
        (
            "POST",
            "/v1/models/default:predict",
            {"instances": ["x", "y"]},
            400,
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "
            '"x" Type: String is not of expected type: float',
        ),
        (
            "POST",
            "/v1/models/default:predict",
            {"instances": [[1.0], [2.0, 3.0]]},
            400,
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting "
            "tensor size: 1 but got: 2",
        ),
        (
            "POST",
            "/v1/models/default:predict",
            {"instances": [1.0], "inputs": [1.0]},
            400,
            'JSON Value: {\n    "instances": [\n        1.0\n    ],\n    "inputs": [\n        1.0\n'
            "    ]\n} Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
            "to exist ",
        ),
        (
            "POST",
            "/v1/models/default:predict",
            {"signature_name": "serving_default"},
            400,
            "Missing 'inputs' or 'instances' key",
        ),
        (
            "POST",
            "/v1/models/default:predict",
            {"instances": []},
            400,
            "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
        ),
        (
            "POST",
            "/v1/models/default:predict",
            {"signature_name": "nope", "instances": [1.0]},
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            "POST",
            "/v1/models/default:predict",
            {"signature_name": 100, "instances": [1.0]},
            400,
            'JSON Value: {\n    "signature_name": 100,\n    "instances": [\n        1.0\n    ]\n} '
            "not formatted correctly. 'signature_name' key must be a string value.",
        ),
        (
            "POST",
            "/v1/models/foo:predict",
            {"instances": [1.0]},
            404,
            "Servable not found for request: Latest(foo)",
        ),
        (
            "POST",
            "/v1/models/default/versions/50:predict",
            {"instances": [1.0]},
            404,
            "Servable not found for request: Specific(default, 50)",
        ),
        (
            "POST",
            "/v1/models/default/labels/Version_Nonexistent:predict",
            {"instances": [1.0]},
            400,
            "Unrecognized servable version label: Version_Nonexistent",
        ),
        (
            "POST",
            "/v1/models/default:classify",
            {"signature_name": "classify_x_to_y", "examples": [{"x": [10, 10.0]}]},
            400,
            "Unexpected element type in feature: x expecting type: int64",
        ),
        ("GET", "/v1/foo", None, 400, "Malformed request: GET /v1/foo"),
        ("POST", "/v1/models", {}, 400, "Malformed request: POST /v1/models"),
        (
            "GET",
            "/v1/models/foo:predict",
            None,
            400,
            "Malformed request: GET /v1/models/foo:predict",
        ),
        (
            "POST",
            "/v1/models/default:PREDICT",
            {},
            400,
            "Malformed request: POST /v1/models/default:PREDICT",
        ),
        (
            "POST",
            "/v1/models/default/versions/50/labels/l:regress",
            {},
            400,
            "Malformed request: POST /v1/models/default/versions/50/labels/l:regress",
        ),
        ("GET", "/v1/models/versions/1", None, 400, "Missing model name in request."),
        ("GET", "/v1/models/foo", None, 404, "Could not find any versions of model foo"),
        (
            "GET",
            "/v1/models/default/versions/7",
            None,
            404,
            "Could not find version 7 of model default",
        ),
    ],
)
def test_malformed_requests_get_tf_servings_status_and_message(
    server, method, path, body, status, message
):
    content = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    response = httpx.request(method, f"{server.url}{path}", content=content, timeout=10)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": message}
    # ... and the server keeps serving.
    assert post(server, "/v1/models/default:predict", {"instances": [1.0]}).json() == {
        "predictions": [2.5]
    }


def test_version_overflowing_int64_gets_400_with_empty_body(server):
    response = post(server, "/v1/models/default/versions/18446744073709551615:predict", {})
    assert response.status_code == 400
    assert response.content == b""


def test_paths_outside_v1_get_the_http_servers_404(server):
    response = httpx.get(f"{server.url}/statuspage")
    assert response.status_code == 404
    assert b"404 Not Found" in response.content


def test_model_list_health_and_readiness_endpoints(server):
    models = httpx.get(f"{server.url}/v1/models").json()["models"]
    assert [m["name"] for m in models] == ["default"]
    assert models[0]["model_version_status"][0]["state"] == "AVAILABLE"
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "models": {"default": True}}
