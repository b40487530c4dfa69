"""Helpers (no tests) for the secret canary run: distinct canary secrets, recording receivers and a recording ARM."""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

from devhost import azurite
from devhost.armsim.scenario import Scenario
from devhost.armsim.state import SimResponse, SimState
from devhost.demo_receivers import LOOPBACK, SmtpReceiver

CANARY_ACCOUNT = "qscancanary"
WEBHOOK_PATH_PREFIX = "/hooks/"
SMTP_USERNAME = "canary-user"
AZURITE_ACCOUNTS_ENV = "AZURITE_ACCOUNTS"


def _canary(label: str) -> str:
    """A value that cannot occur by chance; letters and digits only, so no encoding step can disguise it."""
    return f"CANARY{label}{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Canaries:
    """One distinct canary per secret setting (and the storage account key)."""

    qualys_token: str = field(default_factory=lambda: _canary("QualysToken"))
    qualys_client_id: str = field(default_factory=lambda: _canary("QualysClientId"))
    qualys_client_secret: str = field(default_factory=lambda: _canary("QualysClientSecret"))
    smtp_password: str = field(default_factory=lambda: _canary("SmtpPassword"))
    webhook_secret: str = field(default_factory=lambda: _canary("WebhookSecret"))
    webhook_path_token: str = field(default_factory=lambda: _canary("WebhookPathToken"))
    webhook_query_token: str = field(default_factory=lambda: _canary("WebhookQueryToken"))
    # Base64 text (letters and digits, a multiple of 4 long) that Azurite accepts as an account key.
    account_key: str = field(default_factory=lambda: ("CANARYAccountKey" + uuid.uuid4().hex * 2)[:80])

    def named(self) -> dict[str, str]:
        return dict(vars(self))


@contextmanager
def canary_azurite(key: str) -> Iterator[tuple[azurite.Azurite, str]]:
    """A private Azurite whose only account has the canary key; yields it and its connection string."""
    previous = os.environ.get(AZURITE_ACCOUNTS_ENV)
    os.environ[AZURITE_ACCOUNTS_ENV] = f"{CANARY_ACCOUNT}:{key}"
    try:
        running = azurite.start()
    finally:
        if previous is None:
            os.environ.pop(AZURITE_ACCOUNTS_ENV, None)
        else:
            os.environ[AZURITE_ACCOUNTS_ENV] = previous
    base = f"http://{LOOPBACK}"
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={CANARY_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={base}:{running.blob_port}/{CANARY_ACCOUNT};"
        f"QueueEndpoint={base}:{running.queue_port}/{CANARY_ACCOUNT};"
        f"TableEndpoint={base}:{running.table_port}/{CANARY_ACCOUNT};"
    )
    try:
        yield running, connection
    finally:
        running.stop()


class CanarySmtpReceiver(SmtpReceiver):
    """The demo's STARTTLS + AUTH receiver, accepting only the canary password and counting logins."""

    def __init__(self, mail_dir: Path, workdir: Path, password: str) -> None:
        super().__init__(mail_dir, workdir)
        self.password = password
        self.logins_accepted = 0

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USERNAME.encode(),
            self.password.encode(),
        )
        if ok:
            self.logins_accepted += 1
        else:
            self.logins_refused += 1
        return AuthResult(success=ok, handled=False)


@dataclass
class WebhookCall:
    """One POST the webhook receiver got."""

    target: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.calls.append(WebhookCall(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    calls: list[WebhookCall]


class RecordingWebhook:
    """A loopback webhook receiver that keeps the target, headers and body of every POST."""

    def __init__(self) -> None:
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.calls = []
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def calls(self) -> list[WebhookCall]:
        return self._server.calls

    def url(self, path_token: str, query_token: str) -> str:
        query = urllib.parse.urlencode({"token": query_token})
        return f"http://{LOOPBACK}:{self._server.server_address[1]}{WEBHOOK_PATH_PREFIX}{path_token}?{query}"

    def __enter__(self) -> RecordingWebhook:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class ArmExchange:
    """One ARM request the simulator answered: what the app sent and what ARM showed back."""

    method: str
    path: str
    request_body: bytes
    response_body: str


class RecordingArmState(SimState):
    """The simulator's state, keeping every ARM exchange (PUT bodies with secure values, GET answers)."""

    def __init__(self, scenario: Scenario, now: Callable[[], datetime], identity_header: str) -> None:
        super().__init__(scenario, now, identity_header)
        self.exchanges: list[ArmExchange] = []
        self._record_lock = threading.Lock()

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> SimResponse:
        response = super().handle(method, path, query, headers, body)
        shown = json.dumps(response.body) if response.body is not None else ""
        with self._record_lock:
            self.exchanges.append(ArmExchange(method.upper(), path, body, shown))
        return response

    def group_puts(self) -> list[dict[str, Any]]:
        """The container group bodies the app PUT, decoded."""
        return [
            json.loads(e.request_body)
            for e in self.exchanges
            if e.method == "PUT" and "/containergroups/" in e.path.lower() and e.request_body
        ]


class LogCollector(logging.Handler):
    """Every log record of the run, formatted with its exception text, at DEBUG and above."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {self.format(record)}")


@contextmanager
def collecting_logs(*noisy: str) -> Iterator[LogCollector]:
    """Attach a collector to the root logger at DEBUG (and to `noisy` loggers' levels) for the block."""
    collector = LogCollector()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *noisy)}
    root.addHandler(collector)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield collector
    finally:
        root.removeHandler(collector)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
