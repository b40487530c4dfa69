"""The non-secret scan options an orchestration receives in its input (orchestrators cannot read the environment)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]
QScannerMode = Literal["get-report", "scan-only", "inventory-only", "evaluate-policy"]

DEFAULT_SCAN_TIMEOUT_SECONDS = 1800
DEFAULT_SCAN_CACHE_HOURS = 24
DEFAULT_POLL_INITIAL_SECONDS = 20
DEFAULT_POLL_MAX_SECONDS = 120
DEFAULT_MAX_IMAGES_PER_SCANNER_GROUP = 2
DEFAULT_MAX_CONCURRENT_SCANNER_GROUPS = 20
DEFAULT_SCANNER_CPU = 1.0
DEFAULT_SCAN_QUEUE_MAX_HOURS = 24
ACI_STANDARD_CORES = 100
ACI_CREATES_PER_5_MINUTES = 100
ACI_CREATES_PER_HOUR = 300
"""ACI's default regional limits (container-instances-resource-and-quota-limits): the quota gate's defaults."""


class ScanOptions(BaseModel):
    """What `scan_deployment` needs to decide without I/O; built by `Settings.scan_options()`, JSON-able.

    Every field has a default so that an input written by an older starter still validates.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    scan_timeout_seconds: int = Field(default=DEFAULT_SCAN_TIMEOUT_SECONDS, ge=60)
    scan_cache_hours: int = Field(default=DEFAULT_SCAN_CACHE_HOURS, ge=0)
    notify_severity_threshold: Severity = "HIGH"
    poll_initial_seconds: int = Field(default=DEFAULT_POLL_INITIAL_SECONDS, ge=1)
    poll_max_seconds: int = Field(default=DEFAULT_POLL_MAX_SECONDS, ge=1)
    max_images_per_scanner_group: int = Field(default=DEFAULT_MAX_IMAGES_PER_SCANNER_GROUP, ge=1)
    max_concurrent_scanner_groups: int = Field(default=DEFAULT_MAX_CONCURRENT_SCANNER_GROUPS, ge=1)
    qscanner_mode: QScannerMode = "get-report"
    scan_types: tuple[str, ...] = ("os", "sca", "secret")
    resolve_digests: bool = True
    scanner_cpu: float = Field(default=DEFAULT_SCANNER_CPU, gt=0)
    aci_max_cores: float = Field(default=ACI_STANDARD_CORES, gt=0)
    aci_max_creates_per_5_minutes: int = Field(default=ACI_CREATES_PER_5_MINUTES, ge=1)
    aci_max_creates_per_hour: int = Field(default=ACI_CREATES_PER_HOUR, ge=1)
    scan_queue_max_hours: int = Field(default=DEFAULT_SCAN_QUEUE_MAX_HOURS, ge=1)

    def max_scanner_groups(self) -> int:
        """Groups one scan may plan: MAX_CONCURRENT_SCANNER_GROUPS, fewer when their cores would exceed the budget."""
        by_cores = math.floor(self.aci_max_cores / self.scanner_cpu + 1e-9)  # 0.5 // 0.1 is 4.0 in floating point
        return max(1, min(self.max_concurrent_scanner_groups, by_cores))
