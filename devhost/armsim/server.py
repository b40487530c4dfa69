"""`ArmSimulator`: ARM over HTTPS (trustme certificate) plus the managed identity endpoint, on loopback."""

from __future__ import annotations

import json
import secrets
import ssl
import tempfile
import threading
import urllib.parse
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

from devhost import clock as clock_mod
from devhost.armsim.scenario import Scenario
from devhost.armsim.state import MSI_PATH, Fault, SimResponse, SimState

LOOPBACK = "127.0.0.1"
POLL_INTERVAL_S = 0.05  # how quickly stop() is noticed


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the server's `SimState` and writes its JSON answer."""

    protocol_version = "HTTP/1.1"
    server: _SimServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def _dispatch(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.state.handle(self.command, urllib.parse.unquote(split.path), query, headers, body)
        self._send(response)

    def _send(self, response: SimResponse) -> None:
        payload = b"" if response.body is None else json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, self.server.absolute(value) if value.startswith("/") else value)
        self.send_header("x-ms-request-id", secrets.token_hex(8))
        if response.body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_PUT = do_DELETE = do_POST = do_PATCH = _dispatch


class _SimServer(ThreadingHTTPServer):
    daemon_threads = True
    state: SimState
    public_base: str

    def absolute(self, path: str) -> str:
        return self.public_base + path


class ArmSimulator:
    """An ARM endpoint for the real SDK clients, driven by a scenario and the devhost clock.

    `start()` serves ARM on https://127.0.0.1:<port> and the App Service managed identity protocol on a plain
    http://127.0.0.1:<port>/msi/token (as App Service does on localhost); `env()` gives what the app needs.
    """

    def __init__(self, scenario: Scenario, *, clock: clock_mod.Clock | None = None) -> None:
        self.scenario = scenario
        self._clock = clock
        self.identity_header = secrets.token_hex(16)
        self.state = SimState(scenario, self._now, self.identity_header)
        self.state.blob_events.clock = clock
        self._workdir = Path(tempfile.mkdtemp(prefix="armsim-"))
        self._servers: list[_SimServer] = []
        self._threads: list[threading.Thread] = []
        self.ca_path = str(self._workdir / "armsim-ca.pem")
        self.base_url = ""
        self.identity_endpoint = ""

    def _now(self) -> datetime:
        return (self._clock or clock_mod.current()).now()

    def _serve(self, context: ssl.SSLContext | None) -> _SimServer:
        server = _SimServer((LOOPBACK, 0), _Handler)
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        server.state = self.state
        scheme = "https" if context is not None else "http"
        server.public_base = f"{scheme}://{LOOPBACK}:{server.server_address[1]}"
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S}, name=f"armsim-{scheme}", daemon=True
        )
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return server

    def start(self) -> ArmSimulator:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(self.ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(LOOPBACK, "localhost").configure_cert(context)
        self.base_url = self._serve(context).public_base
        self.identity_endpoint = self._serve(None).public_base + MSI_PATH
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> ArmSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def admin_url(self) -> str:
        """Base of the admin surface (`/_sim/stats`, `/_sim/faults`) on the plain-HTTP listener."""
        return self.identity_endpoint[: -len(MSI_PATH)]

    def env(self) -> dict[str, str]:
        """Environment variables that point the app (settings + DefaultAzureCredential) at this simulator."""
        return {
            "ARM_ENDPOINT": self.base_url,
            "REQUESTS_CA_BUNDLE": self.ca_path,
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
        }

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def inject(
        self,
        method: str,
        path_pattern: str,
        status: int,
        *,
        times: int | None = 1,
        retry_after: int | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Fail the next `times` requests matching `method` ("*": any) and the regex `path_pattern` (None: always),
        with ARM's error envelope of `code` and `message` (defaults: the status's code, a generic text).
        """
        self.state.inject(Fault(method.upper(), path_pattern, status, times, retry_after, code, message=message))

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def settle(self) -> None:
        """Upload every scanner result that is due at the current clock time."""
        self.state.settle()
