"""Injected failures of the ARM simulator (tests and the admin surface) and the response type every route returns."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from devhost.armsim import arm, limits


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
    message: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and re.search(self.path_pattern, path, re.IGNORECASE) is not None

    def spent(self) -> bool:
        """Count one use; True when the fault has no uses left."""
        self.served += 1
        if self.times is None:
            return False
        self.times -= 1
        return self.times <= 0

    def as_json(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("method", "path_pattern", "status", "times", "retry_after", "code", "served", "message")
        }


def fault_from_json(body: bytes) -> tuple[Fault | None, str | None]:
    """The fault a POST to the admin surface describes, or (None, the problem)."""
    try:
        raw = json.loads(body or b"{}")
        fault = Fault(
            method=str(raw.get("method", "*")).upper(),
            path_pattern=str(raw["path_pattern"]),
            status=int(raw["status"]),
            times=None if raw.get("times", 1) is None else int(raw.get("times", 1)),
            retry_after=None if raw.get("retry_after") is None else int(raw["retry_after"]),
            code=raw.get("code"),
            message=None if raw.get("message") is None else str(raw["message"]),
        )
        re.compile(fault.path_pattern)
    except (ValueError, KeyError, TypeError, re.error) as exc:
        return None, str(exc)
    return fault, None


def fault_response(fault: Fault, path: str, max_cores: float) -> SimResponse:
    """The answer of an injected fault: a quota refusal (code ContainerGroupQuotaReached, or a bare 409) takes ACI's
    message shape with StandardCores used up; anything else ARM's error envelope with `code` (or the status's).
    """
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    if fault.code == arm.CODE_QUOTA or (fault.status == 409 and fault.code is None):
        body = limits.quota_error(arm.DEFAULT_LOCATION, limits.QUOTA_CORES, max_cores, max_cores, 1)
        return SimResponse(fault.status, body, headers)
    message = fault.message or f"Simulated failure {fault.status} for {path}."
    return SimResponse(fault.status, arm.arm_error(fault.status, message, fault.code), headers)
