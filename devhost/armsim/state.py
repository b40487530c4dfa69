"""The simulator's request handling, independent of HTTP: ARM routes, managed identity, faults and counters."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from devhost.armsim import arm, identity, limits, scanner_run
from devhost.armsim.blob_events import BlobEvents
from devhost.armsim.faults import Fault, SimResponse, fault_from_json, fault_response
from devhost.armsim.groups import CAPACITY_EVENT, SimGroup
from devhost.armsim.resource_graph import ResourceGraph, is_query_path
from devhost.armsim.scenario import Scenario
from devhost.armsim.timeline import GroupTimeline

__all__ = ["MSI_PATH", "Fault", "SimResponse", "SimState"]

MSI_PATH = identity.MSI_PATH
ADMIN_STATS = "/_sim/stats"
ADMIN_FAULTS = "/_sim/faults"
_OPERATION_RE = re.compile(
    r"^/subscriptions/[^/]+/providers/microsoft\.containerinstance/locations/[^/]+/"
    r"(?P<kind>operations|operationResults)/(?P<op>[^/]+)$",
    re.IGNORECASE,
)
ACI_API_VERSION = "2023-05-01"
"""The api-version of the operation URLs the simulator hands out (the one the app's SDK pin sends)."""


class SimState:
    """All simulated resources and counters, guarded by one lock (the HTTP server is threaded)."""

    def __init__(self, scenario: Scenario, now: Callable[[], datetime], identity_header: str) -> None:
        self.scenario = scenario
        self.sim = scenario.sim_settings()
        self._now = now
        self.identity_header = identity_header
        self._lock = threading.RLock()
        self._groups: dict[str, SimGroup] = {}
        self._operations: dict[str, str] = {}  # operation id -> group key
        self._finished: set[str] = set()  # delete operations whose group is gone
        # Times of successful creates and of accepted deletes, per (subscription, region): ACI's rate limits
        self._creates: dict[tuple[str, str], list[datetime]] = {}
        self._deletes: dict[tuple[str, str], list[datetime]] = {}
        self._capacity_failures_left = self.sim.capacity_failures
        self._seeded = {}
        for resource in scenario.resources:
            parsed = arm.parse_arm_path(resource.id)
            if parsed is not None and parsed.name:
                self._seeded[parsed.key()] = (resource, parsed)
        self.resource_graph = ResourceGraph(self._seeded, now(), self.sim.resource_graph_quota)
        self._faults: list[Fault] = []
        self._tokens: set[str] = set()
        self.token_client_ids: list[str | None] = []
        self.counts: Counter[str] = Counter()
        self.by_method: Counter[str] = Counter()
        self.by_group: Counter[str] = Counter()
        self.created = 0
        self.deleted = 0
        self.refused: Counter[str] = Counter()  # quota refusals by quota name
        self.peak_groups = 0
        self.peak_cores = 0.0
        self.images_started = 0
        self.scans_of: Counter[str] = Counter()  # scans started per canonical image (a scenario's successive results)
        self.timeline = GroupTimeline()  # group lives for the demo's scheduling figures
        self.blob_events = BlobEvents(enabled=self.sim.blob_events)  # the storage system topic (sink set by the demo)

    # ---- public API -------------------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_json() for f in self._faults]

    def settle(self) -> None:
        """Let every group catch up with the clock (upload due results, finish due deletions)."""
        with self._lock:
            now = self._now()
            self._purge(now)
            for group in self._groups.values():
                group.catch_up(now, self.sim)

    def fail_for_capacity(self, count: int = 1) -> None:
        """Make the next `count` new groups fail late for lack of capacity (as ARMSIM_CAPACITY_FAILURES does)."""
        with self._lock:
            self._capacity_failures_left += count

    def _purge(self, now: datetime) -> None:
        """Drop the groups whose deletion has completed (their cores no longer count)."""
        for key in [k for k, g in self._groups.items() if g.gone_at is not None and g.gone_at <= now]:
            group = self._groups.pop(key)
            if group.delete_operation_id:
                self._finished.add(group.delete_operation_id)

    def usage(self, subscription: str, location: str) -> tuple[int, float]:
        """Groups and cores of `subscription` in `location`, deleting groups included."""
        prefix = f"/subscriptions/{subscription}/".lower()
        region = limits.region_key(location)
        mine = [g for k, g in self._groups.items() if k.startswith(prefix) and limits.region_key(g.location) == region]
        return len(mine), sum(limits.group_cores(g.body) for g in mine)

    def stats(self) -> dict[str, Any]:
        self.settle()
        with self._lock:
            return {
                "total": self.counts["arm"],
                "by_method": dict(self.by_method),
                "by_group": dict(self.by_group),
                "token_requests": self.counts["token"],
                "faults_served": self.counts["fault"],
                "groups": {
                    "created": self.created,
                    "deleted": self.deleted,
                    "remaining": sum(1 for g in self._groups.values() if not g.deleting),
                },
                "usage": {
                    "groups": len(self._groups),
                    "cores": sum(limits.group_cores(g.body) for g in self._groups.values()),
                    "peak_groups": self.peak_groups,
                    "peak_cores": self.peak_cores,
                },
                "refused": dict(self.refused),
                "blob_events": self.blob_events.stats(),
                "scans": {"images_started": self.images_started},
                "resource_graph": self.resource_graph.stats(),
                "upload_failures": sum(g.upload_failures for g in self._groups.values()),
            }

    def group_names(self) -> list[str]:
        """The groups there and not being deleted (a DELETE was not accepted for them)."""
        with self._lock:
            return sorted(g.name for g in self._groups.values() if not g.deleting)

    # ---- request entry ----------------------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> SimResponse:
        method = method.upper()
        if path.startswith("/_sim/"):
            return self._admin(method, path, body)
        if path.rstrip("/") == MSI_PATH:
            return self._token(query, headers)
        with self._lock:
            self.resource_graph.retire_due(self._now())
            if is_query_path(method, path):
                return self.resource_graph.handle(query, headers, self._tokens, body, self._now())
            return self._arm(method, path, query, headers, body)

    # ---- admin and identity -----------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: bytes) -> SimResponse:
        if path == ADMIN_STATS and method == "GET":
            return SimResponse(200, self.stats())
        if path == ADMIN_FAULTS and method == "GET":
            return SimResponse(200, {"faults": self.faults()})
        if path == ADMIN_FAULTS and method == "DELETE":
            self.clear_faults()
            return SimResponse(204)
        if path == ADMIN_FAULTS and method == "POST":
            fault, problem = fault_from_json(body)
            if fault is None:
                return SimResponse(400, arm.arm_error(400, f"bad fault: {problem}"))
            self.inject(fault)
            return SimResponse(201, fault.as_json())
        return SimResponse(404, arm.arm_error(404, f"no admin route {method} {path}"))

    def _token(self, query: dict[str, str], headers: dict[str, str]) -> SimResponse:
        """App Service managed identity (devhost/armsim/identity.py); the tokens issued are remembered."""
        answer, token = identity.token_answer(query, headers, self.identity_header)
        if token is not None:
            with self._lock:
                self._tokens.add(token)
                self.counts["token"] += 1
                self.token_client_ids.append(query.get("client_id"))
        return answer

    # ---- ARM --------------------------------------------------------------------------------------------------
    def _arm(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> SimResponse:
        self.counts["arm"] += 1
        self.by_method[method] += 1
        parsed = arm.parse_arm_path(path)
        operation = _OPERATION_RE.match(path.rstrip("/"))
        group_key = parsed.key() if parsed and parsed.kind == (arm.PROVIDER_ACI, arm.TYPE_CONTAINER_GROUPS) else None
        if operation:
            group_key = self._operations.get(operation["op"])
        if group_key and parsed and parsed.name:
            self.by_group[parsed.name.lower()] += 1
        elif group_key and group_key in self._groups:
            self.by_group[self._groups[group_key].name] += 1
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self._tokens:
            return SimResponse(401, arm.arm_error(401, "The access token is missing or was not issued by this ARM."))
        provider = arm.PROVIDER_ACI if operation else (parsed.provider if parsed else None)
        refused = limits.api_version_error(provider, query.get("api-version")) if provider else None
        if refused is not None:
            return SimResponse(400, refused)
        fault = next((f for f in self._faults if f.matches(method, path)), None)
        if fault is not None:
            return self._serve_fault(fault, path)
        now = self._now()
        self._purge(now)
        if operation:
            return self._operation_status(operation["op"], operation["kind"].lower() == "operationresults", now)
        if parsed is None:
            return SimResponse(404, arm.not_found(path))
        if parsed.kind == (arm.PROVIDER_ACI, arm.TYPE_CONTAINER_GROUPS):
            return self._container_groups(method, parsed, query, body, now)
        if parsed.kind in ((arm.PROVIDER_APP, arm.TYPE_CONTAINER_APPS), (arm.PROVIDER_APP, arm.TYPE_JOBS)):
            seeded = self._seeded.get(parsed.key()) if parsed.name and not parsed.rest and method == "GET" else None
            if seeded is None:
                return SimResponse(404, arm.not_found(parsed.resource_id()))
            return SimResponse(200, arm.seeded_resource_json(seeded[0], parsed))
        return SimResponse(404, arm.not_found(path))

    def _serve_fault(self, fault: Fault, path: str) -> SimResponse:
        self.counts["fault"] += 1
        if fault.spent():
            self._faults.remove(fault)
        return fault_response(fault, path, self.sim.max_cores)

    def _operation_status(self, operation_id: str, location_poll: bool, now: datetime) -> SimResponse:
        """Azure-AsyncOperation (`operations/<id>`: a status body) or Location (`operationResults/<id>`: 202 while
        running, 204 once a delete is done), per ARM's long-running operation contract.
        """
        body: dict[str, Any] = {"id": operation_id, "name": operation_id}
        if operation_id in self._finished:
            return SimResponse(204) if location_poll else SimResponse(200, body | {"status": "Succeeded"})
        group = self._groups.get(self._operations.get(operation_id, ""))
        if group is None:
            return SimResponse(404, arm.not_found(operation_id))
        group.catch_up(now, self.sim)
        if group.delete_operation_id == operation_id:
            headers = {"Location": self._operation_path(group, operation_id, "operationResults")}
            return (
                SimResponse(202, None, headers) if location_poll else SimResponse(200, body | {"status": "InProgress"})
            )
        if group.failed_for_capacity(now):
            error = {"code": CAPACITY_EVENT, "message": group.capacity_message()}
            return SimResponse(200, body | {"status": "Failed", "error": error})
        status = "Succeeded" if group.provisioned(now) else "Creating"
        return SimResponse(200, body | {"status": status})

    @staticmethod
    def _operation_path(group: SimGroup, operation_id: str, kind: str = "operations") -> str:
        subscription = group.path_id.split("/")[2]
        return (
            f"/subscriptions/{subscription}/providers/Microsoft.ContainerInstance/locations/{group.location}/"
            f"{kind}/{operation_id}?api-version={ACI_API_VERSION}"
        )

    def _container_groups(
        self, method: str, parsed: arm.ArmPath, query: dict[str, str], body: bytes, now: datetime
    ) -> SimResponse:
        if parsed.name is None:
            if method != "GET":
                return SimResponse(405, arm.arm_error(400, f"{method} is not supported on a collection"))
            return SimResponse(200, {"value": self._list(parsed, now)})
        key = parsed.key()
        group = self._groups.get(key)
        if group is not None:
            group.catch_up(now, self.sim)
        logs = re.fullmatch(r"/containers/([^/]+)/logs", parsed.rest)
        if logs and method == "GET":
            return self._logs(group, parsed, logs.group(1), query, now)
        if parsed.rest:
            return SimResponse(404, arm.not_found(parsed.resource_id() + parsed.rest))
        if method == "GET":
            if group is not None:
                return SimResponse(200, group.view(now))
            seeded = self._seeded.get(key)
            if seeded is not None:
                return SimResponse(200, arm.seeded_resource_json(seeded[0], parsed))
            return SimResponse(404, arm.not_found(parsed.resource_id()))
        if method == "PUT":
            return self._put_group(parsed, group, body, now)
        if method == "DELETE":
            return self._delete_group(key, group, now)
        return SimResponse(405, arm.arm_error(400, f"{method} is not supported here"))

    def _delete_group(self, key: str, group: SimGroup | None, now: datetime) -> SimResponse:
        """A long-running DELETE: 202 with Location and Azure-AsyncOperation, the group gone `delete_delay_s` later
        (its cores count until then); 204 when there is no such group (containerinstance 2023-05-01 spec).
        """
        if group is None:
            return SimResponse(204)
        if group.delete_operation_id is None:
            rates = (
                (limits.QUOTA_DELETES_5_MINUTES, self.sim.max_deletes_per_5_minutes),
                (limits.QUOTA_DELETES_HOUR, self.sim.max_deletes_per_hour),
            )
            scope = limits.scope(group.path_id, group.location)
            refusal = limits.rate_refusal(group.location, self._deletes.get(scope, []), now, rates)
            if refusal is not None:
                self.refused[refusal["error"]["message"].split("'")[3]] += 1
                return SimResponse(400, refusal)
            self._deletes[scope] = limits.recorded(self._deletes.get(scope, []), now)
            group.delete_operation_id = str(uuid.uuid4())
            group.gone_at = now + timedelta(seconds=self.sim.delete_delay_s)
            self.timeline.deleted(group.name, group.gone_at)  # its cores count until the deletion completes
            self._operations[group.delete_operation_id] = key
            self.deleted += 1
        operation_id = group.delete_operation_id
        headers = {
            "Location": self._operation_path(group, operation_id, "operationResults"),
            "Azure-AsyncOperation": self._operation_path(group, operation_id),
        }
        return SimResponse(202, None, headers)

    def _put_group(self, parsed: arm.ArmPath, group: SimGroup | None, body: bytes, now: datetime) -> SimResponse:
        """201 + Azure-AsyncOperation for a new group within ACI's limits; a PUT of an existing name answers its
        state (no update); a group still deleting is a conflict.
        """
        if group is not None and group.deleting:
            message = f"The container group '{group.name}' is being deleted; try again when the deletion completes."
            return SimResponse(409, arm.arm_error(409, message, "Conflict"))
        if group is not None:
            return SimResponse(200, group.view(now))
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict) or not spec.get("properties", {}).get("containers"):
                raise ValueError("properties.containers is required")
        except ValueError as exc:
            return SimResponse(400, arm.arm_error(400, f"Invalid container group: {exc}", "InvalidRequestContent"))
        containers = len(spec["properties"]["containers"])
        too_many = limits.too_many_containers(str(parsed.name), containers, self.sim.max_containers_per_group)
        if too_many is not None:
            return SimResponse(400, too_many)
        location = str(spec.get("location") or arm.DEFAULT_LOCATION)
        groups_used, cores_used = self.usage(parsed.subscription, location)
        refusal = limits.refusal(
            location=location,
            cores=limits.group_cores(spec),
            groups_in_region=groups_used,
            cores_in_region=cores_used,
            creates=self._creates.get(limits.scope(parsed.resource_id(), location), []),
            now=now,
            limits=self.sim,
        )
        if refusal is not None:
            self.refused[refusal["error"]["message"].split("'")[3]] += 1
            return SimResponse(400, refusal)
        operation_id = str(uuid.uuid4())
        group = SimGroup.create(
            parsed.resource_id(),
            str(parsed.name),
            spec,
            now=now,
            scenario=self.scenario,
            operation_id=operation_id,
            scans_before=self.scans_of,
        )
        if self._capacity_failures_left > 0:
            self._capacity_failures_left -= 1
            group.capacity_failure = True
        elif group.plan is not None:  # the images whose scan starts: their next scan takes their next result
            self.scans_of.update(scanner_run.canonical_ref(o.image) for o in group.plan.images)
        self._groups[parsed.key()] = group
        self._operations[operation_id] = parsed.key()
        self.blob_events.attach(group, self.settle)
        scope = limits.scope(parsed.resource_id(), location)
        self._creates[scope] = limits.recorded(self._creates.get(scope, []), now)
        self.peak_groups = max(self.peak_groups, groups_used + 1)
        self.peak_cores = max(self.peak_cores, cores_used + limits.group_cores(spec))
        self.created += 1
        self.images_started += 0 if group.capacity_failure else len(group.scan_images)
        self.timeline.created(group.name, now, group.body, group.plan)
        op_path = self._operation_path(group, operation_id)
        return SimResponse(201, group.view(now, provisioning_state="Pending"), {"Azure-AsyncOperation": op_path})

    def _list(self, parsed: arm.ArmPath, now: datetime) -> list[dict[str, Any]]:
        prefix = f"/subscriptions/{parsed.subscription}/resourcegroups/{parsed.resource_group}/".lower()
        items: list[dict[str, Any]] = []
        for key, group in sorted(self._groups.items()):
            if key.startswith(prefix):
                group.catch_up(now, self.sim)
                items.append(group.view(now))
        return items

    def _logs(
        self, group: SimGroup | None, parsed: arm.ArmPath, container: str, query: dict[str, str], now: datetime
    ) -> SimResponse:
        names = [c.get("name") for c in (group.body.get("properties", {}).get("containers") or [])] if group else []
        if group is None or container not in names:
            return SimResponse(404, arm.not_found(f"{parsed.resource_id()}/containers/{container}"))
        tail = int(query["tail"]) if query.get("tail", "").lstrip("-").isdigit() else None
        return SimResponse(200, {"content": group.log_text(now, self.sim, tail)})
