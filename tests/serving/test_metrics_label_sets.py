"""Request metrics stay bounded whatever model names clients send (issue 12)."""

from __future__ import annotations

from tfrelay.serving.metrics import MAX_LABEL_SETS, OVERFLOW_LABEL, ServingMetrics


def _label_sets(metrics: ServingMetrics, name: str) -> list[dict[str, str]]:
    family = next(f for f in metrics.registry.collect() if f.name == name)
    return [sample.labels for sample in family.samples if not sample.name.endswith("_bucket")]


def test_a_new_model_name_on_every_request_cannot_grow_the_metrics_without_end():
    metrics = ServingMetrics()
    requests = MAX_LABEL_SETS + 500
    for index in range(requests):
        metrics.record_request(f"no-such-model-{index}", "predict", "REST", "OK", 0.001)
    counts = _label_sets(metrics, ":tensorflow:serving:request_count")
    assert len(counts) == MAX_LABEL_SETS + 1
    overflow = [s for s in metrics.registry.collect() if s.name.endswith("request_count")][0]
    total = sum(sample.value for sample in overflow.samples)
    assert total == requests  # nothing is lost: the rest is counted under the overflow labels
    assert {"model_name": OVERFLOW_LABEL, "status": OVERFLOW_LABEL} in counts
    assert metrics.request_latency.count(OVERFLOW_LABEL, OVERFLOW_LABEL, OVERFLOW_LABEL) == 500


def test_known_label_sets_keep_counting_after_the_cap():
    metrics = ServingMetrics()
    metrics.record_request("penguins", "predict", "REST", "OK", 0.001)
    for index in range(MAX_LABEL_SETS + 10):
        metrics.record_request(f"junk-{index}", "predict", "REST", "NOT_FOUND", 0.001)
    metrics.record_request("penguins", "predict", "REST", "OK", 0.001)
    assert metrics.request_count.value("penguins", "OK") == 2
