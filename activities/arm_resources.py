"""Activity `resolve_images`: the images (containers and init containers) of an ACI group, ACA app or ACA job."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import azure.durable_functions as df
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from pydantic import BaseModel, ConfigDict, Field

from activities import names
from activities.activity_registry import activity_registrar, validated
from activities.clients import classify, container_apps, container_instances, failing_fast
from core.events import DeploymentEvent
from core.images import InvalidImageRef, parse_image_ref
from core.scope import exclusions_of
from core.settings import Settings, get_settings

MAX_SHOWN_IMAGE_CHARS = 200
NOT_FOUND_NOTE = "resource not found (deleted before it could be resolved)"
EXCLUDED_NOTE = "every image is excluded by SCAN_EXCLUDE"
SCANNER_GROUP_NOTE = "in the scanner's own resource group: never scanned (no feedback loop)"


class ResolvedImage(BaseModel):
    """One container's image, canonical; `init` marks an init container."""

    model_config = ConfigDict(frozen=True)

    image: str
    container: str
    init: bool = False


class RejectedImage(BaseModel):
    """A container whose image reference could not be parsed: reported, never fatal."""

    model_config = ConfigDict(frozen=True)

    image: str
    container: str
    init: bool = False
    reason: str


class ExcludedImage(BaseModel):
    """A container whose canonical image SCAN_EXCLUDE keeps from being scanned (`reason` names the entry)."""

    model_config = ConfigDict(frozen=True)

    image: str
    container: str
    init: bool = False
    reason: str


class ResolvedImages(BaseModel):
    """Output of `resolve_images`: one entry per container (an image used twice appears twice)."""

    model_config = ConfigDict(frozen=True)

    resource_id: str
    found: bool
    images: list[ResolvedImage] = Field(default_factory=list)
    rejected: list[RejectedImage] = Field(default_factory=list)
    excluded: list[ExcludedImage] = Field(default_factory=list)
    note: str | None = None

    def distinct_images(self) -> list[str]:
        """The canonical images, each once, in first-seen order."""
        return list(dict.fromkeys(item.image for item in self.images))


Container = tuple[str | None, str | None, bool]


def read_workload(event: DeploymentEvent, settings: Settings) -> tuple[str | None, list[Container]]:
    """The resource's location and (container name, image, is init) per container; ResourceNotFoundError if gone."""
    if event.kind == "aci":
        group = container_instances(settings, event.subscription_id).container_groups.get(
            event.resource_group, event.name
        )
        containers: list[Container] = [(c.name, c.image, False) for c in group.containers or []]
        containers += [(c.name, c.image, True) for c in group.init_containers or []]
        return group.location, containers
    client = container_apps(settings, event.subscription_id)
    resource: Any
    if event.kind == "aca":
        resource = client.container_apps.get(event.resource_group, event.name)
    else:
        resource = client.jobs.get(event.resource_group, event.name)
    template: Any = resource.properties.template if resource.properties is not None else None
    if template is None:
        return resource.location, []
    found: list[Container] = [(c.name, c.image, False) for c in template.containers or []]
    found += [(c.name, c.image, True) for c in template.init_containers or []]
    return resource.location, found


def _containers(event: DeploymentEvent, settings: Settings) -> Iterable[Container]:
    """(container name, image, is init) of the deployed resource; raises ResourceNotFoundError when it is gone."""
    yield from read_workload(event, settings)[1]


def in_scanner_resource_group(event: DeploymentEvent, settings: Settings) -> bool:
    """True for a resource where the app creates its scanner groups (whatever path started the scan)."""
    return event.in_resource_group(str(settings.azure_subscription_id), settings.scanner_resource_group)


def resolve_images(event: DeploymentEvent, settings: Settings) -> ResolvedImages:
    """Read the resource through ARM and normalise each container's image with `core.images`.

    A resource that no longer exists, one in SCANNER_RESOURCE_GROUP (read nothing: the scanner never scans its own
    groups) or one that SCAN_EXCLUDE excludes by `rg:`/`resource:` yields `found=False` with a note. An
    unparseable image is listed under `rejected`; an image that an `image:` entry of SCAN_EXCLUDE matches, under
    `excluded`. Throttling and server errors raise `ArmRetryableError` (see activities.clients); the registered
    activity answers any other ARM error at once (401/403, a 404 of the subscription or group, 400) as a
    non-retryable error instead of raising it five times.
    """
    if in_scanner_resource_group(event, settings):
        return ResolvedImages(resource_id=event.resource_id, found=False, note=SCANNER_GROUP_NOTE)
    rules = exclusions_of(settings)
    if (excluded_resource := rules.reason(resource_id=event.resource_id)) is not None:
        return ResolvedImages(resource_id=event.resource_id, found=False, note=excluded_resource)
    images: list[ResolvedImage] = []
    rejected: list[RejectedImage] = []
    excluded: list[ExcludedImage] = []
    try:
        for container, image, init in _containers(event, settings):
            name = container or ""
            try:
                canonical = parse_image_ref(image or "").canonical
            except InvalidImageRef as error:
                shown = (image or "")[:MAX_SHOWN_IMAGE_CHARS]
                rejected.append(RejectedImage(image=shown, container=name, init=init, reason=str(error)))
                continue
            reason = rules.reason(image=canonical)
            if reason is not None:
                excluded.append(ExcludedImage(image=canonical, container=name, init=init, reason=reason))
                continue
            images.append(ResolvedImage(image=canonical, container=name, init=init))
    except ResourceNotFoundError:
        return ResolvedImages(resource_id=event.resource_id, found=False, note=NOT_FOUND_NOTE)
    except HttpResponseError as error:
        raise classify(error) from error
    note = None if images or rejected or excluded else "the resource has no containers"
    if excluded and not images and not rejected:
        note = EXCLUDED_NOTE
    return ResolvedImages(
        resource_id=event.resource_id, found=True, images=images, rejected=rejected, excluded=excluded, note=note
    )


# --- activities -----------------------------------------------------------------------------------------------

arm_resources_blueprint = df.Blueprint()
activity = activity_registrar(arm_resources_blueprint)


@activity(names.RESOLVE_IMAGES)
@failing_fast
def resolve_images_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: `DeploymentEvent` JSON (extra keys such as `force` ignored) -> `ResolvedImages`."""
    fields = (
        {k: v for k, v in payload.items() if k in DeploymentEvent.model_fields}
        if isinstance(payload, dict)
        else payload
    )
    return resolve_images(validated(DeploymentEvent, fields), get_settings()).model_dump(mode="json")
