"""deploy/prometheus/tfrelay-alerts.yml as Prometheus's own tool reads it: valid rules, alerts
that fire on the series they should (promtool's unit tests), and what an on-call needs on each."""

from __future__ import annotations

import re
import subprocess

from ops.promql_text import alert_rules

from support.paths import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "tfrelay-alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "tfrelay-alerts.test.yml"


def _promtool(tools, *args: str, cwd=PROMETHEUS_DIR) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(tools.promtool), *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_promtool_accepts_the_alert_rules(prometheus_tools):
    checked = _promtool(prometheus_tools, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules(RULES))} rules found" in checked.stdout


def test_each_alert_fires_on_its_series_and_not_on_healthy_ones(prometheus_tools):
    tested = _promtool(prometheus_tools, "test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested():
    tests = RULE_TESTS.read_text()
    untested = [r["alert"] for r in alert_rules(RULES) if f"alertname: {r['alert']}" not in tests]
    assert untested == []


def test_every_alert_waits_has_a_severity_and_says_what_to_do():
    alerts = alert_rules(RULES)
    assert {a["alert"] for a in alerts} >= {
        "TfrelayModelHasNoAvailableVersion",
        "TfrelayModelLoadFailures",
        "TfrelayServerErrorRate",
        "TfrelayHighP99Latency",
    }
    for alert in alerts:
        assert re.fullmatch(r"\d+[smh]", alert["for"]), alert["alert"]
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]


def test_the_scrape_config_loads_the_rules_and_passes_promtool(prometheus_tools, tmp_path):
    config = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    assert "rule_files:\n  - tfrelay-alerts.yml\n" in config
    # Debian builds Prometheus without Kubernetes service discovery, so its promtool refuses
    # `kubernetes_sd_configs`: the rest of the file is checked with a static target in its
    # place (the relabelling, the rules file and every other field as written).
    assert "    kubernetes_sd_configs:\n      - role: pod\n" in config
    checkable = config.replace(
        "    kubernetes_sd_configs:\n      - role: pod\n",
        "    static_configs:\n      - targets: ['127.0.0.1:8501']\n",
    )
    (tmp_path / "prometheus.yml").write_text(checkable)
    (tmp_path / "tfrelay-alerts.yml").write_text(RULES.read_text())
    checked = _promtool(prometheus_tools, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
