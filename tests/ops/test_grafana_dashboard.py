"""deploy/grafana/tfrelay-dashboard.json imports into Grafana as one would load it: one
Prometheus data source chosen at import, a $model variable, panels laid out without overlap,
and the metrics an infra team asked for (issue 16). Its queries run against live data in
test_promql_on_live_prometheus.py."""

from __future__ import annotations

import json
import re

from ops.promql_text import GRAFANA_SUBSTITUTIONS, dashboard_panels

from support.paths import REPO_ROOT

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "tfrelay-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _document() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_has_a_stable_uid_and_its_variables():
    document = _document()
    assert document["uid"] == "tfrelay-model-server" and document["schemaVersion"] >= 36
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["model"]["includeAll"] and variables["model"]["allValue"] == ".*"


def test_every_panel_queries_the_chosen_prometheus_with_known_variables_only():
    known = {"$datasource", *GRAFANA_SUBSTITUTIONS}
    for panel in dashboard_panels(DASHBOARD):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            used = set(re.findall(r"\$[A-Za-z_]+", target["expr"]))
            assert used <= known, (panel["title"], used - known)


def test_panel_ids_are_unique_and_panels_do_not_overlap():
    document = _document()
    everything = [
        *document["panels"],
        *(p for row in document["panels"] for p in row.get("panels", [])),
    ]
    ids = [p["id"] for p in everything]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in document["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area


def test_dashboard_covers_traffic_errors_latency_versions_loads_and_polling():
    exprs = " ".join(t["expr"] for p in dashboard_panels(DASHBOARD) for t in p["targets"])
    for needed in (
        "rate(:tensorflow:serving:request_count",
        'status!="OK"',
        "histogram_quantile(0.99, sum by (model_name, le) "
        "(rate(:tensorflow:serving:request_latency_bucket",
        ":tfrelay:serving:loaded_versions",
        ":tfrelay:serving:load_failures",
        ":tensorflow:cc:saved_model:load_attempt_count",
        ":tfrelay:serving:storage_polls",
        ":tfrelay:serving:storage_listings",
    ):
        assert needed in exprs, needed
