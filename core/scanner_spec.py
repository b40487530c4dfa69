"""The scanner container group as plain data: what activities/aci_scanner.py turns into an ACI ContainerGroup."""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from core.images import parse_image_ref

SCRIPT_PATH = Path(__file__).resolve().parent.parent / "scanner" / "scan.sh"
SCRIPT_VOLUME_NAME = "scanner-script"
SCRIPT_MOUNT_PATH = "/scanner"
SCRIPT_FILE_NAME = "scan.sh"
SCANNER_CONTAINER_NAME = "qscanner"
SCANNER_COMMAND: tuple[str, ...] = ("/bin/bash", f"{SCRIPT_MOUNT_PATH}/{SCRIPT_FILE_NAME}")
RESTART_POLICY_NEVER: Final = "Never"
OS_TYPE_LINUX: Final = "Linux"

TAG_INSTANCE = "qscan-instance"
TAG_MANAGED = "qscan-managed"
TAG_CREATED = "qscan-created"
TAG_SCRIPT = "qscan-script"
TAG_VALUE_MAX_CHARS = 256

# Per-image time limit (see per_image_timeout_seconds).
SETUP_RESERVE_MAX_SECONDS = 300
SETUP_RESERVE_DIVISOR = 5
KILL_GRACE_SECONDS = 10
MIN_PER_IMAGE_SECONDS = 30
# QScanner's report formats (--report-format) and the SBOM added to the inventory (--format json,<sbom>); README v4.8.0.
QSCANNER_REPORT_FORMATS = ("json", "sarif", "table", "gitlab")
READABLE_REPORT_FORMATS = frozenset({"sarif", "json"})  # the formats the app parses
REPORTING_MODES = frozenset({"get-report", "evaluate-policy"})  # the modes in which QScanner writes a report
SBOM_FORMATS = ("spdx", "cyclonedx", "none")


class ScannerSettings(Protocol):
    """The part of `core.settings.Settings` the scanner group is built from."""

    @property
    def qualys_pod(self) -> str: ...
    @property
    def qualys_access_token(self) -> SecretStr | None: ...
    @property
    def qualys_client_id(self) -> SecretStr | None: ...
    @property
    def qualys_client_secret(self) -> SecretStr | None: ...
    @property
    def scan_types(self) -> tuple[str, ...]: ...
    @property
    def qscanner_version(self) -> str: ...
    @property
    def qscanner_download_url(self) -> str | None: ...
    @property
    def qscanner_sha256(self) -> str | None: ...
    @property
    def qscanner_mode(self) -> str: ...
    @property
    def policy_tags(self) -> str | None: ...
    @property
    def qscanner_image(self) -> str: ...
    @property
    def scanner_cpu(self) -> float: ...
    @property
    def scanner_memory_gb(self) -> float: ...
    @property
    def scanner_identity_resource_id(self) -> str | None: ...
    @property
    def scanner_identity_client_id(self) -> str | None: ...
    @property
    def scanner_location(self) -> str: ...
    @property
    def scan_timeout(self) -> int: ...
    @property
    def scan_timeout_per_image(self) -> int: ...
    @property
    def max_images_per_scanner_group(self) -> int: ...
    @property
    def qscanner_report_formats(self) -> tuple[str, ...]: ...
    @property
    def qscanner_sbom_format(self) -> str: ...


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class EnvironmentVariableSpec(BaseModel):
    """One environment variable: a plain `value`, or a `secure_value` (ACI never returns it on GET)."""

    model_config = _FROZEN

    name: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    value: str | None = None
    secure_value: SecretStr | None = None

    @model_validator(mode="after")
    def _exactly_one_value(self) -> EnvironmentVariableSpec:
        if (self.value is None) == (self.secure_value is None):
            raise ValueError(f"{self.name}: exactly one of value and secure_value must be set")
        return self

    @property
    def secure(self) -> bool:
        """True when the value is a secret and must go to ACI's `secure_value`."""
        return self.secure_value is not None


class VolumeMountSpec(BaseModel):
    """Where a volume appears in the container."""

    model_config = _FROZEN

    name: str
    mount_path: str
    read_only: bool = True


class SecretVolumeSpec(BaseModel):
    """An ACI secret volume: file name -> content. ACI wants each content base64-encoded (`secret_files_base64`)."""

    model_config = _FROZEN

    name: str
    files: dict[str, str]

    def secret_files_base64(self) -> dict[str, str]:
        """The `secret` mapping of azure.mgmt.containerinstance.models.Volume."""
        return {name: base64.b64encode(text.encode("utf-8")).decode("ascii") for name, text in self.files.items()}


class ScannerContainerSpec(BaseModel):
    """The one container of a scanner group."""

    model_config = _FROZEN

    name: str
    image: str
    command: tuple[str, ...]
    cpu: float
    memory_gb: float
    environment: tuple[EnvironmentVariableSpec, ...]
    volume_mounts: tuple[VolumeMountSpec, ...]

    def env(self, name: str) -> EnvironmentVariableSpec | None:
        """The variable called `name`, if set."""
        return next((item for item in self.environment if item.name == name), None)


class ScannerGroupSpec(BaseModel):
    """A short-lived ACI group that scans `images` in turn and uploads results (see docs/scanner.md)."""

    model_config = _FROZEN

    name: str
    location: str
    os_type: Literal["Linux"] = OS_TYPE_LINUX
    restart_policy: Literal["Never"] = RESTART_POLICY_NEVER
    container: ScannerContainerSpec
    volumes: tuple[SecretVolumeSpec, ...]
    identity_resource_id: str | None
    tags: dict[str, str]
    images: tuple[str, ...]
    per_image_timeout_seconds: int


@functools.cache
def load_scan_script() -> str:
    """The text of scanner/scan.sh, shipped with the app (the whole project folder is deployed)."""
    return SCRIPT_PATH.read_text(encoding="utf-8")


def script_fingerprint(script_text: str) -> str:
    """A short hash of the script, recorded as a tag so a group shows which script it ran."""
    return hashlib.sha256(script_text.encode("utf-8")).hexdigest()[:16]


def setup_reserve_seconds(scan_timeout: int) -> int:
    """Time kept out of SCAN_TIMEOUT for container start and the QScanner download: min(300, SCAN_TIMEOUT // 5)."""
    return min(SETUP_RESERVE_MAX_SECONDS, scan_timeout // SETUP_RESERVE_DIVISOR)


def per_image_timeout_seconds(scan_timeout: int, image_count: int, minimum: int = MIN_PER_IMAGE_SECONDS) -> int:
    """Each image's fair share of SCAN_TIMEOUT, never less than `minimum` (SCAN_TIMEOUT_PER_IMAGE).

    reserve = min(300, SCAN_TIMEOUT // 5) covers container start and the QScanner download; every image also needs
    up to 10 s for a TERM-then-KILL escalation. share = (SCAN_TIMEOUT - reserve - 10 * n) // n, so the whole group
    normally ends before the orchestration's own deadline; settings validation (`min_scan_timeout_seconds`) makes
    sure the share of a full group is at least `minimum`.
    """
    if image_count < 1:
        raise ValueError("a scanner group needs at least one image")
    share = (scan_timeout - setup_reserve_seconds(scan_timeout) - KILL_GRACE_SECONDS * image_count) // image_count
    return max(minimum, share)


def min_scan_timeout_seconds(per_image: int, image_count: int) -> int:
    """The least SCAN_TIMEOUT whose fair share for `image_count` images is at least `per_image` seconds each."""
    needed = image_count * (per_image + KILL_GRACE_SECONDS)  # SCAN_TIMEOUT - reserve must cover this
    # Below 1500 s the reserve is SCAN_TIMEOUT // 5, so SCAN_TIMEOUT - SCAN_TIMEOUT // 5 = ceil(4/5 SCAN_TIMEOUT).
    small = (SETUP_RESERVE_DIVISOR * (needed - 1)) // (SETUP_RESERVE_DIVISOR - 1) + 1 if needed > 0 else 0
    if small < SETUP_RESERVE_MAX_SECONDS * SETUP_RESERVE_DIVISOR:
        return small
    return needed + SETUP_RESERVE_MAX_SECONDS


def scanner_problems(settings: ScannerSettings) -> list[tuple[str, str]]:
    """The scanner's own rules: a readable report format in reporting modes, and time for a full group."""
    problems: list[tuple[str, str]] = []
    if settings.qscanner_mode in REPORTING_MODES and not READABLE_REPORT_FORMATS & set(
        settings.qscanner_report_formats
    ):
        problems.append(
            (
                "QSCANNER_REPORT_FORMATS",
                f"must hold sarif or json in {settings.qscanner_mode} mode (the app reads no other)",
            )
        )
    per_image, group = settings.scan_timeout_per_image, settings.max_images_per_scanner_group
    needed = min_scan_timeout_seconds(per_image, group)
    if settings.scan_timeout < needed:
        problems.append(
            (
                "SCAN_TIMEOUT",
                f"must be at least {needed} s: a full scanner group of MAX_IMAGES_PER_SCANNER_GROUP={group} image(s)"
                f" needs SCAN_TIMEOUT_PER_IMAGE={per_image} s each, {KILL_GRACE_SECONDS} s each to stop and"
                f" {setup_reserve_seconds(needed)} s to start; raise SCAN_TIMEOUT or lower MAX_IMAGES_PER_SCANNER_GROUP"
                " or SCAN_TIMEOUT_PER_IMAGE",
            )
        )
    return problems


def _canonical_images(images: Sequence[str]) -> tuple[str, ...]:
    if not images:
        raise ValueError("a scanner group needs at least one image")
    for ref in images:
        if parse_image_ref(ref).canonical != ref:
            raise ValueError("scanner images must be canonical references (core.images.parse_image_ref(...).canonical)")
    return tuple(images)


def _plain(name: str, value: str) -> EnvironmentVariableSpec:
    return EnvironmentVariableSpec(name=name, value=value)


def _secure(name: str, value: SecretStr) -> EnvironmentVariableSpec:
    return EnvironmentVariableSpec(name=name, secure_value=value)


def _environment(
    settings: ScannerSettings,
    images: tuple[str, ...],
    per_image_timeout: int,
    results_sas_url: SecretStr,
    results_prefix: str,
) -> tuple[EnvironmentVariableSpec, ...]:
    env = [
        _plain("SCAN_IMAGES", "\n".join(images)),
        _plain("QUALYS_POD", settings.qualys_pod),
        _plain("SCAN_TYPES", ",".join(settings.scan_types)),
        _plain("QSCANNER_VERSION", settings.qscanner_version),
        _plain("QSCANNER_MODE", settings.qscanner_mode),
        _plain("SCAN_TIMEOUT_PER_IMAGE", str(per_image_timeout)),
        _plain("QSCANNER_REPORT_FORMATS", ",".join(settings.qscanner_report_formats)),
        _plain("QSCANNER_SBOM_FORMAT", settings.qscanner_sbom_format),
        _plain("RESULTS_PREFIX", results_prefix),
        _secure("RESULTS_SAS_URL", results_sas_url),
    ]
    optional_plain = {
        "QSCANNER_DOWNLOAD_URL": settings.qscanner_download_url,
        "QSCANNER_SHA256": settings.qscanner_sha256,
        "POLICY_TAGS": settings.policy_tags if settings.qscanner_mode == "evaluate-policy" else None,
        # Lets QScanner's Azure SDK pick the group's user-assigned identity for ACR pulls (unverified, docs/scanner.md).
        "AZURE_CLIENT_ID": settings.scanner_identity_client_id if settings.scanner_identity_resource_id else None,
    }
    env += [_plain(name, value) for name, value in optional_plain.items() if value]
    optional_secure = {
        "QUALYS_ACCESS_TOKEN": settings.qualys_access_token,
        "QUALYS_CLIENT_ID": settings.qualys_client_id,
        "QUALYS_CLIENT_SECRET": settings.qualys_client_secret,
    }
    env += [_secure(name, value) for name, value in optional_secure.items() if value and value.get_secret_value()]
    return tuple(env)


def build_scanner_group_spec(
    *,
    group_name: str,
    images: Sequence[str],
    settings: ScannerSettings,
    results_sas_url: SecretStr,
    results_prefix: str,
    instance_id: str,
    created_at: datetime,
    script_text: str,
) -> ScannerGroupSpec:
    """Describe the scanner group for `images` (canonical refs, scanned in this order; blob index = position)."""
    canonical = _canonical_images(images)
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware (the orchestration's current_utc_datetime)")
    if len(instance_id) > TAG_VALUE_MAX_CHARS:
        raise ValueError("instance_id is too long for a tag value")
    per_image = per_image_timeout_seconds(settings.scan_timeout, len(canonical), settings.scan_timeout_per_image)
    container = ScannerContainerSpec(
        name=SCANNER_CONTAINER_NAME,
        image=settings.qscanner_image,
        command=SCANNER_COMMAND,
        cpu=settings.scanner_cpu,
        memory_gb=settings.scanner_memory_gb,
        environment=_environment(settings, canonical, per_image, results_sas_url, results_prefix),
        volume_mounts=(VolumeMountSpec(name=SCRIPT_VOLUME_NAME, mount_path=SCRIPT_MOUNT_PATH),),
    )
    created = created_at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return ScannerGroupSpec(
        name=group_name,
        location=settings.scanner_location,
        container=container,
        volumes=(SecretVolumeSpec(name=SCRIPT_VOLUME_NAME, files={SCRIPT_FILE_NAME: script_text}),),
        identity_resource_id=settings.scanner_identity_resource_id,
        tags={
            TAG_INSTANCE: instance_id,
            TAG_MANAGED: "true",
            TAG_CREATED: created,
            TAG_SCRIPT: script_fingerprint(script_text),
        },
        images=canonical,
        per_image_timeout_seconds=per_image,
    )
