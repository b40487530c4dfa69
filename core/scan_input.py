"""The input of `scan_deployment`: what to scan (a deployment or one image), the scan options and `force`."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.events import DeploymentEvent
from core.images import parse_image_ref
from core.options import ScanOptions

DEPLOYMENT_TARGET: Final = "deployment"
IMAGE_TARGET: Final = "image"
_LEGACY_EVENT_KEY = "event"
_TARGET_KEY = "target"


class DeploymentTarget(BaseModel):
    """Scan every image of a deployed ACI group, ACA app or ACA job (resolved through ARM)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["deployment"] = DEPLOYMENT_TARGET
    event: DeploymentEvent

    @property
    def label(self) -> str:
        """What the target is, for status and records: the resource id."""
        return self.event.resource_id


class ImageTarget(BaseModel):
    """Scan one image (a manual rescan through the HTTP API); the reference is stored canonical."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["image"] = IMAGE_TARGET
    image: str

    @field_validator("image")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return parse_image_ref(value).canonical

    @property
    def label(self) -> str:
        """What the target is, for status and records: the canonical image reference."""
        return self.image


ScanTarget = Annotated[DeploymentTarget | ImageTarget, Field(discriminator="kind")]


class ScanInput(BaseModel):
    """The orchestration input; no secret is ever part of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: ScanTarget
    options: ScanOptions = ScanOptions()
    force: bool = False
    rescan: bool = False
    """A scheduled re-check of an image that is still deployed (issue 11): it queues behind every deployment scan
    and alerts only when the image's findings changed. Absent in older inputs (then False)."""


def parse_scan_input(raw: object) -> ScanInput:
    """Validate the input, accepting the older shapes too.

    Shapes: `{"target": ..., "options": ..., "force": ...}`; `{"event": DeploymentEvent, "options": ...,
    "force": ...}` (the Event Hub starter's first shape); a bare `DeploymentEvent` with an optional `force`.
    Raises pydantic's ValidationError (a ValueError) when none fits.
    """
    if isinstance(raw, dict) and _TARGET_KEY not in raw:
        data: dict[str, Any] = dict(raw)
        if _LEGACY_EVENT_KEY in data:
            event = data.pop(_LEGACY_EVENT_KEY)
        else:
            event = {k: data.pop(k) for k in list(data) if k in DeploymentEvent.model_fields}
        raw = {**data, _TARGET_KEY: {"kind": DEPLOYMENT_TARGET, "event": event}}
    return ScanInput.model_validate(raw)


def scan_input_for_event(event: DeploymentEvent, options: ScanOptions, *, force: bool = False) -> dict[str, Any]:
    """The JSON input that starts a scan of a deployment."""
    return ScanInput(target=DeploymentTarget(event=event), options=options, force=force).model_dump(mode="json")


def scan_input_for_image(
    image: str, options: ScanOptions, *, force: bool = False, rescan: bool = False
) -> dict[str, Any]:
    """The JSON input that starts a scan of one image (canonicalised; raises InvalidImageRef for a bad ref)."""
    return ScanInput(target=ImageTarget(image=image), options=options, force=force, rescan=rescan).model_dump(
        mode="json"
    )
