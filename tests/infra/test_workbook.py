"""The metrics workbook (issue 12 item 6): infra/app/workbook.bicep deploys infra/app/workbook.json, which charts
every metric of core.metrics from Application Insights customMetrics, with attributes the metrics really carry."""

from __future__ import annotations

import json
import re
from typing import Any

from core.metrics import METRICS
from tests.infra.bicep_model import INFRA_DIR, bicep_file

WORKBOOK = "app/workbook.bicep"
CONTENT = INFRA_DIR / "app" / "workbook.json"
METRIC_NAME = re.compile(r'"(qscan\.[a-z_.]+)"')
DIMENSION = re.compile(r'customDimensions\["([a-z_]+)"\]')


def _queries() -> list[dict[str, Any]]:
    document = json.loads(CONTENT.read_text(encoding="utf-8"))
    assert document["version"] == "Notebook/1.0"
    return [item["content"] for item in document["items"] if item["type"] == 3]


def test_the_workbook_is_deployed_from_the_json_next_to_it_on_the_apps_application_insights() -> None:
    declaration = bicep_file(WORKBOOK).resources("Microsoft.Insights/workbooks")[0]
    assert declaration.reference.split("@", 1)[1].startswith("20")
    assert declaration.value("properties", "category") == "workbook"
    assert declaration.value("properties", "version") == "Notebook/1.0"
    assert declaration.text("properties", "sourceId") == "applicationInsights.id"
    assert "loadTextContent('workbook.json')" in (declaration.text("properties", "serializedData") or "")
    assert "guid(" in (declaration.text("name") or "")
    modules = {module.resource_type: module for module in bicep_file("main.bicep").modules()}
    wired = modules["app/workbook.bicep"]
    assert wired.text("params", "applicationInsightsName") == "monitoring.outputs.applicationInsightsName"


def test_every_metric_is_charted_and_every_chart_names_real_metrics_and_attributes() -> None:
    specs = {spec.name: spec for spec in METRICS}
    charted: set[str] = set()
    for query in _queries():
        names = set(METRIC_NAME.findall(query["query"]))
        assert names and names <= set(specs), query["title"]
        allowed = {key for name in names for key in specs[name].attributes}
        assert set(DIMENSION.findall(query["query"])) <= allowed, query["title"]
        assert query["timeContextFromParameter"] == "TimeRange"
        assert query["resourceType"] == "microsoft.insights/components"
        assert query["query"].startswith("customMetrics")
        charted |= names
    assert charted == set(specs)


def test_findings_by_severity_over_time_is_a_chart() -> None:
    titles = {query["title"]: query for query in _queries()}
    findings = titles["Findings by severity over time"]
    assert '"qscan.findings"' in findings["query"] and "bin(timestamp" in findings["query"]
