"""The PromQL in the operations assets, read from the files as Prometheus and Grafana read them.

How an alert condition is checked against live data (decided for issue 16): its expression is
evaluated without its top-level comparison, and that must return a series for the models it
watches, since a comparison can only fire on series that exist; the comparison itself, `for:`
and the labels are checked by `promtool test rules` on synthetic series
(deploy/prometheus/tfrelay-alerts.test.yml). The whole expression is evaluated too, so it must
parse and run on the live data.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass

import yaml

# Grafana's variables as the dashboard uses them, and what a query would see with "All" models
# selected and a short scrape interval.
GRAFANA_SUBSTITUTIONS = {"$__rate_interval": "1m", "$model": ".*"}
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from (for failure messages)."""

    where: str
    expr: str


def alert_rules(path: pathlib.Path) -> list[dict]:
    """Every rule of a Prometheus rules file, in order."""
    document = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_panels(path: pathlib.Path) -> list[dict]:
    """Every panel of a Grafana dashboard, rows' nested panels included, rows excluded."""
    panels: list[dict] = []
    for panel in json.loads(path.read_text())["panels"]:
        if panel.get("type") == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return panels


def dashboard_queries(path: pathlib.Path) -> list[Query]:
    """Every target's expression, with Grafana's variables substituted."""
    queries = []
    for panel in dashboard_panels(path):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_SUBSTITUTIONS.items():
                expr = expr.replace(variable, value)
            queries.append(Query(f"panel {panel['title']!r} {target['refId']}", expr))
    return queries


def without_top_level_comparison(expr: str) -> str:
    """The left side of an expression's last comparison outside any (), [] or {} and strings;
    the expression itself when it has none.

    `a / b > 0.01` gives `a / b`; `up{job="x"} == 0` gives `up{job="x"}`; label matchers such as
    `status!="OK"` are inside braces and never count.
    """
    depth = 0
    quote = ""
    last = None
    i = 0
    while i < len(expr):
        char = expr[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            for operator in _COMPARISONS:
                if expr.startswith(operator, i):
                    last = (i, operator)
                    i += len(operator) - 1
                    break
        i += 1
    if last is None:
        return expr.strip()
    return expr[: last[0]].strip()
