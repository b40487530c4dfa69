"""The simulator's Azure Resource Graph: `POST /providers/Microsoft.ResourceGraph/resources` over the scenario's
workloads, with Resource Graph's paging and throttling, and the workloads' disappearance (`deleted_at_s`, deletes).

Sources (Microsoft Learn):
- REST "Resources - Resources" (api-versions 2021-03-01, the SDK's default, and 2022-10-01): body `subscriptions`,
  `query`, `options` (`$top`, `$skip`, `$skipToken`, `resultFormat`); answer `totalRecords`, `count`, `data`,
  `facets`, `resultTruncated`, `$skipToken` (only when more rows follow).
- "Working with large Azure resource data sets": at most 1,000 rows per page.
- "Guidance for throttled requests in Azure Resource Graph": `x-ms-user-quota-remaining`,
  `x-ms-user-quota-resets-after` (hh:mm:ss) on every answer; by default 15 queries per 5-second window per user;
  429 beyond it.
Only the query shape the app sends is understood (`resources | where type in~ (...) | project ... | order by id
asc`); any other query is refused with 400 `InvalidQuery` rather than answered by a guess.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta
from typing import Any

from devhost.armsim import arm
from devhost.armsim.faults import SimResponse
from devhost.armsim.scenario import DeployedResource

QUERY_PATH = "/providers/microsoft.resourcegraph/resources"
API_VERSIONS = frozenset({"2021-03-01", "2022-10-01", "2024-04-01"})
MAX_TOP = 1000
DEFAULT_TOP = 100
QUOTA_WINDOW = timedelta(seconds=5)
DEFAULT_QUOTA = 15
KNOWN_TYPES = {
    "microsoft.containerinstance/containergroups",
    "microsoft.app/containerapps",
    "microsoft.app/jobs",
}
OPTIONS = frozenset({"$top", "$skip", "$skipToken", "resultFormat", "allowPartialScopes"})
KNOWN_COLUMNS = ("id", "type", "location", "subscriptionId", "resourceGroup", "properties", "name")
_QUERY = re.compile(
    r"resources\s*\|\s*where\s+type\s+in~\s*\((?P<types>[^)]*)\)"
    r"\s*\|\s*project\s+(?P<columns>[A-Za-z, ]+?)"
    r"\s*\|\s*order\s+by\s+id\s+asc\s*",
    re.IGNORECASE,
)


def is_query_path(method: str, path: str) -> bool:
    return method == "POST" and path.rstrip("/").lower() == QUERY_PATH


def _bad_request(message: str, code: str = "BadRequest") -> SimResponse:
    return SimResponse(400, arm.arm_error(400, message, code))


def parse_query(query: object) -> tuple[set[str], list[str]] | str:
    """(types, columns) of the one query shape understood, or the reason it is refused."""
    if not isinstance(query, str):
        return "query must be a string"
    match = _QUERY.fullmatch(query.strip())
    if match is None:
        return "query shape not understood by the simulator"
    types = [t.strip() for t in match["types"].split(",")]
    names: set[str] = set()
    for quoted in types:
        if len(quoted) < 2 or quoted[0] != quoted[-1] or quoted[0] not in "'\"":
            return f"type {quoted} is not a quoted string"
        name = quoted[1:-1].lower()
        if name not in KNOWN_TYPES:
            return f"type {name} is not served by the simulator"
        names.add(name)
    columns = [c.strip() for c in match["columns"].split(",")]
    if any(c not in KNOWN_COLUMNS for c in columns) or len(set(columns)) != len(columns):
        return f"project columns must be distinct names among {', '.join(KNOWN_COLUMNS)}"
    return names, columns


def _token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([offset, fingerprint]).encode()).decode()


def _offset(token: str, fingerprint: str) -> int | None:
    try:
        offset, seen = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        return None
    return offset if isinstance(offset, int) and offset >= 0 and seen == fingerprint else None


def _hms(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds() + 0.999))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ResourceGraph:
    """Queries over the scenario's workloads (the simulator's `_seeded` map, shared), per-token quota windows."""

    def __init__(self, seeded: dict[str, Any], started: datetime, quota: int = DEFAULT_QUOTA) -> None:
        self._seeded = seeded
        self._started = started
        self.quota = quota
        self._windows: dict[str, tuple[datetime, int]] = {}  # token -> (window start, queries in it)
        self.queries = 0
        self.throttled = 0
        self.retired: list[str] = []

    # ---- workloads that disappear ------------------------------------------------------------------------------
    def retire_due(self, now: datetime) -> None:
        """Forget the workloads whose `deleted_at_s` has come (GET answers 404, queries no longer list them)."""
        for key, (resource, _) in list(self._seeded.items()):
            deleted_at = getattr(resource, "deleted_at_s", None)
            if deleted_at is not None and self._started + timedelta(seconds=deleted_at) <= now:
                self.retire(key)

    def retire(self, resource_id: str) -> bool:
        """Delete a workload now (the demo does so when it delivers a delete of it)."""
        parsed = arm.parse_arm_path(resource_id)
        key = parsed.key() if parsed is not None else resource_id.lower()
        if self._seeded.pop(key, None) is None:
            return False
        self.retired.append(key)
        return True

    # ---- the query endpoint ------------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        return {"queries": self.queries, "throttled": self.throttled}

    def handle(
        self, query: dict[str, str], headers: dict[str, str], tokens: set[str], body: bytes, now: datetime
    ) -> SimResponse:
        """A query with a token the simulator issued (401 otherwise), counted against that token's quota window."""
        auth = headers.get("authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        if token not in tokens:
            return SimResponse(401, arm.arm_error(401, "The access token is missing or was not issued by this ARM."))
        if query.get("api-version") not in API_VERSIONS:
            return _bad_request(
                f"The api-version '{query.get('api-version')}' is invalid for Microsoft.ResourceGraph",
                "InvalidApiVersionParameter",
            )
        start, used = self._windows.get(token, (now, 0))
        if now >= start + QUOTA_WINDOW:
            start, used = now, 0
        resets = _hms(start + QUOTA_WINDOW - now)
        if used >= self.quota:
            self.throttled += 1
            headers = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": resets}
            error = arm.arm_error(429, "Please retry after the quota resets.", "RateLimiting")
            return SimResponse(429, error, headers)
        self._windows[token] = (start, used + 1)
        self.queries += 1
        headers = {"x-ms-user-quota-remaining": str(self.quota - used - 1), "x-ms-user-quota-resets-after": resets}
        answer = self._answer(body)
        return SimResponse(answer.status, answer.body, {**headers, **(answer.headers or {})})

    def _answer(self, body: bytes) -> SimResponse:
        try:
            request = json.loads(body or b"null")
        except ValueError:
            return _bad_request("The request body is not JSON.")
        if not isinstance(request, dict) or set(request) - {"subscriptions", "query", "options"}:
            return _bad_request("The request body must be {subscriptions, query, options}.")
        subscriptions = request.get("subscriptions")
        if (
            not isinstance(subscriptions, list)
            or not subscriptions
            or not all(isinstance(s, str) for s in subscriptions)
        ):
            return _bad_request("subscriptions must be a non-empty list (tenant scope is not simulated).")
        parsed = parse_query(request.get("query"))
        if isinstance(parsed, str):
            return _bad_request(f"Query is invalid: {parsed}", "InvalidQuery")
        types, columns = parsed
        options = request.get("options") or {}
        if not isinstance(options, dict) or set(options) - OPTIONS:
            return _bad_request(f"options may hold only {', '.join(sorted(OPTIONS))}.")
        if options.get("allowPartialScopes", False) is not False:
            return _bad_request("allowPartialScopes is not simulated (it applies to tenant-scope queries).")
        if options.get("resultFormat", "objectArray") != "objectArray":
            return _bad_request("only resultFormat objectArray is simulated")
        top = options.get("$top", DEFAULT_TOP)
        skip = options.get("$skip", 0)
        if not isinstance(top, int) or not 1 <= top <= MAX_TOP:
            return _bad_request(f"$top must be between 1 and {MAX_TOP}.")
        if not isinstance(skip, int) or skip < 0:
            return _bad_request("$skip must be a non-negative integer.")
        fingerprint = json.dumps([sorted(s.lower() for s in subscriptions), request["query"]])
        offset = skip
        if options.get("$skipToken") is not None:
            token_offset = _offset(str(options["$skipToken"]), fingerprint)
            if token_offset is None:
                return _bad_request("The $skipToken is invalid for this query.")
            offset = token_offset
        wanted = {s.lower() for s in subscriptions}
        rows = sorted(
            (self._row(resource, path, columns) for resource, path in self._seeded.values()),
            key=lambda row: str(row.get("id", "")).lower(),
        )
        rows = [r for r in rows if str(r["_type"]).lower() in types and str(r["_sub"]).lower() in wanted]
        page = rows[offset : offset + top]
        data = [{k: v for k, v in r.items() if not k.startswith("_")} for r in page]
        answer: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(data),
            "data": data,
            "facets": [],
            "resultTruncated": "false",
        }
        if offset + top < len(rows):
            answer["$skipToken"] = _token(offset + top, fingerprint)
        return SimResponse(200, answer)

    @staticmethod
    def _row(resource: DeployedResource, path: arm.ArmPath, columns: list[str]) -> dict[str, Any]:
        document = arm.seeded_resource_json(resource, path)
        full = {
            "id": document["id"],
            "name": document["name"],
            "type": str(document["type"]).lower(),  # Resource Graph lower-cases types
            "location": resource.location,
            "subscriptionId": path.subscription.lower(),
            "resourceGroup": path.resource_group.lower(),  # and resource group names
            "properties": document["properties"],
        }
        return {**{c: full[c] for c in columns}, "_type": full["type"], "_sub": full["subscriptionId"]}
