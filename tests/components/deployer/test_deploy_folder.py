"""deploy/kubernetes/model-server.yaml is what the deployer renders, and it validates."""

from __future__ import annotations

import kubernetes_validate
import yaml

from support.paths import REPO_ROOT
from tfrelay.components.deployer.kubernetes_manifests import (
    KubernetesSettings,
    render_manifests,
    to_yaml,
)

EXAMPLE = REPO_ROOT / "deploy" / "kubernetes" / "model-server.yaml"
HEADER = (
    "# What the ServingDeployer (target=kubernetes) creates for the penguin model, for review or\n"
    "# `kubectl apply -f`. Regenerate: see tests/components/deployer/test_deploy_folder.py.\n"
    "# Credentials come from the Secret `bucket-credentials` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
    "# AWS_REGION, or S3_ENDPOINT/S3_USE_HTTPS for MinIO), never from this file.\n"
    "# The image is deploy/Dockerfile.server: the serving stack (Python 3.13, TensorFlow 2.21, no TFX).\n"
)


def rendered() -> str:
    settings = KubernetesSettings(
        namespace="serving",
        image="tfrelay/model-server:0.1.0",
        credentials_secret="bucket-credentials",
    )
    return HEADER + to_yaml(
        render_manifests("penguins", "s3://my-bucket/models/penguins", settings)
    )


def test_example_manifests_are_what_the_deployer_renders():
    # To regenerate after changing the renderer: EXAMPLE.write_text(rendered())
    assert EXAMPLE.read_text() == rendered()


def test_example_manifests_validate_against_the_kubernetes_schemas():
    documents = list(yaml.safe_load_all(EXAMPLE.read_text()))
    assert [d["kind"] for d in documents] == ["ConfigMap", "Deployment", "Service"]
    for document in documents:
        kubernetes_validate.validate(document, "1.30", strict=True)
