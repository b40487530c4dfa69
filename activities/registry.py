"""Tag -> digest through the OCI distribution API (anonymous, or ACR with the app identity); failures fall back."""

from __future__ import annotations

import logging
import math
import re
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
from azure.core.credentials import TokenCredential
from pydantic import BaseModel, ConfigDict, Field

from activities import clients, names
from activities.activity_registry import activity_registrar, validated
from activities.registry_auth import (
    BUDGET_SPENT_REASON,
    UNREACHABLE_ERRORS,
    AcrIdentityTokens,
    AuthenticationRequired,
    RegistryError,
    RegistryRefused,
    RequestBudget,
    anonymous_token,
    http_request,
)
from core.images import DEFAULT_REGISTRY, InvalidImageRef, parse_image_ref
from core.network_policy import NetworkPolicy
from core.report import DIGEST_PATTERN, ImageRef, clip_reason
from core.setting_types import check_url
from core.settings import get_settings

log = logging.getLogger(__name__)

DOCKER_HUB_API_HOST = "registry-1.docker.io"
MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DIGEST_HEADER = "Docker-Content-Digest"
CHALLENGE_HEADER = "WWW-Authenticate"
MAX_IMAGES = 500
DISABLED_REASON = "digest resolution is disabled (RESOLVE_DIGESTS=false)"
UNREACHABLE_PREFIX = "registry unreachable"
REFUSED_PREFIX = "registry refused"
_DIGEST = re.compile(DIGEST_PATTERN)


class DigestResolution(BaseModel):
    """The digest a tag points to now, or None with the reason the canonical reference is used instead."""

    model_config = ConfigDict(frozen=True)

    image: str
    digest: str | None = None
    reason: str | None = None


class ResolveRequest(BaseModel):
    """Input of the `resolve_digests` activity: canonical image references."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    images: list[ImageRef] = Field(max_length=MAX_IMAGES)


def api_base(registry: str, endpoints: Mapping[str, str] | None = None) -> str:
    """The registry's API base URL: https by default, `docker.io` at registry-1.docker.io; `endpoints` overrides.

    An override must be https, or http to a loopback host (tests and local registries).
    """
    if endpoints and registry in endpoints:
        return check_url(endpoints[registry], allow_loopback_http=True)
    return f"https://{DOCKER_HUB_API_HOST if registry == DEFAULT_REGISTRY else registry}"


@dataclass(frozen=True)
class _Lookup:
    """One manifest lookup: the registry's API base and name, the repository, the time budget, ACR identity tokens."""

    base: str
    registry: str
    repository: str
    budget: RequestBudget
    acr: AcrIdentityTokens

    def identity_token(self) -> str:
        return self.acr.pull_token(self.base, self.registry, self.repository, self.budget)


def _pull_token(lookup: _Lookup, challenge: str) -> tuple[str, bool]:
    """A token for the manifest request and whether it came from the app identity (anonymous first, then ACR)."""
    if lookup.registry in lookup.acr.needs_identity:
        return lookup.identity_token(), True
    try:
        return anonymous_token(challenge, lookup.repository, lookup.budget), False
    except AuthenticationRequired:
        if not lookup.acr.applies_to(lookup.registry):
            raise
    return lookup.identity_token(), True


def _manifest_digest(lookup: _Lookup, reference: str) -> str:
    url = f"{lookup.base}/v2/{lookup.repository}/manifests/{urllib.parse.quote(reference, safe='')}"
    headers = {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}
    status, response_headers, _ = http_request(url, headers, lookup.budget, "HEAD")
    challenge = response_headers.get(CHALLENGE_HEADER)
    if status == 401 and challenge:
        token, by_identity = _pull_token(lookup, challenge)
        authorized = {**headers, "Authorization": f"Bearer {token}"}
        status, response_headers, _ = http_request(url, authorized, lookup.budget, "HEAD")
        if status == 401 and not by_identity and lookup.acr.applies_to(lookup.registry):
            authorized = {**headers, "Authorization": f"Bearer {lookup.identity_token()}"}
            status, response_headers, _ = http_request(url, authorized, lookup.budget, "HEAD")
    if status != 200:
        raise RegistryError(f"registry answered {status} for the manifest")
    digest = response_headers.get(DIGEST_HEADER, "")
    if not _DIGEST.fullmatch(digest) or len(digest) > 300:
        raise RegistryError(f"registry sent no valid {DIGEST_HEADER} header")
    return digest


def resolve_digest(
    image: str,
    *,
    timeout: float,
    endpoints: Mapping[str, str] | None = None,
    acr_identity: AcrIdentityTokens | None = None,
    deadline: float = math.inf,
    policy: NetworkPolicy | None = None,
) -> DigestResolution:
    """The digest `image` points to now; on any failure None and a reason, without retrying.

    Each request waits at most `timeout` seconds and none starts after `deadline` (time.monotonic()). For an Azure
    Container Registry that refuses anonymous pulls, `acr_identity` supplies tokens from the app's identity.
    `policy` says where requests may go (default: public addresses only); a registry, token realm or DNS answer
    inside the app's network is "registry refused" and nothing is sent there.
    """
    try:
        ref = parse_image_ref(image)
    except InvalidImageRef as error:
        return DigestResolution(image=image, reason=clip_reason(str(error)))
    if ref.digest:
        return DigestResolution(image=image, digest=ref.digest)
    acr = acr_identity or AcrIdentityTokens(None)
    try:
        base = api_base(ref.registry, endpoints)
        budget = RequestBudget(timeout, deadline, policy or NetworkPolicy())
        lookup = _Lookup(base, ref.registry, ref.repository, budget, acr)
        digest = _manifest_digest(lookup, ref.tag or "latest")
    except RegistryRefused as error:
        return DigestResolution(image=image, reason=clip_reason(f"{REFUSED_PREFIX}: {error}"))
    except (RegistryError, ValueError) as error:
        return DigestResolution(image=image, reason=clip_reason(f"digest not resolved: {error}"))
    except UNREACHABLE_ERRORS as error:
        return DigestResolution(image=image, reason=clip_reason(f"{UNREACHABLE_PREFIX}: {type(error).__name__}"))
    return DigestResolution(image=image, digest=digest)


def resolve_digests(
    images: list[str],
    *,
    timeout: float,
    endpoints: Mapping[str, str] | None = None,
    budget: float | None = None,
    credential: TokenCredential | None = None,
    policy: NetworkPolicy | None = None,
) -> list[DigestResolution]:
    """Resolve each image; once a registry is unreachable or refused, or `budget` seconds are spent, fall back for
    the rest (a refused registry is asked nothing: `policy`, see `resolve_digest`).

    `credential` (the app's identity) is used only for Azure Container Registries that refuse anonymous pulls, and
    exchanged at most once per registry.
    """
    deadline = time.monotonic() + (budget if budget is not None else 3 * timeout)
    acr_identity = AcrIdentityTokens(credential)
    unreachable: dict[str, str] = {}
    answers: list[DigestResolution] = []
    for image in images:
        registry = image.split("/", 1)[0]
        if registry in unreachable or time.monotonic() >= deadline:
            reason = unreachable.get(registry, BUDGET_SPENT_REASON)
            answers.append(DigestResolution(image=image, reason=reason))
            continue
        answer = resolve_digest(
            image, timeout=timeout, endpoints=endpoints, acr_identity=acr_identity, deadline=deadline, policy=policy
        )
        if answer.reason and answer.reason.startswith((UNREACHABLE_PREFIX, REFUSED_PREFIX)):
            unreachable[registry] = answer.reason
        answers.append(answer)
    return answers


registry_blueprint = df.Blueprint()
activity = activity_registrar(registry_blueprint)


@activity(names.RESOLVE_DIGESTS)
def resolve_digests_activity(payload: dict[str, Any]) -> dict[str, Any]:
    """Activity: {"images": [canonical refs]} -> {"images": [DigestResolution]} (all fallbacks when disabled)."""
    settings = get_settings()
    request = validated(ResolveRequest, payload)
    if not settings.resolve_digests:
        answers = [DigestResolution(image=image, reason=DISABLED_REASON) for image in request.images]
    else:
        timeout = settings.registry_timeout_seconds
        answers = resolve_digests(
            request.images,
            timeout=timeout,
            credential=clients.credential(settings),
            policy=settings.network_policy(),
        )
    resolved = sum(1 for a in answers if a.digest)
    log.info("resolved %d of %d image digests", resolved, len(answers))
    return {"images": [answer.model_dump(mode="json") for answer in answers]}
