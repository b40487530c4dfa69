"""The non-secret scan options an orchestration receives in its input (orchestrators cannot read the environment)."""

from __future__ import annotations

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
