"""Activity answers for `scan_deployment` on the fake backend, in the shapes the real activities return.

The shapes are those of the recorded golden histories (tests/golden/scan_deployment/*.json): resolve_images,
lookup_cache, create_scanner_group / get_scanner_state, collect_results, store_results, send_notifications,
delete_scanner_group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.events import DeploymentEvent, parse_resource_id
from core.options import ScanOptions
from core.scan_input import scan_input_for_event
from devhost.armsim.testing import resource_id
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT
from tests.orchestration.fake_context import START, ScriptedRun

WEB = resource_id("Microsoft.ContainerInstance/containerGroups", "web")
NGINX, REDIS = "docker.io/library/nginx:1.27", "docker.io/library/redis:7"
INSTANCE = "scan-fast-1"


def deployment_input(**options: Any) -> dict[str, Any]:
    event = DeploymentEvent.from_parts(parse_resource_id(WEB), "corr-1", START)
    return scan_input_for_event(event, ScanOptions(resolve_digests=False, **options))


def resolved(*images: str) -> dict[str, Any]:
    items = [{"image": image, "container": f"c-{n}", "init": False} for n, image in enumerate(images)]
    return {"resource_id": WEB, "found": True, "images": items, "rejected": [], "note": None}


def cache_misses(payload: dict[str, Any]) -> dict[str, Any]:
    return {"images": [{"image": i["image"], "digest": None, "hit": False, "result": None} for i in payload["images"]]}


def group_state(state: str, container: str = "Running", exit_code: int | None = None) -> dict[str, Any]:
    return {
        "exists": True,
        "state": state,
        "provisioning_state": "Succeeded",
        "container": {"state": container, "exit_code": exit_code, "restart_count": 0, "detail_status": ""},
    }


RUNNING = group_state("Running")
SUCCEEDED = group_state("Succeeded", "Terminated", 0)


def states(*answers: dict[str, Any]) -> Callable[[Any], dict[str, Any]]:
    """get_scanner_state answers in turn; the last one repeats."""
    remaining = list(answers)

    def answer(_: Any) -> dict[str, Any]:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return answer


def collected(payload: dict[str, Any]) -> dict[str, Any]:
    """collect_results: a clean result per image, or the request's missing status when the group did not end well."""
    clean = payload.get("exit_code") == 0
    return {
        "results": [
            {
                "image": item["image"],
                "status": "completed" if clean else payload["missing_status"],
                "vulnerabilities": {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 0, "LOW": 0},
                "worst_severity": "HIGH" if clean else None,
                "instance_id": payload["instance_id"],
                "reason": None if clean else payload["reason"],
            }
            for item in payload["images"]
        ]
    }


def scan_run(*images: str, **options: Any) -> ScriptedRun:
    """A deployment scan of `images` whose every step succeeds (two polls: Running, then Succeeded)."""
    run = ScriptedRun(ORCHESTRATOR_SCAN_DEPLOYMENT, deployment_input(**options), instance_id=INSTANCE)
    run.on_activity("resolve_images", resolved(*images))
    run.on_activity("lookup_cache", cache_misses)
    run.on_activity("create_scanner_group", lambda p: {"group_name": p["group_name"], **group_state("Pending")})
    run.on_activity("get_scanner_state", states(RUNNING, SUCCEEDED))
    run.on_activity("get_scanner_logs", {"log": "qscanner: still scanning"})
    run.on_activity("collect_results", collected)
    run.on_activity("store_results", {"stored": len(images), "uploads_deleted": 1})
    run.on_activity("send_notifications", {"email": 0, "webhook": 0})
    run.on_activity("delete_scanner_group", lambda p: {"group_name": p["group_name"], "deleted": True})
    return run
