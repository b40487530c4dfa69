"""Registry HTTP and pull tokens for digest lookups: anonymous bearer tokens, and ACR tokens from the app's identity.

Every request goes through `core.network_policy`: the URL's host is checked as a literal, and a name is resolved
here, its addresses checked, and the connection made to a checked address (TLS still verifies the name), so neither
a registry, a token realm from a `WWW-Authenticate` challenge nor a DNS answer can point the app into its own network.
Redirects are not followed.
"""

from __future__ import annotations

import functools
import http.client
import json
import math
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from azure.core.credentials import TokenCredential

from core.network_policy import HTTPS_PORT, DestinationRefused, NetworkPolicy, parse_host_port
from core.setting_types import check_url

MAX_TOKEN_BYTES = 64 * 1024
USER_AGENT = "aci-image-scanner/0.1 (+digest resolution)"
BUDGET_SPENT_REASON = "digest resolution time budget spent"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
ACR_EXCHANGE_PATH = "/oauth2/exchange"
ACR_TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a URL path, not a password
# Login-server suffix -> the Entra scope of Azure Container Registry in that cloud.
ACR_SCOPES = {
    ".azurecr.io": "https://containerregistry.azure.net/.default",
    ".azurecr.cn": "https://containerregistry.azure.cn/.default",
    ".azurecr.us": "https://containerregistry.azure.us/.default",
}
UNREACHABLE_ERRORS = (OSError, http.client.HTTPException)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """The registry could not tell the digest; the message says why (never a token)."""


class RegistryRefused(RegistryError):
    """A request would go into the app's own network (`core.network_policy`); nothing was sent."""


class AuthenticationRequired(RegistryError):
    """The token endpoint refused an anonymous token (401): the registry wants credentials."""


class IdentityUnavailable(RegistryError):
    """The app's credential gave no Entra token (in time); no registry can be asked with it in this batch."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer we do not follow: a token must not travel to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def check_registry_addresses(registry: str, policy: NetworkPolicy) -> None:
    """RegistryRefused when the registry (`host[:port]`) is, or resolves to, an address inside the app's network.

    A name that does not resolve passes: there is nothing to refuse yet, and every connection checks again.
    """
    try:
        policy.check_registry(registry)
        host, port = parse_host_port(registry)
        port = port or HTTPS_PORT
        if policy.is_allowed(host, port):
            return
        try:
            infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError:
            return
        policy.check_addresses(host, port, [str(info[4][0]) for info in infos])
    except DestinationRefused as error:
        raise RegistryRefused(str(error)) from None


def guarded_connection(
    policy: NetworkPolicy,
    address: tuple[str, int],
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """`socket.create_connection` that checks the host and every address it resolves to, then connects to those.

    RegistryRefused before any packet reaches a refused destination; DNS and connect errors stay OSErrors.
    """
    host, port = address
    try:
        policy.check_host(host, port)
        addresses = list(
            dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        )
        policy.check_addresses(host, port, addresses)
    except DestinationRefused as error:
        raise RegistryRefused(str(error)) from None
    last_error: OSError = OSError(f"no address for {host}")
    for resolved in addresses:
        try:
            return socket.create_connection((resolved, port), timeout, source_address)
        except OSError as error:
            last_error = error
    raise last_error


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, *args: Any, policy: NetworkPolicy, **kwargs: Any) -> None:
        super().__init__(host, *args, **kwargs)
        self._create_connection = functools.partial(guarded_connection, policy)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, *args: Any, policy: NetworkPolicy, **kwargs: Any) -> None:
        super().__init__(host, *args, **kwargs)
        self._create_connection = functools.partial(guarded_connection, policy)


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: NetworkPolicy) -> None:
        super().__init__()
        self._policy = policy

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_GuardedHTTPConnection, policy=self._policy), req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: NetworkPolicy) -> None:
        super().__init__()
        self._policy = policy
        self._tls = ssl.create_default_context()  # verifies the certificate against the name, not the address

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_GuardedHTTPSConnection, policy=self._policy), req, context=self._tls)


@functools.lru_cache(maxsize=8)
def _opener(policy: NetworkPolicy) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects(), _GuardedHTTPHandler(policy), _GuardedHTTPSHandler(policy))


@dataclass(frozen=True)
class RequestBudget:
    """What one request may do: take `timeout` seconds, capped by what is left until `deadline` (time.monotonic()),
    and go where `policy` allows (public addresses, and the hosts ALLOWED_PRIVATE_REGISTRIES names).
    """

    timeout: float
    deadline: float = math.inf
    policy: NetworkPolicy = field(default_factory=NetworkPolicy)

    def next_timeout(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RegistryError(BUDGET_SPENT_REASON)
        return min(self.timeout, left)


def http_request(
    url: str, headers: Mapping[str, str], budget: RequestBudget, method: str, form: Mapping[str, str] | None = None
) -> tuple[int, Message, bytes]:
    """One request, no redirects, body read up to the token cap (not for HEAD); `url` comes from a checked base.

    The destination is checked against `budget.policy` before and while connecting: RegistryRefused, nothing sent.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise RegistryError("only http(s) URLs are requested")
    try:
        budget.policy.check_host(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except DestinationRefused as error:
        raise RegistryRefused(str(error)) from None
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    all_headers = {"User-Agent": USER_AGENT, **headers, **({"Content-Type": FORM_CONTENT_TYPE} if form else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
    try:
        with _opener(budget.policy).open(request, timeout=budget.next_timeout()) as response:
            body = response.read(MAX_TOKEN_BYTES + 1) if method != "HEAD" else b""
            return int(response.status), response.headers, body
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), error.headers, b""


def _token_field(status: int, body: bytes, what: str, *names: str) -> str:
    """The first non-empty string field of a JSON token answer, or RegistryError naming only `what` and status."""
    if status != 200 or len(body) > MAX_TOKEN_BYTES:
        raise RegistryError(f"{what} answered {status}")
    try:
        document = json.loads(body)
    except ValueError:
        raise RegistryError(f"{what} answered non-JSON") from None
    for name in names:
        value = document.get(name) if isinstance(document, dict) else None
        if isinstance(value, str) and value:
            return value
    raise RegistryError(f"{what} answered without a token")


def anonymous_token(challenge: str, repository: str, budget: RequestBudget) -> str:
    """A pull token from the challenge's realm without credentials; AuthenticationRequired when it answers 401."""
    scheme, _, params_text = challenge.partition(" ")
    if scheme.lower() != "bearer":
        raise RegistryError(f"registry asks for {scheme or 'unknown'} authentication, not an anonymous token")
    params = dict(_CHALLENGE_PARAM.findall(params_text))
    realm = params.pop("realm", "")
    try:
        check_url(realm, allow_loopback_http=True)
    except ValueError as error:
        raise RegistryError(f"token realm rejected: {error}") from None
    params.setdefault("scope", f"repository:{repository}:pull")
    url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(params)}"
    try:
        status, _, body = http_request(url, {"Accept": "application/json"}, budget, "GET")
    except RegistryRefused as error:
        raise RegistryRefused(f"token realm {error}") from None
    if status == 401:
        raise AuthenticationRequired("token endpoint refused an anonymous token (401)")
    return _token_field(status, body, "token endpoint", "token", "access_token")


def acr_scope(registry: str) -> str | None:
    """The Entra scope for an Azure Container Registry login server (any cloud), None for any other registry."""
    host = registry.rsplit(":", 1)[0].lower()
    return next((scope for suffix, scope in ACR_SCOPES.items() if host.endswith(suffix)), None)


def _entra_token(credential: TokenCredential, scope: str, timeout: float) -> str:
    """The credential's token for `scope`, waited for at most `timeout` seconds (a credential chain can be slow)."""
    outcome: list[str | BaseException] = []

    def fetch() -> None:
        try:
            outcome.append(credential.get_token(scope).token)
        except Exception as error:  # any credential failure is a fallback, reported by its type only
            outcome.append(error)

    worker = threading.Thread(target=fetch, name="acr-entra-token", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise IdentityUnavailable(f"the app identity gave no token within {timeout:g}s")
    if isinstance(outcome[0], BaseException):
        raise IdentityUnavailable(f"the app identity gave no token: {type(outcome[0]).__name__}")
    return outcome[0]


def _exchange(credential: TokenCredential, scope: str, base: str, registry: str, budget: RequestBudget) -> str:
    """An ACR refresh token for the app identity's Entra token (POST /oauth2/exchange at the registry itself)."""
    entra_token = _entra_token(credential, scope, budget.next_timeout())
    form = {"grant_type": "access_token", "service": registry, "access_token": entra_token}
    url = f"{base}{ACR_EXCHANGE_PATH}"
    status, _, body = http_request(url, {"Accept": "application/json"}, budget, "POST", form)
    if status in (401, 403):
        raise RegistryError(f"ACR refused the app identity ({status} from {ACR_EXCHANGE_PATH}); is AcrPull granted?")
    return _token_field(status, body, f"ACR {ACR_EXCHANGE_PATH}", "refresh_token")


class AcrIdentityTokens:
    """ACR pull tokens from the app's managed identity: Entra token -> /oauth2/exchange -> /oauth2/token.

    One object serves one batch of lookups: it exchanges the Entra token once per registry, remembers registries
    that refused anonymous pulls (so later images skip that step), registries whose exchange failed and a credential
    that gave no token (so later images fall back at once). The Entra token and ACR tokens travel only to the
    registry's own API base.
    """

    def __init__(self, credential: TokenCredential | None) -> None:
        self._credential = credential
        self._refresh_tokens: dict[str, str] = {}
        self._failures: dict[str, str] = {}
        self._identity_failure: str | None = None
        self.needs_identity: set[str] = set()

    def applies_to(self, registry: str) -> bool:
        return self._credential is not None and acr_scope(registry) is not None

    def pull_token(self, base: str, registry: str, repository: str, budget: RequestBudget) -> str:
        """An ACR access token for `repository:pull`; RegistryError (never with token text) on any failure."""
        scope = acr_scope(registry)
        credential = self._credential
        if credential is None or scope is None:
            raise RegistryError("no app identity for this registry")
        self.needs_identity.add(registry)
        known_failure = self._identity_failure or self._failures.get(registry)
        if known_failure:
            raise RegistryError(known_failure)
        refresh_token = self._refresh_tokens.get(registry)
        if refresh_token is None:
            try:
                refresh_token = _exchange(credential, scope, base, registry, budget)
            except IdentityUnavailable as error:
                self._identity_failure = str(error)
                raise
            except RegistryError as error:
                self._failures[registry] = str(error)
                raise
            self._refresh_tokens[registry] = refresh_token
        form = {
            "grant_type": "refresh_token",
            "service": registry,
            "scope": f"repository:{repository}:pull",
            "refresh_token": refresh_token,
        }
        status, _, body = http_request(f"{base}{ACR_TOKEN_PATH}", {"Accept": "application/json"}, budget, "POST", form)
        return _token_field(status, body, f"ACR {ACR_TOKEN_PATH}", "access_token")
