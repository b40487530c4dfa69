"""Activities on scanner container groups in ACI: create (idempotent, no LRO wait), state, logs, delete, list.

Each call is one or two ARM requests, so a 3-minute scan costs GET+PUT, a handful of state polls, at most one logs
read and one DELETE. Errors: see activities.clients (`arm-retryable`, `aci-quota-reached`, `arm-error`); the
registered activities answer a non-retryable ARM error at once (`failing_fast`) instead of raising it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerinstance import models as aci
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from activities import names, telemetry
from activities.activity_registry import activity_registrar, validated
from activities.clients import ArmError, ScannerQuotaError, classify, container_instances, error_message, failing_fast
from activities.storage_clients import create_uploads_container, make_upload_sas
from core.janitor import ScannerGroupInfo
from core.naming import SCANNER_GROUP_NAME_PATTERN, SCANNER_GROUP_PREFIX
from core.redaction import redact
from core.scanner_spec import (
    SCANNER_CONTAINER_NAME,
    TAG_CREATED,
    TAG_INSTANCE,
    TAG_MANAGED,
    ScannerGroupSpec,
    build_scanner_group_spec,
    load_scan_script,
)
from core.settings import Settings, get_settings

GROUP_NAME_PATTERN = SCANNER_GROUP_NAME_PATTERN
DEFAULT_LOG_TAIL_LINES = 200
MAX_LOG_CHARS = 8_000  # activity outputs live in orchestration history: keep them small
MAX_IMAGES = 60
CAPACITY_FAILURE = re.compile(r"ServiceUnavailable|not available in the location", re.IGNORECASE)
"""ACI's late capacity failure: "ServiceUnavailable: The requested resource is not available in the location ..."
as the asynchronous provisioning failure of a group whose PUT succeeded (see shared reference, azure.md)."""
MAX_CAPACITY_MESSAGE_CHARS = 300
DELETE_ACCEPTED = frozenset({200, 202})
"""DELETE of a container group: 200 or 202 (deletion started, a long-running operation), 204 when absent
(azure-rest-api-specs, containerinstance 2023-05-01, ContainerGroups_Delete)."""


class CreateScannerGroupRequest(BaseModel):
    """Input of `create_scanner_group`; the activity adds the secrets and the upload SAS in-process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: str = Field(min_length=1, max_length=200)
    group_name: str = Field(pattern=GROUP_NAME_PATTERN)
    images: list[str] = Field(min_length=1, max_length=MAX_IMAGES)
    results_prefix: str = Field(min_length=1, max_length=400)
    created_at: AwareDatetime | None = None


class GroupRequest(BaseModel):
    """Input of the activities that address one existing group by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group_name: str = Field(pattern=GROUP_NAME_PATTERN)
    tail: int = Field(default=DEFAULT_LOG_TAIL_LINES, ge=1, le=1000)


class ContainerState(BaseModel):
    """The scanner container's instance view."""

    state: str | None = None
    exit_code: int | None = None
    restart_count: int = 0
    detail_status: str | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None


class ScannerState(BaseModel):
    """Output of `get_scanner_state` and `create_scanner_group` (the latter adds `created`)."""

    group_name: str
    exists: bool
    created: bool | None = None
    state: str | None = None
    provisioning_state: str | None = None
    instance_id: str | None = None
    container: ContainerState | None = None
    capacity_failure: str | None = None
    """Set (to ACI's message) when provisioning failed because the region had no capacity: retry later, elsewhere."""


class ScannerLogs(BaseModel):
    """Output of `get_scanner_logs`: the tail of the scanner's log, SAS signatures redacted, at most 8,000 chars."""

    group_name: str
    exists: bool
    log: str | None = None


class ScannerGroupListing(BaseModel):
    """One scanner group as the janitor sees it."""

    name: str
    tags: dict[str, str] = Field(default_factory=dict)
    state: str | None = None
    provisioning_state: str | None = None
    instance_id: str | None = None
    created_at: datetime | None = None


class ScannerGroupCollision(ArmError):
    """A group of that name exists but belongs to another orchestration instance: never reuse or replace it."""


def to_container_group(spec: ScannerGroupSpec) -> aci.ContainerGroup:
    """The SDK model of a scanner group spec; secrets go only to `secure_value` and the secret volume."""
    env = [
        aci.EnvironmentVariable(name=var.name, secure_value=var.secure_value.get_secret_value())
        if var.secure_value is not None
        else aci.EnvironmentVariable(name=var.name, value=var.value)
        for var in spec.container.environment
    ]
    container = aci.Container(
        name=spec.container.name,
        image=spec.container.image,
        command=list(spec.container.command),
        resources=aci.ResourceRequirements(
            requests=aci.ResourceRequests(cpu=spec.container.cpu, memory_in_gb=spec.container.memory_gb)
        ),
        environment_variables=env,
        volume_mounts=[
            aci.VolumeMount(name=m.name, mount_path=m.mount_path, read_only=m.read_only)
            for m in spec.container.volume_mounts
        ],
    )
    identity = None
    if spec.identity_resource_id:
        identity = aci.ContainerGroupIdentity(
            type="UserAssigned", user_assigned_identities={spec.identity_resource_id: aci.UserAssignedIdentities()}
        )
    return aci.ContainerGroup(
        location=spec.location,
        os_type=spec.os_type,
        restart_policy=spec.restart_policy,
        containers=[container],
        volumes=[aci.Volume(name=v.name, secret=v.secret_files_base64()) for v in spec.volumes],
        identity=identity,
        tags=dict(spec.tags),
    )


def _container_state(group: aci.ContainerGroup) -> ContainerState | None:
    containers = group.containers or []
    scanner = next((c for c in containers if c.name == SCANNER_CONTAINER_NAME), containers[0] if containers else None)
    view = scanner.instance_view if scanner is not None else None
    if view is None:
        return None
    current: Any = view.current_state  # read-only SDK fields are typed None: read them dynamically
    return ContainerState(
        state=getattr(current, "state", None),
        exit_code=getattr(current, "exit_code", None),
        restart_count=getattr(view, "restart_count", None) or 0,
        detail_status=getattr(current, "detail_status", None),
        start_time=getattr(current, "start_time", None),
        finish_time=getattr(current, "finish_time", None),
    )


def _capacity_failure(group: aci.ContainerGroup, provisioning_state: str | None) -> str | None:
    """ACI's "not available in the location" message of a group whose provisioning failed, if that is why."""
    if (provisioning_state or "").lower() != "failed":
        return None
    views: list[Any] = [group.instance_view, *(c.instance_view for c in group.containers or [])]
    texts = [str(getattr(getattr(v, "current_state", None), "detail_status", None) or "") for v in views]
    texts += [f"{e.name or ''}: {e.message or ''}" for v in views for e in (getattr(v, "events", None) or [])]
    found = next((text for text in texts if CAPACITY_FAILURE.search(text)), None)
    return found.strip(": ")[:MAX_CAPACITY_MESSAGE_CHARS] if found else None


def _state_of(group: aci.ContainerGroup, name: str, *, created: bool | None = None) -> ScannerState:
    view: Any = group.instance_view
    provisioning_state = getattr(group, "provisioning_state", None)
    return ScannerState(
        group_name=name,
        exists=True,
        created=created,
        state=getattr(view, "state", None),
        provisioning_state=provisioning_state,
        instance_id=(group.tags or {}).get(TAG_INSTANCE),
        container=_container_state(group),
        capacity_failure=_capacity_failure(group, provisioning_state),
    )


def _get(settings: Settings, name: str) -> aci.ContainerGroup | None:
    try:
        return container_instances(settings).container_groups.get(settings.scanner_resource_group, name)
    except ResourceNotFoundError:
        return None
    except HttpResponseError as error:
        raise classify(error) from error


def create_scanner_group(settings: Settings, request: CreateScannerGroupRequest) -> ScannerState:
    """Create the group unless it already exists for this instance (then return its state); never waits for it.

    One GET (is it there?) and one PUT. Before the PUT, the group's own uploads container is created (idempotent)
    and the group gets a write-only SAS for that container alone. A group of that name owned by another instance
    raises `ScannerGroupCollision`; ACI's quota refusal raises `ScannerQuotaError` (retryable, later).
    """
    existing = _get(settings, request.group_name)
    if existing is not None:
        owner = (existing.tags or {}).get(TAG_INSTANCE)
        if owner != request.instance_id:
            raise ScannerGroupCollision(409, "ScannerGroupCollision", f"{request.group_name} belongs to {owner!r}")
        return _state_of(existing, request.group_name, created=False)
    created_at = request.created_at or datetime.now(UTC)
    uploads = create_uploads_container(settings, request.group_name, request.instance_id, created_at)
    upload = make_upload_sas(settings, uploads, request.results_prefix)
    spec = build_scanner_group_spec(
        group_name=request.group_name,
        images=request.images,
        settings=settings,
        results_sas_url=upload.sas_url,
        results_prefix=request.results_prefix,
        instance_id=request.instance_id,
        created_at=created_at,
        script_text=load_scan_script(),
    )
    operations = container_instances(settings).container_groups
    try:
        poller = operations.begin_create_or_update(
            settings.scanner_resource_group, request.group_name, to_container_group(spec), polling=False
        )
        created = poller.result()
    except HttpResponseError as error:
        # The request carried secure values: an ARM validation message may quote them, so the original error
        # (its text, its response body) is not chained into the activity's failure details.
        refused = _scrubbed(error, scanner_secrets(settings, upload.sas_url))
        telemetry.create_refused(quota=isinstance(refused, ScannerQuotaError))
        raise refused from None
    telemetry.group_created(settings.scanner_cpu)
    return _state_of(created, request.group_name, created=True)


def get_scanner_state(settings: Settings, group_name: str) -> ScannerState:
    """One GET with the instance view; a missing group is `exists=False`, not an error."""
    group = _get(settings, group_name)
    if group is None:
        return ScannerState(group_name=group_name, exists=False)
    return _state_of(group, group_name)


def scanner_secrets(settings: Settings, *extra: SecretStr) -> list[str]:
    """The secret values a scanner group is given: the Qualys credentials and `extra` (the upload SAS)."""
    values = [settings.qualys_access_token, settings.qualys_client_id, settings.qualys_client_secret, *extra]
    found = [value.get_secret_value() for value in values if value is not None]
    return found + [text.partition("?")[2] for text in found if "?" in text]


def _scrubbed(error: HttpResponseError, secrets: Iterable[str]) -> ArmError:
    """`classify(error)`, with any secret that ARM echoed from the request blanked before the message is clipped."""
    classified = classify(error)
    message = redact(error_message(error), secrets)
    return type(classified)(classified.status, classified.code, message, classified.retry_after_s)


def get_scanner_logs(settings: Settings, group_name: str, tail: int = DEFAULT_LOG_TAIL_LINES) -> ScannerLogs:
    """The last `tail` lines of the scanner's log (ACI keeps only 16 KB once it has stopped)."""
    try:
        logs = container_instances(settings).containers.list_logs(
            settings.scanner_resource_group, group_name, SCANNER_CONTAINER_NAME, tail=tail
        )
    except ResourceNotFoundError:
        return ScannerLogs(group_name=group_name, exists=False)
    except HttpResponseError as error:
        raise classify(error) from error
    text = redact(logs.content or "", scanner_secrets(settings))
    return ScannerLogs(group_name=group_name, exists=True, log=text[-MAX_LOG_CHARS:])


def _status_code(response: Any, _deserialized: object, _headers: object) -> int:
    return int(response.http_response.status_code)


def delete_scanner_group(settings: Settings, group_name: str) -> bool:
    """One DELETE, no waiting for the long-running deletion; True when a group was there (200, or 202: deletion
    started), False when it was already gone (204, or 404: success too).
    """
    operations = container_instances(settings).container_groups
    try:
        status = operations.begin_delete(
            settings.scanner_resource_group, group_name, polling=False, cls=_status_code
        ).result()
    except ResourceNotFoundError:
        return False
    except HttpResponseError as error:
        raise classify(error) from error
    if status in DELETE_ACCEPTED:
        telemetry.group_deleted(settings.scanner_cpu)
    return status in DELETE_ACCEPTED


def _created_at(group: aci.ContainerGroup) -> datetime | None:
    """From the group's creation tag, else ARM's systemData.createdAt."""
    extra: dict[str, Any] = getattr(group, "additional_properties", None) or {}
    system_data = extra.get("systemData")
    candidates = [(group.tags or {}).get(TAG_CREATED), system_data.get("createdAt") if system_data else None]
    for text in candidates:
        if isinstance(text, str) and text:
            try:
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                continue
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


def list_scanner_groups(settings: Settings) -> list[ScannerGroupListing]:
    """The app's scanner groups in SCANNER_RESOURCE_GROUP (named qscan-* or tagged as managed)."""
    operations = container_instances(settings).container_groups
    listing: list[ScannerGroupListing] = []
    try:
        for group in operations.list_by_resource_group(settings.scanner_resource_group):
            tags = dict(group.tags or {})
            name = str(group.name or "")
            if not name.startswith(SCANNER_GROUP_PREFIX) and tags.get(TAG_MANAGED) != "true":
                continue
            view: Any = group.instance_view
            listing.append(
                ScannerGroupListing(
                    name=name,
                    tags=tags,
                    state=getattr(view, "state", None),
                    provisioning_state=getattr(group, "provisioning_state", None),
                    instance_id=tags.get(TAG_INSTANCE),
                    created_at=_created_at(group),
                )
            )
    except HttpResponseError as error:
        raise classify(error) from error
    return listing


def list_scanner_group_infos(settings: Settings) -> list[ScannerGroupInfo]:
    """`list_scanner_groups` in the janitor's terms."""
    return [
        ScannerGroupInfo(name=g.name, instance_id=g.instance_id, created_at=g.created_at)
        for g in list_scanner_groups(settings)
    ]


# --- activities -----------------------------------------------------------------------------------------------

aci_scanner_blueprint = df.Blueprint()
activity = activity_registrar(aci_scanner_blueprint)


@activity(names.CREATE_SCANNER_GROUP)
@failing_fast
def create_scanner_group_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `CreateScannerGroupRequest` -> `ScannerState` (with `created`)."""
    request = validated(CreateScannerGroupRequest, payload)
    return create_scanner_group(get_settings(), request).model_dump(mode="json")


@activity(names.GET_SCANNER_STATE)
@failing_fast
def get_scanner_state_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: {"group_name"} -> `ScannerState`."""
    return get_scanner_state(get_settings(), validated(GroupRequest, payload).group_name).model_dump(mode="json")


@activity(names.GET_SCANNER_LOGS)
@failing_fast
def get_scanner_logs_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: {"group_name", "tail"?} -> `ScannerLogs`."""
    request = validated(GroupRequest, payload)
    return get_scanner_logs(get_settings(), request.group_name, request.tail).model_dump(mode="json")


@activity(names.DELETE_SCANNER_GROUP)
@failing_fast
def delete_scanner_group_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: {"group_name"} -> {"group_name", "deleted"} (False when it was already gone)."""
    name = validated(GroupRequest, payload).group_name
    return {"group_name": name, "deleted": delete_scanner_group(get_settings(), name)}


@activity(names.LIST_SCANNER_GROUPS)
@failing_fast
def list_scanner_groups_activity(payload: dict[str, Any] | None) -> dict[str, Any]:
    """Activity: anything -> {"groups": [ScannerGroupListing...]}."""
    groups = list_scanner_groups(get_settings())
    return {"groups": [g.model_dump(mode="json") for g in groups]}
