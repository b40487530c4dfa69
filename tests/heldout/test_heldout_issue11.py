"""Held-out checks of issue 11's built parts (inventory, sweeps, the inventory API), written from the issue text and
the reference, run through the demo with tests/heldout/scenarios/inventory.json:

- backfill: pre-web, pre-api (listed subscription), pre-sbx (an excluded resource group) and vanish-job exist before
  the first sweep (at +600 s) and no event mentions them; ghost, in an unlisted subscription, is never listed;
- deletes of the three kinds: del-aci (Event Grid ResourceDeleteSuccess, delivered twice), del-app, del-aci2 (Activity
  Log Start and Success records) and del-job (Activity Log Success, the listed subscription); none is a scan target;
  half-del's delete has only Start and Accept records: it stays;
- redelivered and out-of-order events: the first write batch twice; an older write of `ordered` after its newer one;
  an older write of del-aci after its delete; an older delete of keeper after its write (after the last sweep);
- a shared image: nginx:1.25 runs in pre-web, pre-api and (until its delete) del-aci, scanned once;
- a sweep at +6000 s after vanish-job vanished (deleted_at_s 5000, no event) removes it;
- hx-ops, an exception scoped to the listed subscription's `ops` group, covers what the sweep scanned there.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.heldout.runs import LISTED, OWN, Run, run_scenario
from tests.sbom_validation import cyclonedx_problems

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NGINX = "docker.io/library/nginx:1.25"
LIVE = {"ordered", "keeper", "pre-web", "pre-api", "pre-sbx", "half-del"}
GONE = {"del-aci", "del-aci2", "del-app", "del-job", "vanish-job", "ghost"}
DEL_ACI = f"/subscriptions/{OWN}/resourceGroups/apps/providers/Microsoft.ContainerInstance/containerGroups/del-aci"
PRE_WEB = f"/subscriptions/{OWN}/resourceGroups/legacy/providers/Microsoft.ContainerInstance/containerGroups/pre-web"
PROBES: list[dict[str, Any]] = [
    {"name": "listed", "method": "GET", "path": "/api/inventory", "params": {"subscription": LISTED}},
    {"name": "own_aci", "method": "GET", "path": "/api/inventory", "params": {"subscription": OWN, "kind": "aci"}},
    {"name": "high", "method": "GET", "path": "/api/inventory", "params": {"minSeverity": "HIGH", "pageSize": "1"}},
    {"name": "all", "method": "GET", "path": "/api/inventory", "params": {"pageSize": "1"}, "pages": True},
    {"name": "nginx", "method": "GET", "path": "/api/images", "params": {"ref": "nginx:1.25"}},
    {"name": "deleted", "method": "GET", "path": "/api/inventory" + DEL_ACI},
    {"name": "upper", "method": "GET", "path": "/api/inventory" + PRE_WEB.upper()},
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    done = run_scenario("inventory", tmp_path_factory.mktemp("h11") / "out", PROBES)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return done


def test_the_inventory_holds_what_runs_after_deletes_and_sweeps(run: Run) -> None:
    inventory = run.inventory
    assert set(inventory) == LIVE
    assert run.json("inventory.json")["count"] == len(LIVE)
    assert {item["kind"] for item in inventory.values()} == {"aci", "aca", "aca-job"}
    assert not GONE & set(inventory)
    pre_web = inventory["pre-web"]
    assert (pre_web["subscriptionId"], pre_web["resourceGroup"], pre_web["location"]) == (OWN, "legacy", "northeurope")
    assert inventory["pre-api"]["subscriptionId"] == LISTED
    for item in inventory.values():
        assert item["firstSeen"] <= item["lastSeen"]


def test_sweeps_backfill_and_remove(run: Run) -> None:
    assert run.summary["sweeps"] == {"runs": 2, "added": 4, "removed": 1}
    for name in ("pre-web", "pre-api", "pre-sbx"):
        assert run.inventory[name]["eventTime"] is None  # only sweeps have seen it


def test_out_of_order_and_redelivered_events_keep_the_newest_state(run: Run) -> None:
    assert run.inventory["ordered"]["eventTime"].startswith("2026-10-02T08:10:00")
    assert run.inventory["keeper"]["eventTime"].startswith("2026-10-02T08:20:00")


def test_deletes_are_never_scan_targets_and_each_write_scans_once(run: Run) -> None:
    summary = run.summary
    # Writes: del-aci, del-app, ordered (twice: two operations), keeper, del-job, del-aci2, half-del, del-aci's late
    # write (gone: no image); the sweep's scans: ghcr.io/acme/api:2 and vanish:1 (busybox is in an excluded group,
    # nginx is fresh). The five deletes start nothing.
    assert summary["orchestrations"] == {"Completed": 11, "Failed": 0, "Running": 0, "Terminated": 0}
    statuses = {item["image"]: item["status"] for item in summary["images"]}
    assert "docker.io/library/busybox:1.36" not in statuses  # excluded by rg:sandbox-*, even when swept
    assert set(statuses.values()) == {"completed"}
    assert summary["scans_started"] == len(statuses) == 9


def test_a_shared_image_links_every_workload_to_one_result(run: Run) -> None:
    results = [
        image["latestResult"] for item in run.inventory.values() for image in item["images"] if image["image"] == NGINX
    ]
    assert len(results) == 2  # pre-web and pre-api
    assert results[0] is not None and results[0] == results[1]
    assert results[0]["vulnerabilities"] == {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 2}
    sbx = run.inventory["pre-sbx"]
    assert "rg:sandbox-*" in sbx["excluded"] and sbx["images"][0]["latestResult"] is None


def test_inventory_api_filters_and_pages(run: Run) -> None:
    probes = run.probes
    assert [item["name"] for item in probes["listed"]["body"]["items"]] == ["pre-api"]
    assert {item["name"] for item in probes["own_aci"]["body"]["items"]} == {"ordered", "pre-web", "pre-sbx"}
    high = probes["high"]["body"]
    assert len(high["items"]) <= 1 and high["continuationToken"] is not None
    pages = probes["all"]
    assert all(page["status"] == 200 and len(page["body"]["items"]) <= 1 for page in pages)
    assert {item["name"] for page in pages for item in page["body"]["items"]} == LIVE
    assert pages[-1]["body"]["continuationToken"] is None
    assert probes["deleted"]["status"] == 404
    assert probes["upper"]["status"] == 200 and probes["upper"]["body"]["resourceId"] == PRE_WEB  # ARM ids: any case


def test_an_image_lists_the_workloads_running_it(run: Run) -> None:
    answer = run.probes["nginx"]
    assert answer["status"] == 200
    assert {w["resourceId"].split("/")[-1] for w in answer["body"]["workloads"]} == {"pre-web", "pre-api"}
    assert answer["body"]["result"]["status"] == "completed"


def test_exports_are_valid_cyclonedx(run: Run) -> None:
    import json

    exports = run.out / "exports"
    rows = [row for row in json.loads((exports / "index.json").read_text()) if row["format"] == "cyclonedx"]
    assert rows and all(row["status"] == 200 for row in rows)
    for row in rows:
        assert cyclonedx_problems((exports / row["file"]).read_bytes()) == [], row["image"]


def test_a_scoped_exception_covers_an_image_the_sweep_scanned(run: Run) -> None:
    """hx-ops accepts QID 100001 in the listed subscription's `ops` group: api:2 (CRITICAL, only in pre-api, backfilled
    and scanned by the sweep, a scan with no deployment of its own) and alpine (del-job) alert nothing.
    """
    summary = run.summary
    assert summary["exceptions"]["applied"] == {
        "docker.io/library/alpine:3.20": ["hx-ops"],
        "ghcr.io/acme/api:2": ["hx-ops"],
    }
    assert summary["notifications"]["email"] == 0 and summary["notifications"]["webhook"] == 0
    (api,) = [image for image in run.inventory["pre-api"]["images"] if image["image"] == "ghcr.io/acme/api:2"]
    assert api["exceptions"]["exception_ids"] == ["hx-ops"]
    # QID 100001 is also nginx:1.25's HIGH finding: accepted where it runs in `ops` (pre-api), not in pre-web.
    assert run.inventory["pre-api"]["effectiveWorstSeverity"] == "LOW"
    assert (run.inventory["pre-web"]["worstSeverity"], run.inventory["pre-web"]["effectiveWorstSeverity"]) == (
        "HIGH",
        "HIGH",
    )
