"""Container groups created through the simulator: stored spec, timed lifecycle, instance view and uploads."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devhost.armsim import scanner_run
from devhost.armsim.scenario import Scenario, SimSettings

LOG_CAP_BYTES = 16 * 1024  # ACI keeps only 16 KB ...
LOG_CAP_LINES = 1000  # ... or 1,000 lines of a stopped container's log
CAPACITY_EVENT = "ServiceUnavailable"
CAPACITY_MESSAGE = (
    "The requested resource is not available in the location '{location}' at this moment. Please retry your "
    "request or try to deploy to a different location or resource group."
)
"""ACI's late capacity failure of a group whose PUT succeeded (shared reference azure.md; `az container create`
reports it as "(ServiceUnavailable) The requested resource is not available in the location ...")."""


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _env(container: dict[str, Any]) -> dict[str, str]:
    """Plain and secure environment values of a container, as the process inside would see them."""
    values: dict[str, str] = {}
    for var in container.get("properties", {}).get("environmentVariables") or []:
        value = var.get("secureValue") if var.get("secureValue") is not None else var.get("value")
        if var.get("name") and value is not None:
            values[str(var["name"])] = str(value)
    return values


def _strip_secrets(body: dict[str, Any]) -> dict[str, Any]:
    """The group as GET shows it: secure env values and secret volume contents are never returned."""
    shown = copy.deepcopy(body)
    props = shown.setdefault("properties", {})
    for key in ("containers", "initContainers"):
        for container in props.get(key) or []:
            for var in container.get("properties", {}).get("environmentVariables") or []:
                var.pop("secureValue", None)
    for volume in props.get("volumes") or []:
        if "secret" in volume:
            volume["secret"] = {}
    return shown


@dataclass
class SimGroup:
    """One container group PUT to the simulator, running the fake scanner when its env asks for it."""

    path_id: str
    name: str
    body: dict[str, Any]
    created_at: datetime
    start_at: datetime
    plan: scanner_run.ScanPlan | None
    sas_url: str | None
    prefix: str
    operation_id: str
    scan_images: list[str] = field(default_factory=list)
    uploaded: set[int] = field(default_factory=set)
    upload_failures: int = 0
    capacity_failure: bool = False
    gone_at: datetime | None = None  # set by DELETE: the group is deleting until then (its cores still count)
    delete_operation_id: str | None = None
    on_upload: Callable[[SimGroup, str, int, str, datetime], None] | None = None  # blob_events.BlobEvents.attach

    @classmethod
    def create(
        cls,
        path_id: str,
        name: str,
        body: dict[str, Any],
        *,
        now: datetime,
        scenario: Scenario,
        operation_id: str,
        scans_before: Mapping[str, int] | None = None,
    ) -> SimGroup:
        """A group PUT at `now`: if its first container carries SCAN_IMAGES, it runs the fake scanner."""
        sim = scenario.sim_settings()
        containers = body.get("properties", {}).get("containers") or []
        env = _env(containers[0]) if containers else {}
        start = now + timedelta(seconds=sim.provisioning_delay_s)
        plan = None
        images: list[str] = []
        if scanner_run.ENV_SCAN_IMAGES in env:
            images = [line.strip() for line in env[scanner_run.ENV_SCAN_IMAGES].splitlines() if line.strip()]
            raw_timeout = env.get(scanner_run.ENV_SCAN_TIMEOUT_PER_IMAGE, "").strip()
            timeout = float(raw_timeout) if raw_timeout and float(raw_timeout) > 0 else None
            plan = scanner_run.plan_scan(scenario, images, timeout, start, env=env, scans_before=scans_before)
        return cls(
            path_id=path_id,
            name=name,
            body=copy.deepcopy(body),
            created_at=now,
            start_at=start,
            plan=plan,
            sas_url=env.get(scanner_run.ENV_RESULTS_SAS_URL),
            prefix=env.get(scanner_run.ENV_RESULTS_PREFIX, ""),
            operation_id=operation_id,
            scan_images=images,
        )

    @property
    def location(self) -> str:
        return str(self.body.get("location") or "westeurope")

    def provisioned(self, now: datetime) -> bool:
        return now >= self.start_at

    @property
    def deleting(self) -> bool:
        return self.gone_at is not None

    def failed_for_capacity(self, now: datetime) -> bool:
        """Provisioning failed late (after a successful PUT) for lack of capacity in the region."""
        return self.capacity_failure and self.provisioned(now)

    def capacity_message(self) -> str:
        return CAPACITY_MESSAGE.format(location=self.location)

    def exited(self, now: datetime) -> bool:
        return (
            not self.capacity_failure
            and self.plan is not None
            and self.plan.finished_at is not None
            and now >= self.plan.finished_at
        )

    def catch_up(self, now: datetime, sim: SimSettings) -> None:
        """Upload every image result whose finish time has passed and that was not uploaded yet."""
        if self.plan is None or self.capacity_failure:
            return
        for outcome in self.plan.images:
            if outcome.finished_at is None or outcome.finished_at > now or outcome.index in self.uploaded:
                continue
            self.uploaded.add(outcome.index)
            for blob_name, data, content_type in scanner_run.image_blobs(outcome, self.prefix, sim.log_lines_per_image):
                if not self.sas_url or not scanner_run.upload_blob(self.sas_url, blob_name, data, content_type):
                    self.upload_failures += 1
                elif self.on_upload is not None and outcome.finished_at is not None:
                    self.on_upload(self, blob_name, len(data), content_type, outcome.finished_at)

    def _container_view(self, now: datetime) -> dict[str, Any]:
        if not self.provisioned(now) or self.capacity_failure:
            return {"restartCount": 0, "currentState": {"state": "Waiting", "detailStatus": "ContainerCreating"}}
        state: dict[str, Any] = {"state": "Running", "startTime": _iso(self.start_at), "detailStatus": ""}
        if self.exited(now):
            assert self.plan is not None and self.plan.finished_at is not None
            code = self.plan.exit_code
            state = {
                "state": "Terminated",
                "startTime": _iso(self.start_at),
                "finishTime": _iso(self.plan.finished_at),
                "exitCode": code,
                "detailStatus": "Completed" if code == 0 else "Error",
            }
        return {"restartCount": 0, "currentState": state, "events": []}

    def group_state(self, now: datetime) -> str:
        if not self.provisioned(now):
            return "Pending"
        if self.capacity_failure:
            return "Failed"
        if self.exited(now):
            assert self.plan is not None
            return "Succeeded" if self.plan.exit_code == 0 else "Failed"
        return "Running"

    def view(self, now: datetime, *, provisioning_state: str | None = None) -> dict[str, Any]:
        """The GET body at `now`, with the instance view and without secrets."""
        shown = _strip_secrets(self.body)
        props = shown["properties"]
        shown.update({"id": self.path_id, "name": self.name, "type": "Microsoft.ContainerInstance/containerGroups"})
        shown["location"] = self.location
        shown["systemData"] = {"createdAt": _iso(self.created_at), "createdByType": "ManagedIdentity"}
        state = "Succeeded" if self.provisioned(now) else "Creating"
        events: list[dict[str, Any]] = []
        if self.failed_for_capacity(now):
            state = "Failed"
            when = _iso(self.start_at)
            events = [
                {
                    "count": 1,
                    "firstTimestamp": when,
                    "lastTimestamp": when,
                    "name": CAPACITY_EVENT,
                    "message": self.capacity_message(),
                    "type": "Warning",
                }
            ]
        props["provisioningState"] = provisioning_state or ("Deleting" if self.deleting else state)
        props.setdefault("osType", "Linux")
        props["instanceView"] = {"state": self.group_state(now), "events": events}
        for index, container in enumerate(props.get("containers") or []):
            view = (
                self._container_view(now) if index == 0 else {"restartCount": 0, "currentState": {"state": "Running"}}
            )
            container.setdefault("properties", {})["instanceView"] = view
        return shown

    def log_text(self, now: datetime, sim: SimSettings, tail: int | None) -> str:
        """The container log at `now`; after exit only the last 16 KB / 1,000 lines survive, as in ACI."""
        lines: list[str] = []
        if self.provisioned(now) and self.plan is not None and not self.capacity_failure:
            for outcome in self.plan.images:
                if outcome.started_at > now:
                    break
                done = outcome.finished_at is not None and outcome.finished_at <= now
                lines += scanner_run.image_log_lines(outcome, sim.log_lines_per_image, finished=done)
            if self.exited(now):
                lines.append(f"scanner exiting with code {self.plan.exit_code}")
                lines = lines[-LOG_CAP_LINES:]
                text = "\n".join(lines) + "\n"
                encoded = text.encode("utf-8")[-LOG_CAP_BYTES:]
                lines = encoded.decode("utf-8", errors="ignore").splitlines()
        if tail is not None and tail >= 0:
            lines = lines[-tail:] if tail else []
        return "\n".join(lines) + ("\n" if lines else "")
