"""ARM resource ids of scan targets: ACI container groups, ACA container apps and ACA jobs, as ARM names them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DeploymentKind = Literal["aci", "aca", "aca-job"]
MAX_LOGGED_CHARS = 200
ACA_NAME_MIN, ACA_NAME_MAX = 2, 32

_ACI_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ACA_NAME = re.compile(r"[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]")
_RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]")
_SUBSCRIPTION = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class _ResourceType:
    kind: DeploymentKind
    arm_type: str  # provider/type as ARM spells it
    name_pattern: re.Pattern[str]
    name_rule: str


_RESOURCE_TYPES: dict[str, _ResourceType] = {
    rt.arm_type.lower(): rt
    for rt in (
        _ResourceType("aci", "Microsoft.ContainerInstance/containerGroups", _ACI_NAME, "1-63 a-z 0-9 -, no edge -"),
        _ResourceType("aca", "Microsoft.App/containerApps", _ACA_NAME, "2-32 a-z 0-9 -, letter first, no --"),
        _ResourceType("aca-job", "Microsoft.App/jobs", _ACA_NAME, "2-32 a-z 0-9 -, letter first, no --"),
    )
}
_ARM_TYPE_BY_KIND = {rt.kind: rt.arm_type for rt in _RESOURCE_TYPES.values()}
TARGET_OPERATIONS: dict[str, _ResourceType] = {f"{key}/write": rt for key, rt in _RESOURCE_TYPES.items()}
"""Lower-case write operation -> resource type: the only operations that are scan targets."""
DELETE_OPERATIONS: dict[str, _ResourceType] = {f"{key}/delete": rt for key, rt in _RESOURCE_TYPES.items()}
"""Lower-case delete operation -> resource type: inventory removals, never scan targets."""


class InvalidResourceId(ValueError):
    """Not the exact resource id of an ACI container group, ACA container app or ACA job."""


def clip(value: object) -> str:
    """`value` as text cut to MAX_LOGGED_CHARS, for log lines and error messages."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_LOGGED_CHARS else text[:MAX_LOGGED_CHARS] + "..."


@dataclass(frozen=True, slots=True)
class ResourceParts:
    """The parts of a target's resource id, with the name lower-cased (ACI and ACA names are lower case)."""

    kind: DeploymentKind
    subscription_id: str
    resource_group: str
    name: str

    @property
    def resource_id(self) -> str:
        """The ARM-cased resource id."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{_ARM_TYPE_BY_KIND[self.kind]}/{self.name}"
        )


def parse_resource_id(resource_id: str, expected_type: str | None = None) -> ResourceParts:
    """Split the exact resource id of a target resource (no child path); `expected_type` is lower provider/type."""
    if not isinstance(resource_id, str):
        raise InvalidResourceId("resource id is not a string")
    parts = resource_id.split("/")
    if (
        len(parts) != 9
        or parts[0]
        or parts[1].lower() != "subscriptions"
        or parts[3].lower() != "resourcegroups"
        or parts[5].lower() != "providers"
    ):
        raise InvalidResourceId(f"not the exact id of a target resource: {clip(resource_id)}")
    type_key = f"{parts[6]}/{parts[7]}".lower()
    resource_type = _RESOURCE_TYPES.get(type_key)
    if resource_type is None or (expected_type is not None and type_key != expected_type):
        raise InvalidResourceId(f"resource type {clip(type_key)} is not the operation's target type")
    subscription_id, resource_group, name = parts[2].lower(), parts[4], parts[8].lower()
    if not _SUBSCRIPTION.fullmatch(subscription_id):
        raise InvalidResourceId(f"subscription id is not a GUID: {clip(parts[2])}")
    if not _RESOURCE_GROUP.fullmatch(resource_group):
        raise InvalidResourceId(f"resource group name ARM would reject: {clip(resource_group)}")
    if not resource_type.name_pattern.fullmatch(name) or (
        resource_type.kind != "aci" and not ACA_NAME_MIN <= len(name) <= ACA_NAME_MAX
    ):
        raise InvalidResourceId(f"{resource_type.kind} name ARM would reject ({resource_type.name_rule}): {clip(name)}")
    return ResourceParts(resource_type.kind, subscription_id, resource_group, name)
