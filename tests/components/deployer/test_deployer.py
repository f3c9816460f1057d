"""ServingDeployer: construction-time validation, Kubernetes manifests (schema-validated, applied
create-or-leave), and the local target starting and reusing a real model server."""

from __future__ import annotations

import json
import os
import pathlib

import kubernetes
import kubernetes_validate
import pytest
from tfx.types import channel_utils, standard_artifacts

from support.kubernetes_api import FakeKubernetesApi
from support.models import copy_version, write_half_plus_two
from support.servers import free_port
from tfrelay.components import properties
from tfrelay.components.deployer.artifacts import SERVING_VERSION, ServingEndpoint
from tfrelay.components.deployer.component import ServingDeployer
from tfrelay.components.deployer.executor import Executor
from tfrelay.components.deployer.kubernetes_apply import apply_once
from tfrelay.components.deployer.kubernetes_manifests import (
    KubernetesSettings,
    render_manifests,
    to_yaml,
)
from tfrelay.components.deployer.local_server import stop_local_server
from tfrelay.components.deployer.readiness import VersionNotServing

BUCKET = "s3://models-bucket/models/penguins"


def _pushed_channel():
    return channel_utils.as_channel([standard_artifacts.PushedModel()])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "cloud"}, "target must be 'local' or 'kubernetes'"),
        ({"model_name": "a/b"}, "model_name must be"),
        ({"base_path": "ftp://x/y"}, "base_path must be a local path"),
        ({"target": "kubernetes", "base_path": "/local/dir"}, "cannot read this machine's disk"),
        (
            {"target": "kubernetes", "kubernetes_config": {"replica": 2}},
            "Unknown kubernetes_config keys",
        ),
        ({"kubernetes_config": {"replicas": 2}}, "only applies to target='kubernetes'"),
        ({"endpoint": "localhost:8501"}, "endpoint must be an http"),
        ({"timeout_seconds": 0}, "must be positive"),
        ({"server_command": "/no/such/tfrelay-model-server"}, "is not an executable file"),
        (
            {"target": "kubernetes", "server_command": "/bin/true"},
            "server_command only applies to target='local'",
        ),
    ],
)
def test_component_rejects_unusable_settings(kwargs, message):
    arguments = {
        "pushed_model": _pushed_channel(),
        "model_name": "penguins",
        "base_path": BUCKET,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        ServingDeployer(**arguments)


def test_kubernetes_manifests_validate_and_carry_probes_ports_and_the_bucket():
    settings = KubernetesSettings(
        namespace="serving",
        image="registry/tfrelay-server:0.1",
        replicas=2,
        credentials_secret="s3-credentials",
    )
    manifests = render_manifests("penguins", BUCKET, settings)
    for manifest in manifests:
        # Offline, against the Kubernetes OpenAPI schemas shipped with kubernetes-validate.
        kubernetes_validate.validate(manifest, "1.30", strict=True)
    config_map, deployment, service = manifests
    assert 'base_path: "s3://models-bucket/models/penguins"' in config_map["data"]["models.config"]
    assert 'name: "penguins"' in config_map["data"]["models.config"]
    assert "prometheus_config" in config_map["data"]["monitoring.config"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    assert "--model_config_file=/etc/tfrelay/models.config" in container["args"]
    assert container["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    assert container["resources"]["requests"]["cpu"] == "500m"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert deployment["spec"]["replicas"] == 2
    assert {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}
    assert "kind: Deployment" in to_yaml(manifests)


def test_apply_creates_once_and_never_touches_existing_objects():
    manifests = render_manifests("penguins", BUCKET, KubernetesSettings(namespace="serving"))
    with FakeKubernetesApi() as api:
        client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=api.url))
        first = apply_once(manifests, client)
        assert [a.split(" ")[0] for a in first] == ["created"] * 3
        posts = [r for r in api.requests if r[0] == "POST"]
        second = apply_once(manifests, client)
        assert [a.split(" ")[0] for a in second] == ["kept"] * 3
        assert [r for r in api.requests if r[0] == "POST"] == posts  # nothing created again
        assert not [r for r in api.requests if r[0] in ("PUT", "PATCH", "DELETE")]
        assert ("deployments", "serving", "tfrelay-penguins") in api.objects


def _pushed(version: int, base_path) -> standard_artifacts.PushedModel:
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(base_path / f".pushed-{version}")
    pushed.set_int_custom_property(properties.PUSHED, 1)
    pushed.set_string_custom_property(properties.PUSHED_VERSION, str(version))
    pushed.set_string_custom_property(properties.PUSHED_DESTINATION, str(base_path / str(version)))
    return pushed


def _deploy(pushed, base_path, endpoint, state_dir, timeout=60) -> ServingEndpoint:
    output = ServingEndpoint()
    output.uri = str(state_dir / "endpoint")
    Executor().Do(
        {"pushed_model": [pushed]},
        {"serving_endpoint": [output]},
        {
            "model_name": "m",
            "base_path": str(base_path),
            "target": "local",
            "endpoint": endpoint,
            "timeout_seconds": timeout,
            "poll_seconds": 1,
            "state_dir": str(state_dir),
        },
    )
    return output


def test_local_target_starts_a_server_once_and_reuses_it(tmp_path):
    base = tmp_path / "bucket" / "m"
    source = write_half_plus_two(tmp_path / "models" / "1")
    copy_version(source, base, 1)
    endpoint = f"http://127.0.0.1:{free_port()}"
    state = tmp_path / "servers"
    try:
        first = _deploy(_pushed(1, base), base, endpoint, state)
        assert first.get_int_custom_property(SERVING_VERSION) == 1
        pid = json.loads(next(state.glob("server-*.json")).read_text())["pid"]
        # The pipeline runs on Python 3.10; the server it starts runs on the serving stack
        # (issue 14): .venv-serving's console script under Python 3.12+.
        command = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert any(part.endswith(b".venv-serving/bin/tfrelay-model-server") for part in command)
        interpreter = os.path.basename(os.path.realpath(f"/proc/{pid}/exe"))
        assert interpreter in ("python3.12", "python3.13"), interpreter
        copy_version(write_half_plus_two(tmp_path / "models" / "2", b=3.0), base, 2)
        second = _deploy(_pushed(2, base), base, endpoint, state)
        assert second.get_int_custom_property(SERVING_VERSION) == 2
        assert json.loads(next(state.glob("server-*.json")).read_text())["pid"] == pid

        (base / "3").mkdir()
        (base / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
        with pytest.raises(VersionNotServing, match="Version 3 of m failed to load"):
            _deploy(_pushed(3, base), base, endpoint, state, timeout=60)
    finally:
        assert stop_local_server(endpoint, str(state))


def test_local_target_refuses_a_server_serving_another_bucket(tmp_path):
    base = tmp_path / "bucket" / "m"
    copy_version(write_half_plus_two(tmp_path / "models" / "1"), base, 1)
    endpoint = f"http://127.0.0.1:{free_port()}"
    state = tmp_path / "servers"
    try:
        _deploy(_pushed(1, base), base, endpoint, state)
        other = tmp_path / "other" / "m"
        copy_version(write_half_plus_two(tmp_path / "models" / "x"), other, 1)
        with pytest.raises(ValueError, match="serves m from .* not from"):
            _deploy(_pushed(1, other), other, endpoint, state)
    finally:
        stop_local_server(endpoint, str(state))
