"""The Grafana dashboard of ``deploy/grafana/``: Grafana's own dashboard JSON, its datasource a variable, and every
PromQL expression in it naming metrics the runner exports (runner/metrics.py), so it cannot drift from them.

"Exports" is read from a real export (``metrics.export`` on a migrated database: the command's own registry and
the ledger's gauges, everything the textfile, the Pushgateway or ``metrics serve`` can carry), not from a list
kept here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import unavailable
from prometheus_client.parser import text_string_to_metric_families

from runner import metrics
from runner.settings import PROJECT_DIR, Settings

DASHBOARD = PROJECT_DIR / "deploy" / "grafana" / "olist-dw-runner.json"
PROVISIONING = PROJECT_DIR / "deploy" / "grafana" / "olist-dw-dashboards.yml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24

# Grafana's variables, replaced by a value of their kind before the PromQL is read.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1d",
    "${pipeline}": "olist",
    "$pipeline": "olist",
}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"}
# The series each kind of metric family is exposed as (prometheus_client's exposition).
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every query: each panel target, and the metric selector of each variable's query."""
    found = [
        (f"panel {panel['title']!r} target {target['refId']}", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        # Grafana's label_values(<selector>, <label>): the selector is PromQL, the function is Grafana's.
        selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
        assert selector, f"variable {variable['name']}: {query!r} is not label_values(<metric>, <label>)"
        found.append((f"variable {variable['name']!r}", selector[1]))
    return found


def substituted(expression: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    assert "$" not in expression, f"an unknown Grafana variable in {expression!r}"
    return expression


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads: its identifiers that are not functions, keywords or labels.

    Strings, label matchers ``{...}``, ranges ``[...]``, label lists of ``by``/``without``/``on``/``ignoring``/
    ``group_left``/``group_right`` and ``offset`` durations are removed first; a name followed by ``(`` is a
    function or an aggregation. ``promtool`` checks separately that each expression is PromQL at all.
    """
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expression)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?[\w.]+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match[0].lower() in PROMQL_KEYWORDS:
            continue
        names.add(match[0])
    return names


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ('max by (pipeline) (rate(a_total{job="x", le="1"}[5m])) / on (pipeline) b offset 1h > 0', {"a_total", "b"}),
        ('time() - max without (instance) (c{name="d"}) > 2.5e3 and bool vector(1)', {"c"}),
        ("histogram_quantile(0.95, sum by (le) (increase(d_bucket[1d])))", {"d_bucket"}),
        ('x * on (a) group_left (b, c) label_replace(y, "z", "$1", "w", "(.*)")', {"x", "y"}),
    ],
)
def test_metric_names_are_read_from_promql_as_prometheus_reads_them(expression, names):
    assert metric_names(expression) == names


def test_the_dashboard_is_grafana_dashboard_json_with_the_datasource_as_a_variable():
    dashboard = load_dashboard()

    assert {"title", "uid", "schemaVersion", "panels", "templating", "time", "annotations"} <= set(dashboard)
    assert isinstance(dashboard["schemaVersion"], int) and re.fullmatch(r"[\w-]{1,40}", dashboard["uid"])
    # No datasource fixed at export time (an `__inputs` section, a datasource uid of one Grafana): a variable
    # offers the Prometheus datasources of whichever Grafana loads it.
    assert "__inputs" not in dashboard
    (datasource,) = [variable for variable in dashboard["templating"]["list"] if variable["type"] == "datasource"]
    assert datasource["name"] == "datasource" and datasource["query"] == "prometheus"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]

    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    occupied: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        position = panel["gridPos"]
        assert position["x"] >= 0 and position["w"] > 0 and position["x"] + position["w"] <= GRID_COLUMNS, panel[
            "title"
        ]
        cells = {
            (row, column)
            for row in range(position["y"], position["y"] + position["h"])
            for column in range(position["x"], position["x"] + position["w"])
        }
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel.get("description"), f"panel {panel['title']!r} says nothing about what it shows"
        targets = panel["targets"]
        assert targets and all(target["datasource"] == DATASOURCE and target["expr"] for target in targets)
        assert len({target["refId"] for target in targets}) == len(targets), panel["title"]

    provisioning = yaml.safe_load(PROVISIONING.read_text(encoding="utf-8"))
    assert provisioning["apiVersion"] == 1
    assert [provider["type"] for provider in provisioning["providers"]] == ["file"]


@pytest.fixture
def exported_series(settings: Settings, connection, tmp_path: Path) -> dict[str, str]:
    """Every series name the runner's export writes (family name and suffix), with its family's type.

    On a database migrated as every command leaves it: the families are written with their HELP and TYPE even
    before they hold a sample, so a fresh warehouse shows them all.
    """
    exported = tmp_path / "olist_dw.prom"
    metrics.export(exported, settings.dsn)
    series = {}
    for family in text_string_to_metric_families(exported.read_text(encoding="utf-8")):
        for suffix in SERIES_SUFFIXES.get(family.type, ("",)):
            series[family.name + suffix] = family.name
    return series


def test_every_expression_of_the_dashboard_names_only_metrics_the_runner_exports(exported_series):
    for where, expression in expressions(load_dashboard()):
        names = metric_names(substituted(expression))
        assert names, f"{where}: {expression!r} reads no metric"
        unknown = names - set(exported_series)
        assert not unknown, f"{where}: {sorted(unknown)} are not exported by the runner ({expression!r})"


def test_the_dashboard_shows_every_metric_the_runner_exports(exported_series):
    """A metric the runner exports and no panel shows is one an operator never sees: add a panel for it."""
    shown = {
        exported_series[name]
        for _, expression in expressions(load_dashboard())
        for name in metric_names(substituted(expression))
    }
    assert set(exported_series.values()) - shown == set()


def test_every_expression_of_the_dashboard_is_promql_promtool_accepts(tmp_path: Path):
    """Each expression, its Grafana variables given values, as a recording rule ``promtool check rules`` parses."""
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("PROMETHEUS", "promtool is not installed (Debian: apt-get install prometheus)")
    rules = [
        {"record": f"olist_dw_dashboard:query_{index}", "expr": substituted(expression)}
        for index, (_, expression) in enumerate(expressions(load_dashboard()))
    ]
    rules_file = tmp_path / "dashboard-rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")

    completed = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False, timeout=60
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"{len(rules)} rules found" in completed.stdout
