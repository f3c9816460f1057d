"""Server behaviour beyond single requests: start-up before models exist, TF2 exports, one bad
model among good ones, bounded status history."""

from __future__ import annotations

import httpx
import pytest

from support.models import copy_version
from support.paths import TF_SERVING_TESTDATA
from support.servers import InProcessModelServer, wait_for_version, wait_until
from tfrelay.serving.options import ServerOptions

# Conformance on TF Serving's test models, which `make test` runs on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks


def _predict(url: str, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/models/{model}:predict", json=body, timeout=10)


def test_server_answers_before_any_model_exists_and_serves_it_once_it_appears(model_root, tmp_path):
    base = tmp_path / "not-yet"
    options = ServerOptions(
        model_name="m", model_base_path=str(base), file_system_poll_wait_seconds=0.2
    )
    with InProcessModelServer(options) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and ready.json() == {"ready": False, "models": {"m": False}}
        response = _predict(server.url, "m", {"instances": [1.0]})
        assert response.status_code == 404
        assert response.json() == {"error": "Servable not found for request: Latest(m)"}
        copy_version(model_root / "half_plus_two" / "123", base, 1)
        wait_for_version(server.url, "m", 1)
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        assert _predict(server.url, "m", {"instances": [1.0]}).json() == {"predictions": [2.5]}


def test_one_model_with_a_missing_base_path_does_not_stop_the_others(model_root, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {"
        f" config {{ name: 'good' base_path: '{model_root / 'half_plus_two'}' }}"
        f" config {{ name: 'missing' base_path: '{tmp_path / 'nowhere'}' }} }}"
    )
    options = ServerOptions(model_config_file=str(config), file_system_poll_wait_seconds=0.2)
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "good", 123)
        assert _predict(server.url, "good", {"instances": [1.0]}).json() == {"predictions": [2.5]}
        assert _predict(server.url, "missing", {"instances": [1.0]}).status_code == 404


@pytest.mark.parametrize("source", ["fixture", "tf_serving_testdata"])
def test_tf2_savedmodels_serve_predict_and_metadata(source, model_root):
    if source == "fixture":
        base, version = model_root / "tf2_half_plus_two", 1
    else:
        base, version = TF_SERVING_TESTDATA / "saved_model_half_plus_two_tf2_cpu", 123
        if not base.is_dir():
            pytest.skip(f"TF Serving test models not present at {TF_SERVING_TESTDATA}")
    options = ServerOptions(model_name="tf2", model_base_path=str(base))
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "tf2", version)
        response = _predict(server.url, "tf2", {"instances": [[1.0], [2.0], [5.0]]})
        assert response.json() == {"predictions": [[2.5], [3.0], [4.5]]}
        metadata = httpx.get(f"{server.url}/v1/models/tf2/metadata").json()
        signatures = metadata["metadata"]["signature_def"]["signature_def"]
        assert "serving_default" in signatures and "__saved_model_init_op" not in signatures
        assert signatures["serving_default"]["inputs"]["x"]["dtype"] == "DT_FLOAT"


def test_status_history_is_bounded(model_root, tmp_path):
    base = tmp_path / "m"
    copy_version(model_root / "half_plus_two" / "123", base, 1)
    options = ServerOptions(
        model_name="m",
        model_base_path=str(base),
        file_system_poll_wait_seconds=0.2,
        max_ended_versions_in_status=2,
    )
    with InProcessModelServer(options) as server:
        for version in range(2, 7):
            copy_version(model_root / "half_plus_two" / "123", base, version)
            wait_for_version(server.url, "m", version)
        wait_until(
            lambda: len(httpx.get(f"{server.url}/v1/models/m").json()["model_version_status"]) == 3,
            10,
        )
        statuses = httpx.get(f"{server.url}/v1/models/m").json()["model_version_status"]
        assert [s["version"] for s in statuses] == ["6", "5", "4"]
        assert [s["state"] for s in statuses] == ["AVAILABLE", "END", "END"]


def test_model_listing_shows_push_lineage_and_the_error_of_a_load_being_retried(
    model_root, tmp_path
):
    import json
    import shutil

    base = tmp_path / "m"
    version_1 = copy_version(model_root / "half_plus_two" / "123", base, 1)
    record = {
        "model_name": "m",
        "version": 1,
        "pipeline_run_id": "run-42",
        "checksum": "sha256:abc",
    }
    extra = version_1 / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / "tfrelay_push.json").write_text(json.dumps(record))
    options = ServerOptions(
        model_name="m",
        model_base_path=str(base),
        file_system_poll_wait_seconds=0.2,
        load_retry_interval_micros=60_000_000,  # the retry of version 2 stays pending
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        (base / "2").mkdir()
        (base / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")

        def listing() -> dict[str, dict]:
            model = httpx.get(f"{server.url}/v1/models").json()["models"][0]
            return {s["version"]: s for s in model["model_version_status"]}

        wait_until(lambda: "last_load_error" in listing().get("2", {}), 20)
        statuses = listing()
        assert statuses["1"]["push"]["pipeline_run_id"] == "run-42"
        assert statuses["1"]["load_seconds"] > 0
        assert statuses["2"]["state"] in ("START", "LOADING") and statuses["2"]["last_load_error"]
        # TF Serving's own status API keeps its exact shape.
        tf_status = httpx.get(f"{server.url}/v1/models/m/versions/1").json()[
            "model_version_status"
        ][0]
        assert set(tf_status) == {"version", "state", "status"}
    shutil.rmtree(base)
