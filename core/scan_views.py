"""How `scan_deployment` reads activity outputs: resolved images, digests and a scanner group's state (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.report import ImageResult, clip_reason

TERMINAL_GROUP_STATES = frozenset({"succeeded", "failed", "stopped"})
FAILED_PROVISIONING_STATES = frozenset({"failed"})
TERMINATED_CONTAINER_STATE = "terminated"
SUCCEEDED_GROUP_STATE = "succeeded"
MISSING_IMAGE_TEXT = "<empty>"
LOG_TAIL_CHARS = 300


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ResolvedImageView(_View):
    """One container's canonical image."""

    image: str


class RejectedImageView(_View):
    """A container whose image reference is not valid."""

    image: str = ""
    container: str = ""
    reason: str = "invalid image reference"

    def shown_image(self) -> str:
        """The reference as it can be stored (control characters replaced, never empty)."""
        return clip_reason(self.image) or MISSING_IMAGE_TEXT


class ExcludedImageView(_View):
    """A container whose image SCAN_EXCLUDE keeps from being scanned."""

    image: str
    container: str = ""
    reason: str = "excluded by SCAN_EXCLUDE"

    def result(self, instance_id: str | None = None) -> ImageResult:
        """The image's final result: `skipped` (never alerts, never cached) with the SCAN_EXCLUDE entry as reason."""
        return ImageResult(image=self.image, status="skipped", reason=clip_reason(self.reason), instance_id=instance_id)


class ResolvedView(_View):
    """Output of `resolve_images`."""

    found: bool = True
    images: list[ResolvedImageView] = Field(default_factory=list)
    rejected: list[RejectedImageView] = Field(default_factory=list)
    excluded: list[ExcludedImageView] = Field(default_factory=list)
    note: str | None = None

    def distinct_images(self) -> list[str]:
        """Each image once, first seen first."""
        return list(dict.fromkeys(item.image for item in self.images))


class DigestView(_View):
    """One answer of `resolve_digests`."""

    image: str
    digest: str | None = None


class DigestsView(_View):
    """Output of `resolve_digests`."""

    images: list[DigestView] = Field(default_factory=list)

    def by_image(self) -> dict[str, str | None]:
        """Image -> digest (None when the canonical reference is used)."""
        return {item.image: item.digest for item in self.images}


class ContainerView(_View):
    """The scanner container's instance view, as far as the orchestration needs it."""

    state: str | None = None
    exit_code: int | None = None
    restart_count: int = 0
    detail_status: str | None = None


class ScannerStateView(_View):
    """Output of `get_scanner_state`: the group's state and its (single) scanner container."""

    exists: bool = True
    state: str | None = None
    provisioning_state: str | None = None
    container: ContainerView | None = None
    containers: list[ContainerView] = Field(default_factory=list)
    capacity_failure: str | None = None

    def scanner(self) -> ContainerView | None:
        """The scanner container (the only one of the group)."""
        return self.container or (self.containers[0] if self.containers else None)


class GroupVerdict(BaseModel):
    """What one poll says about a group: finished or not, cleanly or not, and why (for images without a result)."""

    model_config = ConfigDict(frozen=True)

    state: str
    terminal: bool
    clean: bool = False
    exit_code: int | None = None
    reason: str | None = None
    capacity_failure: str | None = None
    """ACI's message when provisioning failed for lack of capacity in the region: create the group again later."""


def group_verdict(raw: Mapping[str, Any] | None) -> GroupVerdict:
    """Interpret one `get_scanner_state` answer.

    Terminal: the group is gone, its provisioning failed, its state is Succeeded/Failed/Stopped, or the scanner
    container is Terminated (restart policy Never). Clean: it ended with exit code 0.
    """
    view = ScannerStateView.model_validate(raw or {"exists": False})
    if not view.exists:
        return GroupVerdict(state="Missing", terminal=True, reason="the scanner group no longer exists")
    container = view.scanner()
    state = view.state or view.provisioning_state or "Pending"
    exit_code = container.exit_code if container else None
    container_done = container is not None and (container.state or "").lower() == TERMINATED_CONTAINER_STATE
    if (view.provisioning_state or "").lower() in FAILED_PROVISIONING_STATES:
        detail = view.capacity_failure or (container.detail_status if container else None)
        failed = "scanner group provisioning failed" + (f": {detail}" if detail else "")
        return GroupVerdict(
            state=state,
            terminal=True,
            exit_code=exit_code,
            reason=clip_reason(failed),
            capacity_failure=view.capacity_failure,
        )
    if state.lower() not in TERMINAL_GROUP_STATES and not container_done:
        return GroupVerdict(state=state, terminal=False)
    clean = exit_code == 0 or (exit_code is None and state.lower() == SUCCEEDED_GROUP_STATE)
    reason: str | None = None if clean else f"scanner group {state}, scanner exit code {exit_code}"
    return GroupVerdict(state=state, terminal=True, clean=clean, exit_code=exit_code, reason=reason)


def failure_reason(verdict: GroupVerdict | None, log_text: str | None, *, timed_out: bool, timeout_s: int) -> str:
    """Why images of a group have no result: the deadline or the group's end, with the end of its log."""
    if timed_out:
        reason = f"no result within SCAN_TIMEOUT ({timeout_s} s)"
    else:
        reason = (verdict.reason if verdict else None) or "the scanner finished without a result for this image"
    if log_text:
        tail = clip_reason(log_text[-LOG_TAIL_CHARS:])
        reason = f"{reason}; log tail: {tail}"
    return clip_reason(reason)
