"""The simulator's request handling, independent of HTTP: ARM routes, managed identity, faults and counters."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devhost.armsim import arm
from devhost.armsim.groups import SimGroup
from devhost.armsim.scenario import Scenario
from devhost.armsim.timeline import GroupTimeline

MSI_PATH = "/msi/token"
MSI_API_VERSION = "2019-08-01"
ADMIN_STATS = "/_sim/stats"
ADMIN_FAULTS = "/_sim/faults"
TOKEN_LIFETIME_S = 24 * 3600  # compared by MSAL with real time, so issued in real time
_OPERATION_RE = re.compile(
    r"^/subscriptions/[^/]+/providers/microsoft\.containerinstance/locations/[^/]+/operations/(?P<op>[^/]+)$",
    re.IGNORECASE,
)


@dataclass
class SimResponse:
    """What to send back: status, JSON body (or None) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    """An injected failure: answers matching requests with `status` for the next `times` matches (None: always)."""

    method: str
    path_pattern: str
    status: int
    times: int | None = 1
    retry_after: int | None = None
    code: str | None = None
    served: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and re.search(self.path_pattern, path, re.IGNORECASE) is not None

    def as_json(self) -> dict[str, Any]:
        return {
            k: getattr(self, k) for k in ("method", "path_pattern", "status", "times", "retry_after", "code", "served")
        }


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
        self._seeded = {}
        for resource in scenario.resources:
            parsed = arm.parse_arm_path(resource.id)
            if parsed is not None and parsed.name:
                self._seeded[parsed.key()] = (resource, parsed)
        self._faults: list[Fault] = []
        self._tokens: set[str] = set()
        self.token_client_ids: list[str | None] = []
        self.counts: Counter[str] = Counter()
        self.by_method: Counter[str] = Counter()
        self.by_group: Counter[str] = Counter()
        self.created = 0
        self.deleted = 0
        self.images_started = 0
        self.timeline = GroupTimeline()  # group lives for the demo's scheduling figures

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
        """Let every group catch up with the clock (upload due results)."""
        with self._lock:
            now = self._now()
            for group in self._groups.values():
                group.catch_up(now, self.sim)

    def stats(self) -> dict[str, Any]:
        self.settle()
        with self._lock:
            return {
                "total": self.counts["arm"],
                "by_method": dict(self.by_method),
                "by_group": dict(self.by_group),
                "token_requests": self.counts["token"],
                "faults_served": self.counts["fault"],
                "groups": {"created": self.created, "deleted": self.deleted, "remaining": len(self._groups)},
                "scans": {"images_started": self.images_started},
                "upload_failures": sum(g.upload_failures for g in self._groups.values()),
            }

    def group_names(self) -> list[str]:
        with self._lock:
            return sorted(g.name for g in self._groups.values())

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
            try:
                raw = json.loads(body or b"{}")
                fault = Fault(
                    method=str(raw.get("method", "*")).upper(),
                    path_pattern=str(raw["path_pattern"]),
                    status=int(raw["status"]),
                    times=None if raw.get("times", 1) is None else int(raw.get("times", 1)),
                    retry_after=None if raw.get("retry_after") is None else int(raw["retry_after"]),
                    code=raw.get("code"),
                )
                re.compile(fault.path_pattern)
            except (ValueError, KeyError, TypeError, re.error) as exc:
                return SimResponse(400, arm.arm_error(400, f"bad fault: {exc}"))
            self.inject(fault)
            return SimResponse(201, fault.as_json())
        return SimResponse(404, arm.arm_error(404, f"no admin route {method} {path}"))

    def _token(self, query: dict[str, str], headers: dict[str, str]) -> SimResponse:
        """App Service managed identity: GET ?api-version=2019-08-01&resource=...; X-IDENTITY-HEADER must match."""
        if headers.get("x-identity-header") != self.identity_header:
            return SimResponse(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER missing or wrong"})
        resource = query.get("resource")
        if query.get("api-version") != MSI_API_VERSION or not resource:
            return SimResponse(400, {"statusCode": 400, "message": "api-version 2019-08-01 and resource are required"})
        token = "sim." + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
            self.counts["token"] += 1
            self.token_client_ids.append(query.get("client_id"))
        expires_on = int(time.time()) + TOKEN_LIFETIME_S
        body = {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": query.get("client_id") or "00000000-0000-0000-0000-000000000000",
        }
        return SimResponse(200, body)

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
        fault = next((f for f in self._faults if f.matches(method, path)), None)
        if fault is not None:
            return self._serve_fault(fault, path)
        now = self._now()
        if operation:
            return self._operation_status(operation["op"], now)
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
        fault.served += 1
        self.counts["fault"] += 1
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.status == 409 and (fault.code in (None, arm.CODE_QUOTA)):
            limit = self.sim.max_container_groups
            return SimResponse(409, arm.quota_error(arm.DEFAULT_LOCATION, limit, limit), headers)
        message = f"Simulated failure {fault.status} for {path}."
        return SimResponse(fault.status, arm.arm_error(fault.status, message, fault.code), headers)

    def _operation_status(self, operation_id: str, now: datetime) -> SimResponse:
        group = self._groups.get(self._operations.get(operation_id, ""))
        if group is None:
            return SimResponse(404, arm.not_found(operation_id))
        group.catch_up(now, self.sim)
        status = "Succeeded" if group.provisioned(now) else "Creating"
        return SimResponse(200, {"id": operation_id, "name": operation_id, "status": status})

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
            if group is None:
                return SimResponse(204)
            shown = group.view(now)
            self.timeline.deleted(group.name, now)
            del self._groups[key]
            self.deleted += 1
            return SimResponse(200, shown)
        return SimResponse(405, arm.arm_error(400, f"{method} is not supported here"))

    def _put_group(self, parsed: arm.ArmPath, group: SimGroup | None, body: bytes, now: datetime) -> SimResponse:
        """201 + Azure-AsyncOperation for a new group; a PUT of an existing name answers its state (no update)."""
        if group is not None:
            return SimResponse(200, group.view(now))
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict) or not spec.get("properties", {}).get("containers"):
                raise ValueError("properties.containers is required")
        except ValueError as exc:
            return SimResponse(400, arm.arm_error(400, f"Invalid container group: {exc}", "InvalidRequestContent"))
        limit = self.sim.max_container_groups
        if len(self._groups) >= limit:
            location = str(spec.get("location") or arm.DEFAULT_LOCATION)
            return SimResponse(409, arm.quota_error(location, limit, len(self._groups)))
        operation_id = str(uuid.uuid4())
        group = SimGroup.create(
            parsed.resource_id(), str(parsed.name), spec, now=now, scenario=self.scenario, operation_id=operation_id
        )
        self._groups[parsed.key()] = group
        self._operations[operation_id] = parsed.key()
        self.created += 1
        self.images_started += len(group.scan_images)
        self.timeline.created(group.name, now, group.body, group.plan)
        op_path = (
            f"/subscriptions/{parsed.subscription}/providers/Microsoft.ContainerInstance/locations/"
            f"{group.location}/operations/{operation_id}?api-version=2023-05-01"
        )
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
