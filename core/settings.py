"""The app's typed settings, read once from the environment, with one error naming every bad variable."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from core.exclusions import check_exclusions
from core.network_policy import NetworkPolicy, check_allow_list
from core.options import (
    ACI_CREATES_PER_5_MINUTES,
    ACI_CREATES_PER_HOUR,
    ACI_STANDARD_CORES,
    DEFAULT_MAX_CONCURRENT_SCANNER_GROUPS,
    DEFAULT_MAX_IMAGES_PER_SCANNER_GROUP,
    DEFAULT_POLL_INITIAL_SECONDS,
    DEFAULT_POLL_MAX_SECONDS,
    DEFAULT_SCAN_CACHE_HOURS,
    DEFAULT_SCAN_QUEUE_MAX_HOURS,
    DEFAULT_SCAN_TIMEOUT_SECONDS,
    QScannerMode,
    ScanOptions,
)
from core.scanner_spec import MIN_PER_IMAGE_SECONDS, QSCANNER_REPORT_FORMATS, scanner_problems
from core.setting_types import (
    SETTING_NAME,
    BlobContainerName,
    CommaList,
    EventHubEntity,
    Guid,
    GuidList,
    HttpsOnlyUrl,
    LowerStr,
    Ncrontab,
    Printable,
    Problem,
    ResourceGroupName,
    SettingName,
    StorageConnection,
    TableName,
    TaskHubName,
    UploadsContainerPrefix,
    Url,
    UserIdentityId,
    matching,
    storage_connection_from_env,
    strip_upper,
)
from core.settings_notify import NotificationSettings, notification_problems

QUALYS_POD_GATEWAYS: dict[str, str] = {
    "US1": "https://gateway.qg1.apps.qualys.com",
    "US2": "https://gateway.qg2.apps.qualys.com",
    "US3": "https://gateway.qg3.apps.qualys.com",
    "US4": "https://gateway.qg4.apps.qualys.com",
    "EU1": "https://gateway.qg1.apps.qualys.eu",
    "EU2": "https://gateway.qg2.apps.qualys.eu",
    "EU3": "https://gateway.qg3.apps.qualys.it",
    "IN1": "https://gateway.qg1.apps.qualys.in",
    "CA1": "https://gateway.qg1.apps.qualys.ca",
    "AE1": "https://gateway.qg1.apps.qualys.ae",
    "UK1": "https://gateway.qg1.apps.qualys.co.uk",
    "AU1": "https://gateway.qg1.apps.qualys.com.au",
    "KSA1": "https://gateway.qg1.apps.qualysksa.com",
}
ALLOWED_SCAN_TYPES = ("os", "sca", "secret", "malware", "fileinsight", "compliance", "manifest", "winregistry")
EVALUATE_POLICY_MODE = "evaluate-policy"
DEFAULT_JANITOR_SCHEDULE = "0 */10 * * * *"
DEFAULT_SWEEP_SCHEDULE = "0 30 */6 * * *"
DEFAULT_RESCAN_SCHEDULE = "0 45 * * * *"  # hourly: the rescan timer (docs/operations.md "Rescans")
DEFAULT_RESCAN_INTERVAL_HOURS = 24
DEFAULT_EXCEPTIONS_SCHEDULE = "0 5 * * * *"  # hourly: the exceptions expiry timer
ACI_CONTAINER_GROUP_QUOTA = 100
ACI_MAX_CORES_SETTING = 400
"""ACI_MAX_CORES may exceed ACI's default 100 only for a subscription whose StandardCores quota was raised;
400 is as many as 100 groups of the largest SCANNER_CPU (4) can use."""
ACI_MAX_CONTAINERS_PER_GROUP = 60
DEFAULT_QSCANNER_VERSION = "4.8.0-2"
# Long enough for a large image: QScanner's own --scan-timeout default (300 s) plus the report fetch (300 s).
DEFAULT_SCAN_TIMEOUT_PER_IMAGE_SECONDS = 600
DEFAULT_QSCANNER_IMAGE = "mcr.microsoft.com/azurelinux/base/core:3.0"
DEFAULT_STORAGE_CONNECTION = "AzureWebJobsStorage"
DEFAULT_EVENTHUB_CONNECTION = "EventHubConnection"
SAS_MARGIN_MINUTES = 15
_DEFER_CONSISTENCY = "defer_consistency"


class SettingsError(ValueError):
    """The environment is missing or has invalid variables; `problems` lists (VARIABLE, reason) for each."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        lines = "\n".join(f"  {name}: {reason}" for name, reason in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


def _known_pod(value: str) -> str:
    if value not in QUALYS_POD_GATEWAYS:
        raise ValueError(f"must be one of {', '.join(QUALYS_POD_GATEWAYS)}")
    return value


def _scan_types(value: tuple[str, ...]) -> tuple[str, ...]:
    lowered = tuple(dict.fromkeys(item.lower() for item in value))
    if not lowered or any(item not in ALLOWED_SCAN_TYPES for item in lowered):
        raise ValueError(f"must be a comma-separated subset of {','.join(ALLOWED_SCAN_TYPES)}")
    return lowered


def _report_formats(value: tuple[str, ...]) -> tuple[str, ...]:
    lowered = tuple(dict.fromkeys(item.lower() for item in value))
    if not lowered or any(item not in QSCANNER_REPORT_FORMATS for item in lowered):
        raise ValueError(f"must be a comma-separated subset of {','.join(QSCANNER_REPORT_FORMATS)}")
    return lowered


def _without_v(value: object) -> object:
    """QScanner versions are written both ways (`4.8.0-2`, `v4.8.0-2`): keep the bare number."""
    return value.strip().removeprefix("v").removeprefix("V") if isinstance(value, str) else value


def _region_name(value: object) -> object:
    """'West Europe' and 'westeurope' name the same region."""
    return value.replace(" ", "").lower() if isinstance(value, str) else value


def _image_ref(value: str) -> str:
    from core.images import parse_image_ref  # noqa: PLC0415 - keeps settings importable on its own

    return parse_image_ref(value).canonical


class Settings(NotificationSettings):
    """Every setting of the app; field `x_y` is environment variable `X_Y`. Secrets are `SecretStr`.

    The notification fields come from `core.settings_notify.NotificationSettings`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Qualys
    qualys_pod: Annotated[str, BeforeValidator(strip_upper), AfterValidator(_known_pod)]
    qualys_access_token: SecretStr | None = None
    qualys_client_id: SecretStr | None = None
    qualys_client_secret: SecretStr | None = None
    # Azure placement of the scanner groups
    azure_subscription_id: Guid
    scanner_resource_group: ResourceGroupName
    monitored_subscriptions: GuidList = ()  # empty: the app's own (core.scope.monitored_subscriptions)
    scan_exclude: Annotated[CommaList, AfterValidator(check_exclusions)] = ()  # core.exclusions
    scanner_location: Annotated[
        str, BeforeValidator(_region_name), matching(r"[a-z][a-z0-9]{1,39}", "Azure region name such as westeurope")
    ]
    # Scanner
    qscanner_version: Annotated[
        str, BeforeValidator(_without_v), matching(r"\d+\.\d+\.\d+-\d+", "QScanner version (X.Y.Z-N, or vX.Y.Z-N)")
    ] = DEFAULT_QSCANNER_VERSION
    qscanner_image: Annotated[str, AfterValidator(_image_ref)] = DEFAULT_QSCANNER_IMAGE
    qscanner_download_url: Url | None = None
    qscanner_sha256: Annotated[LowerStr, matching(r"[0-9a-f]{64}", "SHA-256 (64 hex digits)")] | None = None
    scan_types: Annotated[CommaList, AfterValidator(_scan_types)] = ("os", "sca", "secret")
    qscanner_report_formats: Annotated[CommaList, AfterValidator(_report_formats)] = ("sarif", "json")
    qscanner_sbom_format: Annotated[
        Literal["spdx", "cyclonedx", "none"], BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v)
    ] = "spdx"
    qscanner_mode: Annotated[
        QScannerMode, BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v)
    ] = "get-report"
    # The scanner passes this as a QScanner argument: a leading "-" would read as an option, so refuse it here.
    policy_tags: Annotated[Printable, matching(r"[^-].*", "policy tags (must not start with '-')")] | None = None
    scanner_cpu: float = Field(default=1.0, ge=0.1, le=4.0)
    scanner_memory_gb: float = Field(default=2.0, ge=0.1, le=16.0)
    scanner_identity_resource_id: UserIdentityId | None = None
    scanner_identity_client_id: Guid | None = None
    max_concurrent_scanner_groups: int = Field(
        default=DEFAULT_MAX_CONCURRENT_SCANNER_GROUPS, ge=1, le=ACI_CONTAINER_GROUP_QUOTA
    )
    max_images_per_scanner_group: int = Field(
        default=DEFAULT_MAX_IMAGES_PER_SCANNER_GROUP, ge=1, le=ACI_MAX_CONTAINERS_PER_GROUP
    )
    # The quota gate's budgets (ACI's default regional limits; lower them to leave room for other workloads)
    aci_max_cores: float = Field(default=ACI_STANDARD_CORES, ge=0.1, le=ACI_MAX_CORES_SETTING)
    aci_max_creates_per_5_minutes: int = Field(default=ACI_CREATES_PER_5_MINUTES, ge=1, le=ACI_CREATES_PER_5_MINUTES)
    aci_max_creates_per_hour: int = Field(default=ACI_CREATES_PER_HOUR, ge=1, le=ACI_CREATES_PER_HOUR)
    # Timing
    scan_timeout: int = Field(default=DEFAULT_SCAN_TIMEOUT_SECONDS, ge=60, le=86_400)
    scan_timeout_per_image: int = Field(
        default=DEFAULT_SCAN_TIMEOUT_PER_IMAGE_SECONDS, ge=MIN_PER_IMAGE_SECONDS, le=86_400
    )
    scan_cache_hours: int = Field(default=DEFAULT_SCAN_CACHE_HOURS, ge=0, le=24 * 365)
    scan_queue_max_hours: int = Field(default=DEFAULT_SCAN_QUEUE_MAX_HOURS, ge=1, le=24 * 30)
    scan_poll_initial_seconds: int = Field(default=DEFAULT_POLL_INITIAL_SECONDS, ge=5, le=3600)
    scan_poll_max_seconds: int = Field(default=DEFAULT_POLL_MAX_SECONDS, ge=5, le=3600)
    janitor_grace_minutes: int = Field(default=15, ge=1, le=24 * 60)
    janitor_schedule: Ncrontab = DEFAULT_JANITOR_SCHEDULE
    # Inventory and Resource Graph sweeps (core/workloads.py, docs/operations.md)
    sweep_schedule: Ncrontab = DEFAULT_SWEEP_SCHEDULE
    inventory_table: TableName = "inventory"
    inventory_tombstone_hours: int = Field(default=24, ge=1, le=24 * 30)
    # Rescans of deployed images (core/rescan.py): their age, and the timer that looks for due ones
    rescan_interval_hours: int = Field(default=DEFAULT_RESCAN_INTERVAL_HOURS, ge=1, le=24 * 30)
    rescan_schedule: Ncrontab = DEFAULT_RESCAN_SCHEDULE
    # Exceptions (core/exceptions_doc.py): how far ahead an expiry may lie; the expiry timer's schedule
    exception_max_days: int = Field(default=180, ge=1, le=3660)
    exceptions_audit_table: TableName = "exceptionsaudit"
    exceptions_file: Printable | None = None  # a JSON document in the app package; then PUT /api/exceptions is refused
    exceptions_schedule: Ncrontab = DEFAULT_EXCEPTIONS_SCHEDULE
    # Registry
    resolve_digests: bool = True
    registry_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    allowed_private_registries: Annotated[CommaList, AfterValidator(check_allow_list)] = ()
    # Event Hub (identity-based: EVENTHUB_CONNECTION names the prefix of <name>__fullyQualifiedNamespace)
    eventhub_name: EventHubEntity = "deployments"
    eventhub_consumer_group: EventHubEntity = "$Default"
    eventhub_connection: SettingName = DEFAULT_EVENTHUB_CONNECTION
    # Storage
    results_storage_connection: SettingName = DEFAULT_STORAGE_CONNECTION
    storage: StorageConnection
    results_container: BlobContainerName = "scan-reports"
    uploads_container: UploadsContainerPrefix = "scan-uploads"  # a prefix: core.naming.uploads_container_name
    cache_table: TableName = "imagecache"
    scans_table: TableName = "scans"
    upload_sas_minutes: int = Field(default=DEFAULT_SCAN_TIMEOUT_SECONDS // 60 + SAS_MARGIN_MINUTES, ge=5)
    # Azure plumbing
    arm_endpoint: HttpsOnlyUrl = "https://management.azure.com"
    azure_client_id: Guid | None = None
    durable_task_hub: TaskHubName = "qscanner"

    @model_validator(mode="before")
    @classmethod
    def _default_sas_lifetime(cls, data: Any) -> Any:
        """UPLOAD_SAS_MINUTES defaults to SCAN_TIMEOUT (rounded up to minutes) plus a margin."""
        if isinstance(data, dict) and data.get("upload_sas_minutes") in (None, ""):
            try:
                timeout = int(data.get("scan_timeout", DEFAULT_SCAN_TIMEOUT_SECONDS))
            except (TypeError, ValueError):
                return data  # SCAN_TIMEOUT itself is reported
            data = {**data, "upload_sas_minutes": math.ceil(timeout / 60) + SAS_MARGIN_MINUTES}
        return data

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Settings:
        if not (info.context or {}).get(_DEFER_CONSISTENCY):
            problems = consistency_problems(self)
            if problems:
                raise ValueError("; ".join(f"{name}: {reason}" for name, reason in problems))
        return self

    @property
    def qualys_gateway_url(self) -> str:
        """The Qualys gateway of `qualys_pod`."""
        return QUALYS_POD_GATEWAYS[self.qualys_pod]

    @property
    def scan_types_csv(self) -> str:
        """`scan_types` as QScanner's `--scan-types` argument."""
        return ",".join(self.scan_types)

    def network_policy(self) -> NetworkPolicy:
        """Where registry requests may go: public addresses, and the hosts ALLOWED_PRIVATE_REGISTRIES names."""
        return NetworkPolicy.allowing(self.allowed_private_registries)

    def scan_options(self) -> ScanOptions:
        """The non-secret options an orchestration needs, to be passed in its input."""
        return ScanOptions(
            scan_timeout_seconds=self.scan_timeout,
            scan_cache_hours=self.scan_cache_hours,
            scan_queue_max_hours=self.scan_queue_max_hours,
            notify_severity_threshold=self.notify_severity_threshold,
            poll_initial_seconds=self.scan_poll_initial_seconds,
            poll_max_seconds=self.scan_poll_max_seconds,
            max_images_per_scanner_group=self.max_images_per_scanner_group,
            max_concurrent_scanner_groups=self.max_concurrent_scanner_groups,
            qscanner_mode=self.qscanner_mode,
            scan_types=self.scan_types,
            resolve_digests=self.resolve_digests,
            scanner_cpu=self.scanner_cpu,
            aci_max_cores=self.aci_max_cores,
            aci_max_creates_per_5_minutes=self.aci_max_creates_per_5_minutes,
            aci_max_creates_per_hour=self.aci_max_creates_per_hour,
        )


def requirement_problems(get: Callable[[str], object]) -> list[Problem]:
    """Presence rules that span variables; `get(NAME)` is the variable's value, or None when unset."""
    problems: list[Problem] = []
    client_id, client_secret = get("QUALYS_CLIENT_ID") is not None, get("QUALYS_CLIENT_SECRET") is not None
    if client_id != client_secret:
        missing = "QUALYS_CLIENT_SECRET" if client_id else "QUALYS_CLIENT_ID"
        problems.append((missing, "required together with the other of QUALYS_CLIENT_ID / QUALYS_CLIENT_SECRET"))
    elif not client_id and get("QUALYS_ACCESS_TOKEN") is None:
        problems.append(("QUALYS_ACCESS_TOKEN", "required: set it, or QUALYS_CLIENT_ID and QUALYS_CLIENT_SECRET"))
    if get("QSCANNER_MODE") == EVALUATE_POLICY_MODE and get("POLICY_TAGS") is None:
        problems.append(("POLICY_TAGS", f"required when QSCANNER_MODE is {EVALUATE_POLICY_MODE}"))
    if get("NOTIFICATION_EMAIL"):
        for name in ("SMTP_HOST", "SMTP_FROM"):
            if get(name) is None:
                problems.append((name, "required when NOTIFICATION_EMAIL is set"))
    return problems


def consistency_problems(settings: Settings) -> list[Problem]:
    """Every rule that spans variables, checked on validated settings."""
    problems = requirement_problems(lambda name: getattr(settings, name.lower()))
    if settings.upload_sas_minutes * 60 < settings.scan_timeout:
        problems.append(("UPLOAD_SAS_MINUTES", "must cover SCAN_TIMEOUT (the upload SAS must outlive the scan)"))
    if settings.scan_poll_max_seconds < settings.scan_poll_initial_seconds:
        problems.append(("SCAN_POLL_MAX_SECONDS", "must be at least SCAN_POLL_INITIAL_SECONDS"))
    if settings.aci_max_cores < settings.scanner_cpu:
        problems.append(("ACI_MAX_CORES", "must be at least SCANNER_CPU (one scanner group's cores)"))
    problems += scanner_problems(settings)
    problems += notification_problems(settings)
    return problems


def _env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings' variables that are set (field `x_y` from `X_Y`); an empty or blank value counts as unset."""
    values: dict[str, Any] = {}
    for field in Settings.model_fields:
        raw = environ.get(field.upper())
        if raw is not None and raw.strip():
            values[field] = raw.strip()
    values.pop("storage", None)
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise `SettingsError` naming each missing or invalid variable."""
    env = os.environ if environ is None else environ
    data = _env_values(env)
    problems: list[Problem] = []
    connection_name = data.get("results_storage_connection", DEFAULT_STORAGE_CONNECTION)
    if SETTING_NAME.fullmatch(connection_name):
        storage, storage_problems = storage_connection_from_env(connection_name, env)
        problems.extend(storage_problems)
        if storage is not None:
            data["storage"] = storage
    try:
        settings = Settings.model_validate(data, context={_DEFER_CONSISTENCY: True})
    except ValidationError as error:
        problems.extend(requirement_problems(lambda name: data.get(name.lower())))
        for item in error.errors(include_input=False, include_url=False):
            field = str(item["loc"][0]) if item["loc"] else ""
            if field and field != "storage":  # storage problems come from storage_connection_from_env
                reason = "required" if item["type"] == "missing" else item["msg"].removeprefix("Value error, ")
                problems.append((field.upper(), reason))
        raise SettingsError(problems) from None
    problems.extend(consistency_problems(settings))
    if problems:
        raise SettingsError(problems)
    return settings


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from `os.environ` on first use (entry points only; tests use load_settings)."""
    return load_settings()
