"""The largest deployments through the real pipeline: a container group of 60 containers (ACI's maximum) and a
container app with 100 images, both with long references. Every image is accounted for and the custom status stays
within Azure's 16 KB of UTF-16 JSON text all along (devhost fails an instance the moment one is larger)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.custom_status import MAX_LISTED_IMAGES
from devhost.armsim.testing import resource_id
from devhost.azurite import Azurite
from devhost.custom_status import CUSTOM_STATUS_LIMIT_BYTES, utf16_json_bytes
from tests.orchestration.pipeline_support import needs_arm_activities, running_pipeline
from tests.orchestration.test_scan_pipeline import scenario, start_deployment

pytestmark = [pytest.mark.azurite, pytest.mark.slow, needs_arm_activities]
BIG_GROUP = resource_id("Microsoft.ContainerInstance/containerGroups", "big")
WIDE_APP = resource_id("Microsoft.App/containerApps", "wide")
ACI_MAX_CONTAINERS = 60
"""Containers in one container group (ACI quotas and limits; ../shared/reference/azure.md)."""
APP_IMAGES = 100
LONG_PATH = "platform/payments/" + "settlement-reconciliation-" * 5
"""About 150 characters of repository path: with 100 such images the old status (every image listed) was ~46 KB."""
QUICK_SCAN = {"result": "ok", "duration_s": 20, "vulnerabilities": {"LOW": 1}}


def images(count: int, registry: str) -> list[str]:
    return [f"{registry}/{LONG_PATH}svc-{index:03}:1.0.{index}" for index in range(count)]


def test_a_group_of_60_containers_and_an_app_of_100_images_complete_within_the_status_limit(
    azurite: Azurite, tmp_path: Path
) -> None:
    group_images = images(ACI_MAX_CONTAINERS, "contoso.azurecr.io")
    app_images = images(APP_IMAGES, "fabrikam.azurecr.io")
    both = scenario((BIG_GROUP, group_images), (WIDE_APP, app_images), scans={"default": QUICK_SCAN})
    with running_pipeline(azurite, both, tmp_path) as pipeline:
        group_scan = start_deployment(pipeline, BIG_GROUP, "corr-big")
        app_scan = start_deployment(pipeline, WIDE_APP, "corr-wide")
        pipeline.run(timeout=600)
        for instance_id, expected in ((group_scan, group_images), (app_scan, app_images)):
            output = pipeline.output(instance_id)  # Completed: no status over the limit failed it on the way
            assert output["status"] == "completed"
            results = pipeline.results_by_image(instance_id)
            assert sorted(results) == sorted(expected)
            assert {result["status"] for result in results.values()} == {"completed"}
            custom = pipeline.status(instance_id)["customStatus"]
            size = utf16_json_bytes(custom)
            assert size <= CUSTOM_STATUS_LIMIT_BYTES
            assert custom["imageCount"] == len(expected)
            assert custom["imageStatuses"] == {"completed": len(expected)}
            assert [entry["image"] for entry in custom["images"]] == expected[: len(custom["images"])]
            assert 0 < len(custom["images"]) <= MAX_LISTED_IMAGES
            assert custom["groupCount"] == len(custom["groups"]) and set(custom["groupStates"]) == {"Deleted"}
            output_bytes = len(json.dumps(output).encode("utf-16-le"))
            print(f"{instance_id}: {len(expected)} images, custom status {size} B, output {output_bytes} B (UTF-16)")
        assert pipeline.sim.stats()["groups"]["remaining"] == 0
