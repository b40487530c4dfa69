"""ARM shapes the simulator speaks: resource ids, error bodies and the JSON of seeded workloads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from devhost.armsim.scenario import DeployedResource

PROVIDER_ACI = "microsoft.containerinstance"
PROVIDER_APP = "microsoft.app"
TYPE_CONTAINER_GROUPS = "containergroups"
TYPE_CONTAINER_APPS = "containerapps"
TYPE_JOBS = "jobs"
ARM_TYPES = {
    (PROVIDER_ACI, TYPE_CONTAINER_GROUPS): "Microsoft.ContainerInstance/containerGroups",
    (PROVIDER_APP, TYPE_CONTAINER_APPS): "Microsoft.App/containerApps",
    (PROVIDER_APP, TYPE_JOBS): "Microsoft.App/jobs",
}
DEFAULT_LOCATION = "westeurope"
CODE_NOT_FOUND = "ResourceNotFound"
CODE_QUOTA = "ContainerGroupQuotaReached"
DEFAULT_ERROR_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    404: CODE_NOT_FOUND,
    409: CODE_QUOTA,
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}

_RESOURCE_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/(?P<provider>[^/]+)/"
    r"(?P<type>[^/]+)(?:/(?P<name>[^/]+)(?P<rest>/.*)?)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ArmPath:
    """A parsed resource path: subscription, group, provider, type, optional name and sub-path (all as sent)."""

    subscription: str
    resource_group: str
    provider: str
    type: str
    name: str | None
    rest: str

    @property
    def kind(self) -> tuple[str, str]:
        return (self.provider.lower(), self.type.lower())

    def resource_id(self) -> str:
        """The resource's id with ARM's canonical casing of provider and type."""
        arm_type = ARM_TYPES.get(self.kind, f"{self.provider}/{self.type}")
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/{arm_type}/{self.name}"
        )

    def key(self) -> str:
        """Case-insensitive identity of the resource (ARM ids are case-insensitive)."""
        return self.resource_id().lower()


def parse_arm_path(path: str) -> ArmPath | None:
    """Parse `/subscriptions/.../providers/<ns>/<type>[/<name>[/...]]`; None for anything else."""
    match = _RESOURCE_RE.match(path.rstrip("/"))
    if not match:
        return None
    return ArmPath(
        match["sub"], match["rg"], match["provider"], match["type"], match["name"], (match["rest"] or "").lower()
    )


def arm_error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """ARM's error envelope."""
    return {"error": {"code": code or DEFAULT_ERROR_CODES.get(status, "Error"), "message": message}}


def not_found(resource: str) -> dict[str, Any]:
    return arm_error(404, f"The Resource '{resource}' was not found.", CODE_NOT_FOUND)


def _container_names(images: list[str], prefix: str) -> list[str]:
    names: list[str] = []
    for index, image in enumerate(images):
        base = re.sub(r"[^a-z0-9-]", "-", image.split("@")[0].rsplit("/", 1)[-1].split(":")[0].lower()).strip("-")
        names.append(f"{prefix}{base or 'container'}-{index}")
    return names


def seeded_resource_json(resource: DeployedResource, path: ArmPath) -> dict[str, Any]:
    """The GET body of a workload named in the scenario (a container group, container app or job)."""
    names = _container_names(resource.images, "")
    init_names = _container_names(resource.init_images, "init-")
    common: dict[str, Any] = {
        "id": path.resource_id(),
        "name": path.name,
        "type": ARM_TYPES.get(path.kind, f"{path.provider}/{path.type}"),
        "location": resource.location,
        "tags": {},
    }
    if path.kind == (PROVIDER_ACI, TYPE_CONTAINER_GROUPS):
        running = {"restartCount": 0, "currentState": {"state": "Running", "detailStatus": ""}}
        containers = [
            {
                "name": n,
                "properties": {
                    "image": img,
                    "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.5}},
                    "instanceView": running,
                },
            }
            for n, img in zip(names, resource.images, strict=True)
        ]
        inits = [
            {"name": n, "properties": {"image": img}} for n, img in zip(init_names, resource.init_images, strict=True)
        ]
        properties: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "containers": containers,
            "initContainers": inits,
            "osType": "Linux",
            "restartPolicy": "Always",
            "instanceView": {"state": "Running", "events": []},
        }
        return {**common, "properties": properties}
    template = {
        "containers": [{"name": n, "image": img} for n, img in zip(names, resource.images, strict=True)],
        "initContainers": [{"name": n, "image": img} for n, img in zip(init_names, resource.init_images, strict=True)],
    }
    properties = {"provisioningState": "Succeeded", "template": template}
    if path.kind == (PROVIDER_APP, TYPE_JOBS):
        properties["configuration"] = {"triggerType": "Manual", "replicaTimeout": 1800, "replicaRetryLimit": 0}
    return {**common, "properties": properties}
