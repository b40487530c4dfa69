"""The scenario model the ARM simulator runs: deployed resources, per-image scan behaviour and Event Hub messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from core.images import InvalidImageRef, parse_image_ref
from core.resource_ids import InvalidResourceId, parse_resource_id

ScanResult = Literal["ok", "deny", "audit", "error", "hang"]
DEFAULT_SCAN_KEY = "default"
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
SCENARIO_DIR_CONTEXT = "scenario_dir"
MAX_SCAN_FILE_BYTES = 32 * 1024 * 1024  # what scan.sh uploads at most (the app's report limit)
MAX_SUCCESSIVE_RESULTS = 20


class ScanFiles(BaseModel):
    """Files used verbatim as the scanner's output, relative to the scenario file (docs/demo.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sarif: str | None = Field(default=None, description="QScanner's <image_id>-Report.sarif.json")
    json_report: str | None = Field(default=None, alias="json", description="<image_id>-Report.json")
    scanresult: str | None = Field(default=None, description="<image_id>-ScanResult.json (inventory)")
    log: str | None = Field(default=None, description="QScanner's log (scan.log)")

    def named(self) -> dict[str, str]:
        """Kind (sarif, json, scanresult, log) -> relative path, for the files given."""
        kinds = {"sarif": self.sarif, "json": self.json_report, "scanresult": self.scanresult, "log": self.log}
        return {kind: path for kind, path in kinds.items() if path is not None}


def read_scan_file(base: Path, relative: str) -> bytes:
    """A scenario's file: relative, inside the scenario's directory, a regular file of bounded size."""
    if not relative.strip() or Path(relative).is_absolute():
        raise ValueError(f"file {relative!r} must be a path relative to the scenario file")
    root = base.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"file {relative!r} is outside the scenario's directory")
    if not path.is_file():
        raise ValueError(f"file {relative!r} does not exist (looked for {path})")
    size = path.stat().st_size
    if size > MAX_SCAN_FILE_BYTES:
        raise ValueError(f"file {relative!r} is {size} bytes, more than {MAX_SCAN_FILE_BYTES}")
    return path.read_bytes()


class ScanBehaviour(BaseModel):
    """How the fake scanner treats one image: ok/deny/audit write a report; error exits `exit_code`; hang never ends.

    `results` instead lists successive behaviours for the same image: its first scan uses the first, its second the
    second, and so on, the last one repeating (a rescan that finds something new). An entry with `results` holds
    nothing else, and a listed result holds no `results` of its own.
    """

    model_config = ConfigDict(extra="forbid")

    result: ScanResult = "ok"
    duration_s: float = Field(default=150.0, ge=0)
    exit_code: int = Field(default=1, description="exit code of an `error` scan")
    vulnerabilities: dict[str, int] = Field(default_factory=dict)
    digest: str | None = Field(default=None, description="repo digest to report; a fake one derived from the ref")
    files: ScanFiles | None = Field(default=None, description="files used verbatim as the scanner's output")
    results: list[ScanBehaviour] | None = Field(
        default=None, min_length=1, max_length=MAX_SUCCESSIVE_RESULTS, description="successive results, in order"
    )
    _contents: dict[str, bytes] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _successive_alone(self) -> ScanBehaviour:
        """`results` is the whole entry, one level deep: anything beside it would be ignored, so it is an error."""
        if self.results is None:
            return self
        beside = sorted(self.model_fields_set - {"results"})
        if beside:
            raise ValueError(f"an entry with results holds nothing else (move {', '.join(beside)} into each result)")
        if any(each.results is not None for each in self.results):
            raise ValueError("a listed result cannot list results of its own")
        return self

    def nth(self, scans_before: int) -> ScanBehaviour:
        """The behaviour of the image's scan after `scans_before` earlier ones (the last listed result repeats)."""
        if self.results is None:
            return self
        return self.results[min(scans_before, len(self.results) - 1)]

    @model_validator(mode="after")
    def _read_files(self, info: ValidationInfo) -> ScanBehaviour:
        """Read `files` relative to the scenario's directory (given as validation context) once, at load time."""
        if self.files is None:
            return self
        if self.vulnerabilities:
            raise ValueError("give either files or vulnerabilities: the findings are those of the files")
        base = (info.context or {}).get(SCENARIO_DIR_CONTEXT)
        if base is None:
            raise ValueError("files need a scenario file to be relative to (load the scenario from a file)")
        self._contents = {kind: read_scan_file(Path(base), path) for kind, path in self.files.named().items()}
        return self

    @property
    def file_contents(self) -> dict[str, bytes]:
        """Kind (sarif, json, scanresult, log) -> the verbatim bytes of each file given."""
        return dict(self._contents)

    @field_validator("vulnerabilities")
    @classmethod
    def _known_severities(cls, value: dict[str, int]) -> dict[str, int]:
        """Severity names in any case, upper-cased; an unknown name or a negative count is an error, not a silent 0."""
        counts: dict[str, int] = {}
        for name, count in value.items():
            severity = name.strip().upper()
            if severity not in SEVERITIES:
                raise ValueError(f"unknown severity {name!r} (use {', '.join(SEVERITIES)})")
            if count < 0:
                raise ValueError(f"negative count for {name!r}")
            counts[severity] = counts.get(severity, 0) + count
        return counts


class DeployedResource(BaseModel):
    """A container group, container app or job that exists in the simulated subscription."""

    model_config = ConfigDict(extra="forbid")

    id: str
    images: list[str] = Field(default_factory=list)
    init_images: list[str] = Field(default_factory=list)
    location: str = Field(default="westeurope", pattern=r"^[a-z][a-z0-9]{1,39}$")
    deleted_at_s: float | None = Field(
        default=None, ge=0, description="virtual seconds since the start after which it no longer exists"
    )

    @field_validator("id")
    @classmethod
    def _target_resource_id(cls, value: str) -> str:
        """Only the exact id of a container group, container app or job can ever be resolved by the app."""
        try:
            parse_resource_id(value)
        except InvalidResourceId as error:
            raise ValueError(f"{error} (expected the ARM id of a container group, container app or job)") from None
        return value


class SimSettings(BaseModel):
    """Simulator knobs (virtual seconds); read from the scenario's `settings` under the `ARMSIM_` prefix."""

    model_config = ConfigDict(extra="ignore")

    provisioning_delay_s: float = Field(default=20.0, ge=0)
    log_lines_per_image: int = Field(default=4, ge=0)
    # ACI's default regional limits (devhost/armsim/limits.py cites them): a scenario can lower them, not raise them.
    max_container_groups: int = Field(default=100, ge=0, le=100)
    max_cores: float = Field(default=100.0, ge=0, le=100)
    max_creates_per_5_minutes: int = Field(default=100, ge=0, le=100)
    max_creates_per_hour: int = Field(default=300, ge=0, le=300)
    max_deletes_per_5_minutes: int = Field(default=100, ge=0, le=100)
    max_deletes_per_hour: int = Field(default=300, ge=0, le=300)
    max_containers_per_group: int = Field(default=60, ge=1, le=60)
    # Resource Graph's default quota: 15 queries per 5-second window per user (devhost/armsim/resource_graph.py)
    resource_graph_quota: int = Field(default=15, ge=0, le=15)
    delete_delay_s: float = Field(default=10.0, ge=0, description="DELETE accepted (202) until the group is gone")
    capacity_failures: int = Field(default=0, ge=0, description="first N new groups fail late: no capacity")
    blob_events: bool = Field(default=True, description="publish BlobCreated for status uploads (blob_events.py)")


class Scenario(BaseModel):
    """A whole scenario file; `settings` holds app settings (strings) and optional `ARMSIM_*` simulator knobs."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, str] = Field(default_factory=dict)
    resources: list[DeployedResource] = Field(default_factory=list)
    scans: dict[str, ScanBehaviour] = Field(default_factory=dict)
    messages: list[Any] = Field(default_factory=list)

    @field_validator("settings", mode="before")
    @classmethod
    def _settings_as_text(cls, value: object) -> object:
        """App settings are text; a JSON number or boolean (`"SCAN_TIMEOUT": 600`) is taken as its text."""
        if not isinstance(value, dict):
            return value
        return {key: _setting_text(item) for key, item in value.items()}

    @model_validator(mode="after")
    def _distinct_keys(self) -> Scenario:
        """Every `scans` key but `default` is an image reference, each image once; each resource id once."""
        seen: dict[str, str] = {}
        for key in self.scans:
            if key == DEFAULT_SCAN_KEY:
                continue
            try:
                canonical = parse_image_ref(key.strip()).canonical
            except InvalidImageRef as error:
                raise ValueError(f"scans key {key!r} is not an image reference: {error}") from None
            if canonical in seen:
                raise ValueError(f"scans keys {seen[canonical]!r} and {key!r} are the same image {canonical}")
            seen[canonical] = key
        ids: set[str] = set()
        for resource in self.resources:
            if resource.id.lower() in ids:
                raise ValueError(f"resource {resource.id} is listed twice")
            ids.add(resource.id.lower())
        return self

    def sim_settings(self) -> SimSettings:
        """The `ARMSIM_*` entries of `settings`, lower-cased without the prefix, as simulator knobs."""
        prefix = "ARMSIM_"
        picked = {k[len(prefix) :].lower(): v for k, v in self.settings.items() if k.upper().startswith(prefix)}
        return SimSettings.model_validate(picked)

    def app_settings(self) -> dict[str, str]:
        """The settings meant for the app (everything but the simulator knobs)."""
        return {k: v for k, v in self.settings.items() if not k.upper().startswith("ARMSIM_")}


def _setting_text(value: object) -> object:
    """A JSON boolean as `true`/`false`, a number as written in JSON; anything else unchanged (strings pass)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return value


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario JSON file (scan `files` are relative to it)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    return Scenario.model_validate(document, context={SCENARIO_DIR_CONTEXT: Path(path).parent})
