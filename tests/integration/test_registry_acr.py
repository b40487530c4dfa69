"""Digest resolution at a loopback fake ACR with the app identity: a real DefaultAzureCredential token, exchanged."""

from __future__ import annotations

import json
import logging
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken, TokenCredential

from activities import clients, registry
from activities.registry import DigestResolution, resolve_digest, resolve_digests
from activities.registry_auth import AcrIdentityTokens, acr_scope
from core.settings import get_settings, load_settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.testing import point_process_at, settings_env
from devhost.azurite import free_port
from devhost.clock import VirtualClock
from tests.integration.test_registry import INDEX_DIGEST
from tests.loopback import allowing, loopback_http_server

REGISTRY = "contoso.azurecr.io"
ACR_SCOPE = "https://containerregistry.azure.net/.default"  # as documented, not the module constant
APP_CLIENT_ID = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"
API_DIGEST = "sha256:" + "a" * 64


@dataclass
class FakeAcr:
    """A loopback ACR: challenge, anonymous /oauth2/token, /oauth2/exchange and /oauth2/token with a refresh token."""

    registry: str
    manifests: dict[tuple[str, str], str]
    accepted_entra_token: str = ""
    anonymous_pull: bool = False
    anonymous_token_endpoint_answers: bool = False
    base: str = ""
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: dict[str, str] = field(default_factory=dict)  # access token -> repository
    exchanged: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    bearers: list[str] = field(default_factory=list)


def _handler(acr: FakeAcr) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _send(self, status: int, document: object | None = None, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(document).encode() if document is not None else b""
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _unauthorized(self, detail: str) -> None:
            self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": detail}]})

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            self._record(url.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/oauth2/token" and query.get("service") == acr.registry:
                if not (acr.anonymous_pull or acr.anonymous_token_endpoint_answers):
                    self._unauthorized("authentication required")
                    return
                token = "anon." + secrets.token_urlsafe(8)
                if acr.anonymous_pull:
                    acr.access_tokens[token] = query["scope"].split(":")[1]
                self._send(200, {"access_token": token})
                return
            self._send(404, {"errors": []})

        def do_POST(self) -> None:
            self._record(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            acr.forms.append(form)
            if (
                self.headers.get("Content-Type") != "application/x-www-form-urlencoded"
                or form["service"] != acr.registry
            ):
                self._send(400, {"errors": [{"code": "BAD_REQUEST"}]})
            elif self.path == "/oauth2/exchange" and form.get("grant_type") == "access_token":
                acr.exchanged.append(form["access_token"])
                if form["access_token"] != acr.accepted_entra_token:
                    # a real error body may quote what it was sent: the app must never pass it on
                    self._unauthorized(f"token {form['access_token']} is not valid for {acr.registry}")
                    return
                refresh_token = "acr-refresh." + secrets.token_urlsafe(12)
                acr.refresh_tokens.add(refresh_token)
                self._send(200, {"refresh_token": refresh_token})
            elif self.path == "/oauth2/token" and form.get("grant_type") == "refresh_token":
                scope = form.get("scope", "")
                if form.get("refresh_token") not in acr.refresh_tokens or not scope.endswith(":pull"):
                    self._unauthorized("invalid refresh token")
                    return
                access_token = "acr-access." + secrets.token_urlsafe(12)
                acr.access_tokens[access_token] = scope.split(":")[1]
                self._send(200, {"access_token": access_token})
            else:
                self._send(404, {"errors": []})

        def do_HEAD(self) -> None:
            self._record(self.path)
            parts = self.path.split("/manifests/")
            repository, reference = parts[0].removeprefix("/v2/"), parts[-1]
            bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
            acr.bearers.append(bearer)
            if acr.access_tokens.get(bearer) != repository:
                realm, scope = f"{acr.base}/oauth2/token", f"repository:{repository}:pull"
                challenge = f'Bearer realm="{realm}",service="{acr.registry}",scope="{scope}"'
                self._send(401, headers={"WWW-Authenticate": challenge})
                return
            digest = acr.manifests.get((repository, reference))
            self._send(200 if digest else 404, headers={"Docker-Content-Digest": digest} if digest else None)

        def _record(self, path: str) -> None:
            acr.requests.append((self.command, urlsplit(path).path))

    return Handler


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmSimulator]:
    """The ARM simulator's App Service managed identity endpoint, where DefaultAzureCredential gets its tokens."""
    clients.reset_cache()
    with ArmSimulator(Scenario(), clock=VirtualClock()) as running:
        point_process_at(running, monkeypatch)
        yield running
    clients.reset_cache()


@pytest.fixture
def credential(sim: ArmSimulator) -> TokenCredential:
    """The app's credential exactly as the activity builds it (activities.clients), for the app identity's client id."""
    return clients.credential(load_settings(settings_env(sim, AZURE_CLIENT_ID=APP_CLIENT_ID)))


@pytest.fixture
def acr(credential: TokenCredential) -> Iterator[FakeAcr]:
    """A fake ACR that accepts exactly the token the managed identity endpoint issued to the app's credential."""
    state = FakeAcr(
        registry=REGISTRY,
        manifests={("shop/api", "2"): API_DIGEST, ("shop/web", "1.4"): INDEX_DIGEST},
        accepted_entra_token=credential.get_token(ACR_SCOPE).token,
    )
    with loopback_http_server(_handler(state)) as state.base:
        yield state


def _resolve(
    images: list[str], acr: FakeAcr, credential: TokenCredential | None, timeout: float = 5
) -> list[DigestResolution]:
    endpoints = {acr.registry: acr.base}
    return resolve_digests(
        images, timeout=timeout, endpoints=endpoints, credential=credential, policy=allowing(acr.base)
    )


def test_resolves_through_the_exchange_with_the_app_identity_token(
    acr: FakeAcr, credential: TokenCredential, sim: ArmSimulator
) -> None:
    [answer] = _resolve([f"{REGISTRY}/shop/api:2"], acr, credential)
    assert (answer.digest, answer.reason) == (API_DIGEST, None)
    assert acr.requests == [
        ("HEAD", "/v2/shop/api/manifests/2"),
        ("GET", "/oauth2/token"),
        ("POST", "/oauth2/exchange"),
        ("POST", "/oauth2/token"),
        ("HEAD", "/v2/shop/api/manifests/2"),
    ]
    exchange, token = acr.forms
    assert exchange == {"grant_type": "access_token", "service": REGISTRY, "access_token": acr.accepted_entra_token}
    assert token["scope"] == "repository:shop/api:pull" and token["refresh_token"] in acr.refresh_tokens
    assert acr.access_tokens[acr.bearers[-1]] == "shop/api"
    # one token from the managed identity endpoint, for the app identity's client id: the exchanged one
    assert sim.stats()["token_requests"] == 1
    assert sim.state.token_client_ids == [APP_CLIENT_ID]


def test_one_exchange_per_registry_and_no_more_anonymous_attempts(acr: FakeAcr, credential: TokenCredential) -> None:
    answers = _resolve([f"{REGISTRY}/shop/api:2", f"{REGISTRY}/shop/web:1.4"], acr, credential)
    assert [a.digest for a in answers] == [API_DIGEST, INDEX_DIGEST]
    assert acr.requests.count(("POST", "/oauth2/exchange")) == 1
    assert acr.requests.count(("GET", "/oauth2/token")) == 1
    assert acr.requests[5:] == [
        ("HEAD", "/v2/shop/web/manifests/1.4"),
        ("POST", "/oauth2/token"),
        ("HEAD", "/v2/shop/web/manifests/1.4"),
    ]


def test_an_anonymous_token_the_manifest_refuses_leads_to_the_identity(
    acr: FakeAcr, credential: TokenCredential
) -> None:
    acr.anonymous_token_endpoint_answers = True
    [answer] = _resolve([f"{REGISTRY}/shop/api:2"], acr, credential)
    assert answer.digest == API_DIGEST
    assert [method for method, _ in acr.requests] == ["HEAD", "GET", "HEAD", "POST", "POST", "HEAD"]


def test_anonymous_pull_needs_no_identity(acr: FakeAcr, credential: TokenCredential, sim: ArmSimulator) -> None:
    acr.anonymous_pull = True
    before = sim.stats()["token_requests"]
    [answer] = _resolve([f"{REGISTRY}/shop/api:2"], acr, credential)
    assert answer.digest == API_DIGEST
    assert ("POST", "/oauth2/exchange") not in acr.requests
    assert sim.stats()["token_requests"] == before


def test_exchange_refused_falls_back_without_token_text(
    acr: FakeAcr, credential: TokenCredential, caplog: pytest.LogCaptureFixture
) -> None:
    entra_token = acr.accepted_entra_token
    acr.accepted_entra_token = "another-tenant-token"
    caplog.set_level(logging.DEBUG)
    answers = _resolve([f"{REGISTRY}/shop/api:2", f"{REGISTRY}/shop/web:1.4"], acr, credential)
    assert all(a.digest is None for a in answers)
    assert answers[0].reason == (
        "digest not resolved: ACR refused the app identity (401 from /oauth2/exchange); is AcrPull granted?"
    )
    assert answers[1].reason == answers[0].reason
    assert acr.exchanged == [entra_token]  # refused once, not tried again for the second image
    for text in [answer.model_dump_json() for answer in answers] + [caplog.text]:
        assert entra_token not in text and entra_token[4:20] not in text


def test_identity_tokens_go_only_to_azure_container_registries(acr: FakeAcr, credential: TokenCredential) -> None:
    acr.registry = "ghcr.io"
    answer = resolve_digest(
        "ghcr.io/shop/api:2",
        timeout=5,
        endpoints={"ghcr.io": acr.base},
        acr_identity=AcrIdentityTokens(credential),
        policy=allowing(acr.base),
    )
    assert answer.digest is None
    assert answer.reason == "digest not resolved: token endpoint refused an anonymous token (401)"
    assert [method for method, _ in acr.requests] == ["HEAD", "GET"]


def test_an_unreachable_registry_falls_back_at_once(credential: TokenCredential, sim: ArmSimulator) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    images = [f"{REGISTRY}/shop/app{i}:1" for i in range(10)]
    before = sim.stats()["token_requests"]
    started = time.monotonic()
    answers = resolve_digests(
        images, timeout=5, endpoints={REGISTRY: closed}, credential=credential, policy=allowing(closed)
    )
    assert time.monotonic() - started < 1.0
    assert {a.reason for a in answers} == {"registry unreachable: URLError"}
    assert sim.stats()["token_requests"] == before  # no identity token is fetched for a registry that is not there


def test_an_identity_endpoint_that_never_answers_costs_at_most_the_timeout(
    acr: FakeAcr, sim: ArmSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}/msi/token")
        clients.reset_cache()
        stalled = clients.credential(load_settings(settings_env(sim, AZURE_CLIENT_ID=APP_CLIENT_ID)))
        started = time.monotonic()
        [answer] = _resolve([f"{REGISTRY}/shop/api:2"], acr, stalled, timeout=0.3)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert answer.digest is None
    assert answer.reason in {
        "digest not resolved: the app identity gave no token within 0.3s",
        "digest not resolved: digest resolution time budget spent",
    }


class CountingCredential:
    """Delegates to a real credential and counts the token requests (a hand-written wrapper, not a mock)."""

    def __init__(self, inner: TokenCredential) -> None:
        self.inner = inner
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return self.inner.get_token(*scopes, **kwargs)


def test_a_credential_without_a_token_is_asked_once_per_batch(
    acr: FakeAcr, sim: ArmSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-simulator-header")
    clients.reset_cache()
    refused = CountingCredential(clients.credential(load_settings(settings_env(sim, AZURE_CLIENT_ID=APP_CLIENT_ID))))
    other = "fabrikam.azurecr.io"
    endpoints = {REGISTRY: acr.base, other: acr.base}
    images = [f"{REGISTRY}/shop/api:2", f"{other}/shop/web:1.4", f"{REGISTRY}/shop/web:1.4"]
    answers = resolve_digests(images, timeout=5, endpoints=endpoints, credential=refused, policy=allowing(acr.base))
    assert {a.reason for a in answers} == {
        "digest not resolved: the app identity gave no token: ClientAuthenticationError"
    }
    assert refused.scopes == [ACR_SCOPE]
    assert acr.exchanged == []
    assert [m for m, _ in acr.requests] == [
        "HEAD",
        "GET",
        "HEAD",
        "GET",
        "HEAD",
    ]  # contoso's 2nd image: no anonymous try


def test_the_activity_builds_the_app_credential_when_resolution_is_on(
    sim: ArmSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in settings_env(sim, AZURE_CLIENT_ID=APP_CLIENT_ID, RESOLVE_DIGESTS="true").items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        answer = registry.resolve_digests_activity({"images": [f"{REGISTRY}/shop/api@{API_DIGEST}"]})
    finally:
        get_settings.cache_clear()
    assert answer == {"images": [{"image": f"{REGISTRY}/shop/api@{API_DIGEST}", "digest": API_DIGEST, "reason": None}]}
    assert sim.stats()["token_requests"] == 0  # a digest reference needs neither the registry nor a token


@pytest.mark.parametrize(
    ("registry", "scope"),
    [
        ("contoso.azurecr.io", "https://containerregistry.azure.net/.default"),
        ("Contoso.AzureCR.io:443", "https://containerregistry.azure.net/.default"),
        ("contoso.azurecr.cn", "https://containerregistry.azure.cn/.default"),
        ("contoso.azurecr.us", "https://containerregistry.azure.us/.default"),
        ("azurecr.io.example.com", None),
        ("docker.io", None),
        ("contoso-azurecr.io", None),
    ],
)
def test_acr_scope_by_login_server_suffix(registry: str, scope: str | None) -> None:
    assert acr_scope(registry) == scope
