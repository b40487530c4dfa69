"""The QSCANNER_MODE of ScanOptions reaches collect through the orchestration input: a scan-only deployment ends
`uploaded` (no report expected, no alert) and is not cached, so the next deployment scans again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.azurite import Azurite
from tests.orchestration.pipeline_support import needs_arm_activities, running_pipeline
from tests.orchestration.test_scan_pipeline import API, NGINX, WEB, scenario, start_deployment, statuses

pytestmark = [pytest.mark.azurite, pytest.mark.slow, needs_arm_activities]


def test_scan_only_images_are_uploaded_and_never_cached(azurite: Azurite, tmp_path: Path) -> None:
    deployments = scenario((WEB, ["nginx:1.27"]), (API, ["nginx:1.27"]))
    with running_pipeline(azurite, deployments, tmp_path, QSCANNER_MODE="scan-only") as pipeline:
        first = start_deployment(pipeline, WEB)
        pipeline.run()
        second = start_deployment(pipeline, API)
        pipeline.run()
        assert statuses(pipeline, first) == {NGINX: "uploaded"}
        assert statuses(pipeline, second) == {NGINX: "uploaded"}
        assert pipeline.output(first)["status"] == "completed"
        assert pipeline.sim.stats()["groups"]["created"] == 2
        collects = [e for e in pipeline.history(first) if e.get("Name") == "collect_results" and e.get("Input")]
        inputs = [json.loads(e["Input"]) for e in collects]
        inputs = [json.loads(i) if isinstance(i, str) else i for i in inputs]  # the SDK encodes activity input twice
        assert inputs and all(i["mode"] == "scan-only" for i in inputs)
