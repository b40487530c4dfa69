"""Digest resolution never sends a request into the app's own network: registries, token realms, DNS answers.

The fake registries run on loopback, so each test that needs one to answer allows it by `127.0.0.1:<port>`, as
ALLOWED_PRIVATE_REGISTRIES would; without that, the same registry is refused before anything is sent.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from activities import registry
from activities.registry import resolve_digest, resolve_digests
from core.network_policy import NetworkPolicy
from core.settings import get_settings
from devhost.armsim.testing import BASE_APP_SETTINGS
from tests.integration.test_registry import INDEX_DIGEST, FakeRegistry, _handler
from tests.loopback import allowing, loopback_http_server

NGINX = "docker.io/library/nginx:1.27"


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    state = FakeRegistry(manifests={("library/nginx", "1.27"): INDEX_DIGEST})
    with loopback_http_server(_handler(state)) as state.base:
        yield state


def test_a_loopback_registry_is_refused_without_a_request(fake_registry: FakeRegistry) -> None:
    answers = resolve_digests(
        [NGINX, "docker.io/library/redis:7"], timeout=1, endpoints={"docker.io": fake_registry.base}
    )
    assert [a.digest for a in answers] == [None, None]
    port = fake_registry.base.rsplit(":", 1)[1]
    assert answers[0].reason is not None
    assert answers[0].reason.startswith(f"registry refused: 127.0.0.1:{port} is a loopback address")
    assert answers[1].reason == answers[0].reason  # the rest of that registry is not asked either
    assert fake_registry.requests == []


def test_the_same_registry_answers_once_allowed_by_name(fake_registry: FakeRegistry) -> None:
    endpoints = {"docker.io": fake_registry.base}
    answer = resolve_digest(NGINX, timeout=5, endpoints=endpoints, policy=allowing(fake_registry.base))
    assert (answer.digest, answer.reason) == (INDEX_DIGEST, None)


@pytest.mark.parametrize(
    "realm",
    [
        "https://169.254.169.254/metadata/identity/oauth2/token",
        "https://2852039166/token",  # 169.254.169.254 as one number
        "https://[::ffff:169.254.169.254]/token",
        "https://168.63.129.16/machine",
        "https://10.0.0.1/token",
        "https://localhost/token",
    ],
)
def test_a_token_realm_inside_the_network_is_refused(fake_registry: FakeRegistry, realm: str) -> None:
    """The realm comes from the registry's WWW-Authenticate header: a registry must not steer the app inside."""
    fake_registry.realm_override = realm
    policy = allowing(fake_registry.base)  # the registry itself is allowed; its realm is not
    answer = resolve_digest(NGINX, timeout=1, endpoints={"docker.io": fake_registry.base}, policy=policy)
    assert answer.digest is None
    assert (answer.reason or "").startswith("registry refused: token realm ")
    assert [method for method, _, _ in fake_registry.requests] == ["HEAD"]


def test_a_redirect_is_not_followed() -> None:
    seen: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            seen.append(self.path)
            self.send_response(307)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with loopback_http_server(Redirecting) as base:
        answer = resolve_digest(NGINX, timeout=1, endpoints={"docker.io": base}, policy=allowing(base))
    assert answer.reason == "digest not resolved: registry answered 307 for the manifest"
    assert seen == ["/v2/library/nginx/manifests/1.27"]


@pytest.fixture
def inside_names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A resolver where `*.inside.test` names point at private and loopback addresses (others resolve as usual)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".inside.test"):
            asked.append(host)
            address = "127.0.0.1" if host.startswith("loop") else "10.1.2.3"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("host", ["loop.inside.test", "private.inside.test"])
def test_a_name_that_resolves_inside_is_refused_when_connecting(inside_names: list[str], host: str) -> None:
    answer = resolve_digest(f"{host}/app:1", timeout=1)
    assert answer.digest is None
    assert (answer.reason or "").startswith(f"registry refused: {host}:443 resolves to a ")
    assert inside_names == [host]


def test_the_activity_refuses_by_default_and_honours_the_allow_list(
    monkeypatch: pytest.MonkeyPatch, fake_registry: FakeRegistry
) -> None:
    registry_host = fake_registry.base.removeprefix("http://")  # 127.0.0.1:<port>
    images = ["169.254.169.254/x:1", f"{registry_host}/library/nginx:1.27"]

    def run(**extra: str) -> list[dict[str, Any]]:
        env = {**BASE_APP_SETTINGS, "AzureWebJobsStorage": "UseDevelopmentStorage=true", "RESOLVE_DIGESTS": "true"}
        for name, value in {**env, **extra}.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            answers: list[dict[str, Any]] = registry.resolve_digests_activity({"images": images})["images"]
        finally:
            get_settings.cache_clear()
        return answers

    strict = run()
    assert [a["reason"].split(":")[0] for a in strict] == ["registry refused", "registry refused"]
    assert fake_registry.requests == []
    allowed = run(ALLOWED_PRIVATE_REGISTRIES=registry_host)
    assert allowed[0]["reason"].startswith("registry refused: 169.254.169.254")
    # Allowed, so it is asked (over https, which this plain-http fake cannot speak): no longer refused.
    assert allowed[1]["reason"].startswith("registry unreachable")


def test_an_allowed_https_registry_is_reached_at_its_checked_address_and_verified_by_name(
    fake_registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Production's path: https to a name. The guard connects to the address it checked; TLS still checks the name."""
    ca = trustme.CA()
    host = "registry.inside.test"
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # read by ssl.create_default_context()
    real = socket.getaddrinfo

    def getaddrinfo(name: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if name == host:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(name, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake_registry))
    ca.issue_cert(host).configure_cert(tls := ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    fake_registry.base = f"https://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        image = f"{host}:{port}/library/nginx:1.27"
        refused = resolve_digest(image, timeout=5)
        allowed = resolve_digest(image, timeout=5, policy=NetworkPolicy.allowing([f"{host}:{port}"]))
    finally:
        server.shutdown()
        server.server_close()
    assert (refused.reason or "").startswith(f"registry refused: {host}:{port} resolves to a loopback address")
    assert (allowed.digest, allowed.reason) == (INDEX_DIGEST, None)
    assert [method for method, _, _ in fake_registry.requests] == ["HEAD", "GET", "HEAD"]
