"""Digest resolution against a real loopback registry (challenge, anonymous token, digest header) and fallbacks."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from activities import registry
from activities.registry import MANIFEST_MEDIA_TYPES, api_base, resolve_digest, resolve_digests
from core.settings import get_settings
from devhost.armsim.testing import BASE_APP_SETTINGS
from devhost.azurite import free_port
from tests.loopback import allowing, loopback_http_server

INDEX_DIGEST = "sha256:" + "c" * 64
TOKEN = "anonymous-pull-token"


@dataclass
class FakeRegistry:
    """What the fake registry serves and what it saw."""

    manifests: dict[tuple[str, str], str]
    require_token: bool = True
    realm_override: str | None = None
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    base: str = ""


def _handler(state: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _record(self) -> None:
            state.requests.append((self.command, self.path, dict(self.headers.items())))

        def do_GET(self) -> None:
            self._record()
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/token" and query.get("service") == ["fake-registry"]:
                body = json.dumps({"token": TOKEN, "scope": query.get("scope", [""])[0]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self) -> None:
            self._record()
            parts = self.path.split("/manifests/")
            repository, reference = parts[0].removeprefix("/v2/"), parts[-1]
            if state.require_token and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                realm = state.realm_override or f"{state.base}/token"
                scope = f"repository:{repository}:pull"
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="fake-registry",scope="{scope}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            digest = state.manifests.get((repository, reference))
            self.send_response(200 if digest else 404)
            if digest:
                self.send_header("Docker-Content-Digest", digest)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    state = FakeRegistry(manifests={("library/nginx", "1.27"): INDEX_DIGEST})
    with loopback_http_server(_handler(state)) as state.base:
        yield state


def test_resolves_through_challenge_and_anonymous_token(fake_registry: FakeRegistry) -> None:
    endpoints = {"docker.io": fake_registry.base}
    answer = resolve_digest(
        "docker.io/library/nginx:1.27", timeout=5, endpoints=endpoints, policy=allowing(fake_registry.base)
    )
    assert (answer.digest, answer.reason) == (INDEX_DIGEST, None)
    methods = [(method, path.split("?")[0]) for method, path, _ in fake_registry.requests]
    assert methods == [
        ("HEAD", "/v2/library/nginx/manifests/1.27"),
        ("GET", "/token"),
        ("HEAD", "/v2/library/nginx/manifests/1.27"),
    ]
    head_headers = fake_registry.requests[2][2]
    assert head_headers["Authorization"] == f"Bearer {TOKEN}"
    assert all(media_type in head_headers["Accept"] for media_type in MANIFEST_MEDIA_TYPES)
    assert "scope=repository%3Alibrary%2Fnginx%3Apull" in fake_registry.requests[1][1]


def test_unknown_tag_falls_back_with_a_reason(fake_registry: FakeRegistry) -> None:
    answer = resolve_digest(
        "docker.io/library/nginx:9.99",
        timeout=5,
        endpoints={"docker.io": fake_registry.base},
        policy=allowing(fake_registry.base),
    )
    assert answer.digest is None
    assert answer.reason == "digest not resolved: registry answered 404 for the manifest"


def test_a_token_realm_over_plain_http_elsewhere_is_refused(fake_registry: FakeRegistry) -> None:
    fake_registry.realm_override = "http://auth.example.com/token"
    answer = resolve_digest(
        "docker.io/library/nginx:1.27",
        timeout=5,
        endpoints={"docker.io": fake_registry.base},
        policy=allowing(fake_registry.base),
    )
    assert answer.digest is None
    assert "realm rejected" in (answer.reason or "")
    assert [m for m, _, _ in fake_registry.requests] == ["HEAD"]


def test_a_digest_reference_needs_no_network() -> None:
    ref = f"docker.io/library/nginx@{INDEX_DIGEST}"
    assert resolve_digest(ref, timeout=5, endpoints={"docker.io": "http://127.0.0.1:1"}).digest == INDEX_DIGEST


def test_connection_refused_falls_back_at_once_for_every_image_of_that_registry() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    images = [f"docker.io/library/app{i}:1" for i in range(20)]
    started = time.monotonic()
    answers = resolve_digests(images, timeout=5, endpoints={"docker.io": closed}, policy=allowing(closed))
    assert time.monotonic() - started < 1.0
    assert all(a.digest is None for a in answers)
    assert answers[0].reason == "registry unreachable: URLError"
    assert {a.reason for a in answers[1:]} == {answers[0].reason}


def test_a_registry_that_never_answers_costs_one_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoints = {"docker.io": f"http://127.0.0.1:{silent.getsockname()[1]}"}
        started = time.monotonic()
        images = ["docker.io/library/a:1", "docker.io/library/b:1"]
        policy = allowing(endpoints["docker.io"])
        answers = resolve_digests(images, timeout=0.3, endpoints=endpoints, policy=policy)
        elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert all(a.digest is None and "unreachable" in (a.reason or "") for a in answers)


def test_invalid_references_and_overrides_fall_back() -> None:
    assert resolve_digest("not a ref!", timeout=1).reason is not None
    answer = resolve_digest("docker.io/library/nginx:1", timeout=1, endpoints={"docker.io": "http://10.0.0.1:5000"})
    assert answer.digest is None
    assert "https" in (answer.reason or "")


def test_api_base_defaults() -> None:
    assert api_base("docker.io") == "https://registry-1.docker.io"
    assert api_base("myregistry.azurecr.io") == "https://myregistry.azurecr.io"
    assert api_base("docker.io", {"docker.io": "http://127.0.0.1:5000/"}) == "http://127.0.0.1:5000"


def test_activity_honours_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        **BASE_APP_SETTINGS,
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "RESOLVE_DIGESTS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        answer = registry.resolve_digests_activity({"images": ["docker.io/library/nginx:1.27"]})
    finally:
        get_settings.cache_clear()
    assert answer == {
        "images": [{"image": "docker.io/library/nginx:1.27", "digest": None, "reason": registry.DISABLED_REASON}]
    }
