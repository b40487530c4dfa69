"""ACI's regional limits and ARM's api-version rule, as the simulator enforces them (pure checks, no state).

Sources:
- Limits: learn.microsoft.com/azure/container-instances/container-instances-resource-and-quota-limits: 100 Standard
  container groups and 100 Standard cores per subscription and region (both adjustable), 100 creates per 5 minutes
  and 300 per hour, as many deletes, at most 60 containers in a group. A scenario may lower them (`ARMSIM_*`), never
  raise them.
- Quota refusal: code `ContainerGroupQuotaReached` with HTTP 400 and the message
  "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota '<quota>' exceeded in region
  '<region>'. Limit: '<n>', Usage: '<n>' Requested: '<n>'." (captured errors: MicrosoftDocs/azure-docs issue
  51738, Microsoft's troubleshooting article "ContainerGroupQuotaReached error ..." for StandardSpotCores).
  The quota name 'StandardCores' is captured; 'ContainerGroups' and the create and delete rate names are this
  simulator's (ACI's own answer for them is not published), in the same shape and with the same code.
- The 60-container refusal: ACI's code for it is not published; answered as ARM's generic 400 `BadRequest`.
- api-version: ARM refuses a request without one (400 `MissingApiVersionParameter`) or with one the resource
  provider does not serve (400 `InvalidApiVersionParameter`, "The api-version '<v>' is invalid. The supported
  versions are '<list>'.").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from devhost.armsim import arm

ACI_API_VERSIONS = (
    "2018-10-01",
    "2019-12-01",
    "2020-11-01",
    "2021-03-01",
    "2021-07-01",
    "2021-09-01",
    "2021-10-01",
    "2022-09-01",
    "2023-05-01",
)
"""Microsoft.ContainerInstance GA versions; azure-mgmt-containerinstance 10.1.0 (the app's pin) sends 2023-05-01."""
APP_API_VERSIONS = (
    "2022-03-01",
    "2022-10-01",
    "2023-05-01",
    "2023-08-01-preview",
    "2024-03-01",
    "2025-01-01",
    "2026-07-01",
)
"""Microsoft.App versions; azure-mgmt-appcontainers 5.1.0 (the app's pin) sends its default 2026-07-01."""
API_VERSIONS = {arm.PROVIDER_ACI: ACI_API_VERSIONS, arm.PROVIDER_APP: APP_API_VERSIONS}
QUOTA_GROUPS = "ContainerGroups"
QUOTA_CORES = "StandardCores"
QUOTA_CREATES_5_MINUTES = "ContainerGroupCreatesPer5Minutes"
QUOTA_CREATES_HOUR = "ContainerGroupCreatesPerHour"
QUOTA_DELETES_5_MINUTES = "ContainerGroupDeletesPer5Minutes"
QUOTA_DELETES_HOUR = "ContainerGroupDeletesPerHour"
_FIVE_MINUTES = timedelta(minutes=5)
_HOUR = timedelta(hours=1)


def api_version_error(provider: str, version: str | None) -> dict[str, Any] | None:
    """ARM's 400 body for a missing or unserved api-version of `provider`, None when it is served (or when the
    simulator does not model `provider` at all: such paths answer 404).
    """
    if provider.lower() not in API_VERSIONS:
        return None
    if version is None or not version.strip():
        return arm.arm_error(
            400,
            "The api-version query parameter (?api-version=) is required for all requests.",
            "MissingApiVersionParameter",
        )
    supported = API_VERSIONS.get(provider.lower())
    if supported is None or version in supported:
        return None
    return arm.arm_error(
        400,
        f"The api-version '{version}' is invalid. The supported versions are '{','.join(supported)}'.",
        "InvalidApiVersionParameter",
    )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def quota_error(location: str, quota: str, limit: float, usage: float, requested: float) -> dict[str, Any]:
    """ACI's refusal of a create for quota: code ContainerGroupQuotaReached, the quota named in the message."""
    return arm.arm_error(
        400,
        f"Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota '{quota}' exceeded in "
        f"region '{location}'. Limit: '{_number(limit)}', Usage: '{_number(usage)}' Requested: '{_number(requested)}'.",
        arm.CODE_QUOTA,
    )


def group_cores(body: dict[str, Any]) -> float:
    """The cores a container group counts against StandardCores: the CPU requests of its containers."""
    total = 0.0
    for container in body.get("properties", {}).get("containers") or []:
        requests = container.get("properties", {}).get("resources", {}).get("requests", {})
        try:
            total += float(requests.get("cpu") or 0)
        except (TypeError, ValueError):
            continue
    return total


def region_key(location: str) -> str:
    """'West Europe' and 'westeurope' are one region."""
    return location.replace(" ", "").lower()


def scope(resource_id: str, location: str) -> tuple[str, str]:
    """(subscription, region) of a resource: ACI's limits apply per subscription and region."""
    return resource_id.split("/")[2].lower(), region_key(location)


def recorded(times: list[datetime], now: datetime) -> list[datetime]:
    """`times` of the last hour (what the rate limits look at) and `now`."""
    return [*(t for t in times if now - t < _HOUR), now]


def refusal(
    *,
    location: str,
    cores: float,
    groups_in_region: int,
    cores_in_region: float,
    creates: Iterable[datetime],
    now: datetime,
    limits: Any,
) -> dict[str, Any] | None:
    """The quota refusal of a new group of `cores` in `location`, or None when every limit allows it.

    Groups and cores count every group of the subscription in the region until its deletion completes; creates
    count the successful PUTs of new groups in the rolling 5 minutes and hour.
    """
    if groups_in_region + 1 > limits.max_container_groups:
        return quota_error(location, QUOTA_GROUPS, limits.max_container_groups, groups_in_region, 1)
    if cores_in_region + cores > limits.max_cores + 1e-9:
        return quota_error(location, QUOTA_CORES, limits.max_cores, cores_in_region, cores)
    rates = (
        (QUOTA_CREATES_5_MINUTES, limits.max_creates_per_5_minutes),
        (QUOTA_CREATES_HOUR, limits.max_creates_per_hour),
    )
    return rate_refusal(location, creates, now, rates)


def rate_refusal(
    location: str, times: Iterable[datetime], now: datetime, rates: tuple[tuple[str, int], tuple[str, int]]
) -> dict[str, Any] | None:
    """The refusal of one more create or delete when `times` (the earlier ones) use up a rate: ((name, per 5
    minutes), (name, per hour)); None when both allow it.
    """
    recent = [t for t in times if now - t < _HOUR]
    last_5 = sum(1 for t in recent if now - t < _FIVE_MINUTES)
    (name_5, per_5), (name_hour, per_hour) = rates
    if last_5 + 1 > per_5:
        return quota_error(location, name_5, per_5, last_5, 1)
    if len(recent) + 1 > per_hour:
        return quota_error(location, name_hour, per_hour, len(recent), 1)
    return None


def too_many_containers(name: str, count: int, limit: int) -> dict[str, Any] | None:
    """The refusal of a group with more than `limit` containers (ACI: 60), None otherwise."""
    if count <= limit:
        return None
    return arm.arm_error(
        400, f"The container group '{name}' has {count} containers; at most {limit} are allowed.", "BadRequest"
    )
