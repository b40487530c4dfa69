"""Tag -> digest through the OCI distribution API (anonymous bearer tokens); any failure falls back at once."""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import Message
from typing import Any

import azure.durable_functions as df
from pydantic import BaseModel, ConfigDict, Field

from activities import names
from activities.activity_registry import activity_registrar, validated
from core.images import DEFAULT_REGISTRY, InvalidImageRef, parse_image_ref
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
MAX_TOKEN_BYTES = 64 * 1024
MAX_IMAGES = 500
USER_AGENT = "aci-image-scanner/0.1 (+digest resolution)"
DISABLED_REASON = "digest resolution is disabled (RESOLVE_DIGESTS=false)"
_DIGEST = re.compile(DIGEST_PATTERN)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_UNREACHABLE_ERRORS = (OSError, http.client.HTTPException)


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


class _RegistryError(Exception):
    """The registry could not tell the digest; the message says why (never a token)."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer we do not follow: a token must not travel to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def api_base(registry: str, endpoints: Mapping[str, str] | None = None) -> str:
    """The registry's API base URL: https by default, `docker.io` at registry-1.docker.io; `endpoints` overrides.

    An override must be https, or http to a loopback host (tests and local registries).
    """
    if endpoints and registry in endpoints:
        return check_url(endpoints[registry], allow_loopback_http=True)
    return f"https://{DOCKER_HUB_API_HOST if registry == DEFAULT_REGISTRY else registry}"


def _request(url: str, headers: Mapping[str, str], timeout: float, method: str) -> tuple[int, Message, bytes]:
    """One request, no redirects; `url` was built from a checked base (https, or http to a loopback host)."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise _RegistryError("only http(s) URLs are requested")
    request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT, **headers})  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read(MAX_TOKEN_BYTES + 1) if method == "GET" else b""
            return int(response.status), response.headers, body
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), error.headers, b""


def _bearer_token(challenge: str, repository: str, timeout: float) -> str:
    scheme, _, params_text = challenge.partition(" ")
    if scheme.lower() != "bearer":
        raise _RegistryError(f"registry asks for {scheme or 'unknown'} authentication, not an anonymous token")
    params = dict(_CHALLENGE_PARAM.findall(params_text))
    realm = params.pop("realm", "")
    try:
        check_url(realm, allow_loopback_http=True)
    except ValueError as error:
        raise _RegistryError(f"token realm rejected: {error}") from None
    params.setdefault("scope", f"repository:{repository}:pull")
    url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(params)}"
    status, _, body = _request(url, {"Accept": "application/json"}, timeout, "GET")
    if status != 200 or len(body) > MAX_TOKEN_BYTES:
        raise _RegistryError(f"token endpoint answered {status}")
    try:
        document = json.loads(body)
    except ValueError:
        raise _RegistryError("token endpoint answered non-JSON") from None
    token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        raise _RegistryError("token endpoint answered without a token")
    return token


def _manifest_digest(base: str, repository: str, reference: str, timeout: float) -> str:
    url = f"{base}/v2/{repository}/manifests/{urllib.parse.quote(reference, safe='')}"
    headers = {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}
    status, response_headers, _ = _request(url, headers, timeout, "HEAD")
    if status == 401 and response_headers.get(CHALLENGE_HEADER):
        token = _bearer_token(response_headers[CHALLENGE_HEADER], repository, timeout)
        status, response_headers, _ = _request(url, {**headers, "Authorization": f"Bearer {token}"}, timeout, "HEAD")
    if status != 200:
        raise _RegistryError(f"registry answered {status} for the manifest")
    digest = response_headers.get(DIGEST_HEADER, "")
    if not _DIGEST.fullmatch(digest) or len(digest) > 300:
        raise _RegistryError(f"registry sent no valid {DIGEST_HEADER} header")
    return digest


def resolve_digest(image: str, *, timeout: float, endpoints: Mapping[str, str] | None = None) -> DigestResolution:
    """The digest `image` points to now; on any failure None and a reason, without retrying."""
    try:
        ref = parse_image_ref(image)
    except InvalidImageRef as error:
        return DigestResolution(image=image, reason=clip_reason(str(error)))
    if ref.digest:
        return DigestResolution(image=image, digest=ref.digest)
    try:
        base = api_base(ref.registry, endpoints)
        digest = _manifest_digest(base, ref.repository, ref.tag or "latest", timeout)
    except (_RegistryError, ValueError) as error:
        return DigestResolution(image=image, reason=clip_reason(f"digest not resolved: {error}"))
    except _UNREACHABLE_ERRORS as error:
        return DigestResolution(image=image, reason=clip_reason(f"registry unreachable: {type(error).__name__}"))
    return DigestResolution(image=image, digest=digest)


def resolve_digests(
    images: list[str], *, timeout: float, endpoints: Mapping[str, str] | None = None, budget: float | None = None
) -> list[DigestResolution]:
    """Resolve each image; once a registry is unreachable, or `budget` seconds are spent, fall back for the rest."""
    deadline = time.monotonic() + (budget if budget is not None else 3 * timeout)
    unreachable: dict[str, str] = {}
    answers: list[DigestResolution] = []
    for image in images:
        registry = image.split("/", 1)[0]
        if registry in unreachable or time.monotonic() >= deadline:
            reason = unreachable.get(registry, "digest resolution time budget spent")
            answers.append(DigestResolution(image=image, reason=reason))
            continue
        answer = resolve_digest(image, timeout=timeout, endpoints=endpoints)
        if answer.reason and answer.reason.startswith("registry unreachable"):
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
        answers = resolve_digests(request.images, timeout=settings.registry_timeout_seconds)
    resolved = sum(1 for a in answers if a.digest)
    log.info("resolved %d of %d image digests", resolved, len(answers))
    return {"images": [answer.model_dump(mode="json") for answer in answers]}
