"""The demo's notification receivers on loopback: an SMTP server (STARTTLS, AUTH) and a webhook HTTP server."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import certifi
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devhost.azurite import free_port

LOOPBACK = "127.0.0.1"
SMTP_USERNAME = "qscanner-demo"
SMTP_PASSWORD = "FAKE-demo-smtp-password"  # noqa: S105 - a fake credential the local receiver accepts
WEBHOOK_PATH = "/hooks/qscanner"
MAX_WEBHOOK_BYTES = 1024 * 1024
POLL_INTERVAL_S = 0.05
SMTP_OK = "250 OK"


class _Sink:
    """Numbered files in one directory, written under a lock (receivers run on their own threads)."""

    def __init__(self, directory: Path, suffix: str) -> None:
        self.directory = directory
        self.suffix = suffix
        self.count = 0
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob(f"*{suffix}"):
            old.unlink()

    def write(self, data: bytes) -> Path:
        with self._lock:
            self.count += 1
            path = self.directory / f"{self.count:03d}{self.suffix}"
        path.write_bytes(data)
        return path


class SmtpReceiver:
    """aiosmtpd on loopback that requires STARTTLS (a trustme certificate) and AUTH, saving each e-mail as .eml."""

    def __init__(self, mail_dir: Path, workdir: Path) -> None:
        self.port = free_port()
        self._sink = _Sink(mail_dir, ".eml")
        self._ca = trustme.CA()
        self.ca_bundle = workdir / "demo-ca-bundle.pem"
        self.logins_refused = 0
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(LOOPBACK, "localhost").configure_cert(server_context)
        self._controller = Controller(
            self,
            hostname=LOOPBACK,
            port=self.port,
            tls_context=server_context,
            require_starttls=True,
            auth_required=True,
            authenticator=self._authenticate,
        )

    @property
    def count(self) -> int:
        return self._sink.count

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USERNAME.encode(),
            SMTP_PASSWORD.encode(),
        )
        if not ok:
            self.logins_refused += 1
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._sink.write(bytes(envelope.content))
        return SMTP_OK

    def write_ca_bundle(self) -> Path:
        """The receiver's CA followed by certifi's roots: a file for SSL_CERT_FILE that trusts this receiver."""
        roots = Path(certifi.where()).read_bytes()
        self.ca_bundle.write_bytes(self._ca.cert_pem.bytes() + b"\n" + roots)
        return self.ca_bundle

    def start(self) -> SmtpReceiver:
        self.write_ca_bundle()
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _WebhookServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        refusal = 404 if self.path.split("?", 1)[0] != WEBHOOK_PATH else 400
        if refusal == 404 or not 0 < length <= MAX_WEBHOOK_BYTES:
            self.send_response(refusal)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.rfile.read(length)
        try:
            document = json.loads(body)
            data = json.dumps(document, indent=2).encode() + b"\n"
        except ValueError:
            data = body
        self.server.sink.write(data)
        self.send_response(204)
        self.end_headers()


class _WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    sink: _Sink


class ServedReceiver:
    """A loopback HTTP server on its own thread whose sink saves what it accepts: start, count, stop."""

    def __init__(self, server: Any, path: str, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S}, name=name, daemon=True
        )
        self.url = f"http://{LOOPBACK}:{server.server_address[1]}{path}"

    @property
    def count(self) -> int:
        return int(self._server.sink.count)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class WebhookReceiver(ServedReceiver):
    """A plain-HTTP receiver on loopback (the app allows http only for loopback); saves each POST body as .json."""

    def __init__(self, webhook_dir: Path) -> None:
        server = _WebhookServer((LOOPBACK, 0), _WebhookHandler)
        server.sink = _Sink(webhook_dir, ".json")
        super().__init__(server, WEBHOOK_PATH, "demo-webhook")
