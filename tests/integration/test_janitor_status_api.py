"""The janitor reads the real SDK client's answers: a 500 from the status API keeps the group, a 404 lets it go.

The stand-in answers as the Durable extension's HTTP API does (HttpApiHandler): 200/202 with the status body, 404 with
an empty body for an unknown instance, and here a 500 with the host's `HttpError` body (a storage outage), which the
SDK turns into a status object without a runtime status, exactly like the 404.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

import azure.durable_functions as df
from azure.durable_functions.models.utils import http_utils

from core.janitor import ScannerGroupInfo
from core.settings import load_settings
from devhost.armsim.testing import BASE_APP_SETTINGS
from devhost.client_binding import client_binding
from starters.janitor import ScannerGroupStore, sweep
from tests.loopback import loopback_http_server

NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(hours=2)
ANSWERS: dict[str, tuple[int, object]] = {
    "live": (202, {"instanceId": "live", "runtimeStatus": "Running", "createdTime": "2026-10-02T09:00:00Z"}),
    "done": (200, {"instanceId": "done", "runtimeStatus": "Completed", "createdTime": "2026-10-02T09:00:00Z"}),
    "flaky": (500, {"Message": "An error has occurred."}),
    # Held-out review: a 500 whose body is empty or `{}` reads, through the SDK, exactly like the 404.
    "flaky-empty": (500, None),
    "flaky-blank": (500, {}),
    "gone": (404, None),
}


class StatusApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        instance = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        code, payload = ANSWERS.get(instance, (404, None))
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(code)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_500_from_the_status_api_never_deletes_a_group() -> None:
    groups = [ScannerGroupInfo(name=f"qscan-{name}", instance_id=name, created_at=OLD) for name in ANSWERS]
    deleted: list[str] = []
    settings = load_settings({**BASE_APP_SETTINGS, "AzureWebJobsStorage": "UseDevelopmentStorage=true"})

    async def run(origin: str) -> list[str]:
        client = df.DurableOrchestrationClient(client_binding(origin, "Hub"))
        try:
            report = await sweep(client, ScannerGroupStore(lambda: groups, deleted.append), settings, NOW)
        finally:
            await http_utils._close_session()  # the SDK's session belongs to this test's event loop
        return report.deleted

    with loopback_http_server(StatusApi) as origin:
        swept = asyncio.run(run(origin))
    assert swept == deleted == ["qscan-done", "qscan-gone"]
