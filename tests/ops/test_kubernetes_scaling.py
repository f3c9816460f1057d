"""deploy/kubernetes/model-server-scaling.yaml (HorizontalPodAutoscaler, PodDisruptionBudget)
validates against Kubernetes' schemas and acts on the Deployment of model-server.yaml: the
HPA scales it by name, the PDB selects its pods, and together they never block a drain."""

from __future__ import annotations

import kubernetes_validate
import yaml

from support.paths import REPO_ROOT

KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"


def _documents(name: str) -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all((KUBERNETES / name).read_text())}


def test_scaling_manifests_validate_against_the_kubernetes_schemas():
    documents = _documents("model-server-scaling.yaml")
    assert sorted(documents) == ["HorizontalPodAutoscaler", "PodDisruptionBudget"]
    for document in documents.values():
        kubernetes_validate.validate(document, "1.30", strict=True)


def test_autoscaler_scales_the_model_server_deployment_on_cpu_it_requests():
    deployment = _documents("model-server.yaml")["Deployment"]
    hpa = _documents("model-server-scaling.yaml")["HorizontalPodAutoscaler"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert hpa["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # Utilization is a share of the containers' CPU request: without one the HPA does nothing.
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        assert container["resources"]["requests"]["cpu"]


def test_disruption_budget_selects_the_deployments_pods_and_leaves_one_evictable():
    deployment = _documents("model-server.yaml")["Deployment"]
    hpa = _documents("model-server-scaling.yaml")["HorizontalPodAutoscaler"]
    pdb = _documents("model-server-scaling.yaml")["PodDisruptionBudget"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert pdb["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    # With minAvailable below the HPA's floor, a drain can always evict one pod.
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
