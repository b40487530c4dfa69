"""Payloads of the results activities (cache lookup, collect, store): pure models the orchestrator can build."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from core.naming import SCANNER_GROUP_NAME_PATTERN, scanner_group_name
from core.options import QScannerMode
from core.report import Digest, ImageRef, ImageResult

MAX_IMAGES = 500

InstanceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")]
ScannerGroupName = Annotated[str, StringConstraints(pattern=SCANNER_GROUP_NAME_PATTERN)]
ScanOutcome = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageToCheck(_Payload):
    """An image of the deployment: canonical reference and, when resolved, its digest."""

    image: ImageRef
    digest: Digest | None = None


class CacheLookupRequest(_Payload):
    """Input of `lookup_cache`; `now` is the orchestration's `current_utc_datetime` (deterministic, testable)."""

    images: list[ImageToCheck] = Field(max_length=MAX_IMAGES)
    cache_hours: int = Field(ge=0)
    now: AwareDatetime


class CacheLookup(_Payload):
    """One image's cache answer: a hit carries the cached result with status `cached`."""

    image: str
    digest: str | None = None
    hit: bool
    result: ImageResult | None = None


class CacheLookupResponse(_Payload):
    """Output of `lookup_cache`, in the order of the request's images."""

    images: list[CacheLookup]


class CollectRequest(_Payload):
    """Input of `collect_results`: the images of one scanner group in SCAN_IMAGES order (upload index = position).

    `scanner_group` names the group whose own uploads container is read (default: the instance's first group),
    `prefix` is the group's RESULTS_PREFIX (default: the instance id). An image without a status.json becomes
    `missing_status` (the orchestrator knows whether the group timed out or failed), with `exit_code` and `reason`
    from the container's state. `now` stamps results whose scanner times are missing or implausible. `mode` is the
    QSCANNER_MODE of the scan (from ScanOptions, never from the untrusted status.json); `expect_report` is accepted
    from inputs of older versions and ignored (the mode decides whether a report is required).
    """

    instance_id: InstanceId
    images: list[ImageToCheck] = Field(max_length=MAX_IMAGES)
    scanner_group: ScannerGroupName | None = None
    prefix: InstanceId | None = None
    missing_status: Literal["failed", "timed_out"] = "failed"
    mode: QScannerMode = "get-report"
    expect_report: bool = True
    exit_code: int | None = None
    reason: str | None = Field(default=None, max_length=2000)
    now: AwareDatetime | None = None
    only: list[int] | None = Field(default=None, max_length=MAX_IMAGES)
    """Collect only these upload indexes (a scan queue batch collects each image when its status.json arrives)."""
    skip_missing: bool = False
    """Leave out an image whose status.json is not there yet (still scanning) instead of giving it `missing_status`."""

    def uploads_group(self) -> str:
        """The scanner group whose uploads container holds these images' uploads."""
        return self.scanner_group or scanner_group_name(self.instance_id)


class ImageResults(_Payload):
    """Output of `collect_results`: small per-image results (no report bodies), in request order."""

    results: list[ImageResult]


class StoreRequest(_Payload):
    """Input of `store_results`: the scan record of one orchestration and its per-image results.

    `scanner_groups`: the groups whose uploads containers are deleted once the record is stored (collect has
    already copied what is kept to the reports container).
    """

    instance_id: InstanceId
    event: dict[str, Any] | None = None
    status: ScanOutcome = "completed"
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    results: list[ImageResult] = Field(max_length=MAX_IMAGES)
    scanner_groups: list[ScannerGroupName] = Field(default_factory=list, max_length=MAX_IMAGES)
    rescan: bool = False
    """The record of a scheduled rescan (`ScanInput.rescan`); sent only when true (metrics count rescans)."""


class LatestRequest(_Payload):
    """Input of `read_latest_results`: canonical image references."""

    images: list[ImageRef] = Field(max_length=MAX_IMAGES)


class LatestResponse(_Payload):
    """Output of `read_latest_results`: per requested image its latest stored result (any outcome), or None."""

    results: list[ImageResult | None]


class ScanRecord(BaseModel):
    """A stored scan, as the HTTP API returns it."""

    instance_id: str
    status: str
    event: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    results: list[ImageResult]
