"""Secret canaries, end to end: every secret setting is a unique value, and no sink but its destination ever holds it.

The app runs on devhost (virtual clock) against the ARM simulator, a private Azurite whose account key is a canary,
a STARTTLS SMTP receiver and a webhook receiver. Event Hub messages (good and garbage), a manual scan through the
HTTP API, a scanner error, a timeout, ARM faults and a janitor run all happen. Then each sink is searched for every
canary and for the upload SAS: orchestration inputs/outputs/custom status/history, the durable store file, logs,
stdout/stderr, ARM's answers, e-mails, webhook bodies, HTTP API answers and the stored results. The canaries must
also reach their real destinations (ACI secure values, SMTP AUTH, the webhook's HMAC and URL, Azurite), so the test
proves they were used and not just absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from activities import clients as arm_clients
from activities.notifications import LEGACY_SIGNATURE_HEADER
from activities.storage_clients import clients_for, uploads_container_of
from core.scanner_spec import SCANNER_COMMAND
from core.settings import Settings, get_settings
from devhost.armsim import ArmSimulator, Scenario
from devhost.armsim.testing import SCANNER_RESOURCE_GROUP, SUBSCRIPTION_ID, point_process_at, resource_id
from devhost.clock import RealClock, VirtualClock, install
from devhost.engine import DurableEngine
from devhost.functions import load_app
from devhost.server import DevHostServer
from devhost.triggers import specs_from_index
from starters.eventhub_starter import EVENTHUB_STARTER_FUNCTION
from starters.janitor import JANITOR_FUNCTION
from tests.e2e.canary_support import (
    CANARY_ACCOUNT,
    SMTP_USERNAME,
    WEBHOOK_PATH_PREFIX,
    ArmExchange,
    Canaries,
    CanarySmtpReceiver,
    RecordingArmState,
    RecordingWebhook,
    WebhookCall,
    canary_azurite,
    collecting_logs,
)

pytestmark = [pytest.mark.azurite, pytest.mark.slow]
START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
TASK_HUB = "CanaryHub"
SECRET_ENV_NAMES = ("QUALYS_ACCESS_TOKEN", "QUALYS_CLIENT_ID", "QUALYS_CLIENT_SECRET", "RESULTS_SAS_URL")
SHOP = resource_id("Microsoft.ContainerInstance/containerGroups", "shop")
API = resource_id("Microsoft.App/containerApps", "api")
OWN_GROUP = resource_id("Microsoft.ContainerInstance/containerGroups", "qscan-own", SCANNER_RESOURCE_GROUP)
SCENARIO = Scenario.model_validate(
    {
        "resources": [
            {"id": SHOP, "images": ["nginx:1.27", "ghcr.io/acme/broken:1"]},
            {"id": API, "images": ["acme.azurecr.io/slow:1"]},
            {"id": OWN_GROUP, "images": ["mcr.microsoft.com/azurelinux/base/core:3.0"]},
        ],
        "scans": {
            "default": {"result": "ok", "duration_s": 60, "vulnerabilities": {"LOW": 1}},
            "nginx:1.27": {"result": "ok", "duration_s": 90, "vulnerabilities": {"HIGH": 1}},
            "ghcr.io/acme/broken:1": {"result": "error", "duration_s": 30, "exit_code": 9},
            "acme.azurecr.io/slow:1": {"result": "hang"},
        },
    }
)
NOISY_LOGGERS = ("azure", "urllib3", "devhost", "activities", "starters", "orchestrators", "core", "aiohttp")


def grid_event(rid: str, n: int) -> dict[str, Any]:
    """An Event Grid ResourceWriteSuccess event for resource id `rid`."""
    provider_type = "/".join(rid.split("/")[6:8])
    return {
        "id": f"f5e4d3c2-0000-4000-8000-00000000000{n}",
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-10-02T08:00:00Z",
        "subject": rid,
        "data": {
            "operationName": f"{provider_type}/write",
            "status": "Succeeded",
            "correlationId": f"c0ffee00-0000-4000-8000-00000000000{n}",
            "resourceUri": rid,
        },
    }


@dataclass
class CanaryRun:
    """Everything the run left behind, by sink."""

    canaries: Canaries
    settings: Settings
    arm: list[ArmExchange]
    group_puts: list[dict[str, Any]]
    statuses: dict[str, dict[str, Any]]
    api_answers: list[str]
    stored_results: list[str]
    logs: list[str]
    stdout: str
    stderr: str
    mails: list[bytes]
    webhooks: list[WebhookCall]
    smtp_logins: int
    upload_failures: int
    store_text: str = ""
    store_bytes: bytes = b""
    sas_urls: list[str] = field(default_factory=list)

    def secrets(self) -> dict[str, str]:
        """Each canary, and each upload SAS (whole query, signature raw and percent-encoded), by label."""
        found = self.canaries.named()
        for n, url in enumerate(self.sas_urls):
            query = urlsplit(url).query
            found[f"sas{n}.query"] = query
            found[f"sas{n}.sig"] = parse_qs(query)["sig"][0]
            found[f"sas{n}.sig-encoded"] = next(p for p in query.split("&") if p.startswith("sig="))[4:]
        return found

    def leaks(self, *texts: str | bytes) -> list[str]:
        """Labels of the secrets that occur in any of `texts`."""
        joined = "\n".join(t.decode("latin-1") if isinstance(t, bytes) else t for t in texts)
        return sorted(label for label, value in self.secrets().items() if value in joined)


def _environment(
    canaries: Canaries, connection: str, smtp: CanarySmtpReceiver, webhook: RecordingWebhook
) -> dict[str, str]:
    return {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "QUALYS_POD": "US2",
        "QUALYS_ACCESS_TOKEN": canaries.qualys_token,
        "QUALYS_CLIENT_ID": canaries.qualys_client_id,
        "QUALYS_CLIENT_SECRET": canaries.qualys_client_secret,
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION_ID,
        "SCANNER_RESOURCE_GROUP": SCANNER_RESOURCE_GROUP,
        "SCANNER_LOCATION": "westeurope",
        "AzureWebJobsStorage": connection,
        "RESOLVE_DIGESTS": "false",
        "SCAN_TIMEOUT": "600",
        "MAX_IMAGES_PER_SCANNER_GROUP": "10",
        "SCAN_TIMEOUT_PER_IMAGE": "30",
        "NOTIFY_SEVERITY_THRESHOLD": "HIGH",
        "NOTIFICATION_EMAIL": "security@example.com",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_FROM": "qscanner@example.com",
        "SMTP_USERNAME": SMTP_USERNAME,
        "SMTP_PASSWORD": canaries.smtp_password,
        "SMTP_STARTTLS": "true",
        "SSL_CERT_FILE": str(smtp.ca_bundle),
        "NOTIFY_WEBHOOK_URL": webhook.url(canaries.webhook_path_token, canaries.webhook_query_token),
        "NOTIFY_WEBHOOK_SECRET": canaries.webhook_secret,
    }


def _drive(server: DevHostServer, sim: ArmSimulator) -> list[str]:
    """Deliver a mixed batch, a manual scan and a janitor run; returns the HTTP API's answers."""
    sim.inject("PUT", r"/containerGroups/qscan-", 500, times=1)  # a failed create, retried
    sim.inject("GET", r"/containerGroups/qscan-", 429, times=1, retry_after=5)  # a throttled poll
    batch = [grid_event(SHOP, 1), grid_event(API, 2), grid_event(OWN_GROUP, 3), "not json {", '{"records": 5}']
    session = requests.Session()
    admin = f"{server.base_url}/admin/functions"
    assert session.post(f"{admin}/{EVENTHUB_STARTER_FUNCTION}", json={"input": json.dumps(batch)}).status_code == 202
    server.wait_idle(timeout=120)
    answers = [session.post(f"{server.base_url}/api/scans", json={"image": "redis:7.4", "force": True}).text]
    server.wait_idle(timeout=120)
    assert session.post(f"{admin}/{JANITOR_FUNCTION}", json={"input": ""}).status_code == 202
    server.wait_idle(timeout=120)
    for instance in server.engine.list_statuses():
        answers.append(session.get(f"{server.base_url}/api/scans/{instance['instanceId']}").text)
    answers.append(session.get(f"{server.base_url}/api/images", params={"ref": "nginx:1.27"}).text)
    session.close()
    return answers


def _stored_results(settings: Settings) -> list[str]:
    """Every blob and table row in the results storage account, as text."""
    storage = clients_for(settings)
    texts: list[str] = []
    for container in storage.blob_service.list_containers():
        client = storage.blob_service.get_container_client(container.name)
        texts += [client.download_blob(b.name).readall().decode("latin-1") for b in client.list_blobs()]
    for table in storage.table_service.list_tables():
        rows = storage.table_service.get_table_client(table.name).list_entities()
        texts += [json.dumps(dict(row), default=str) for row in rows]
    return texts


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CanaryRun]:
    canaries = Canaries()
    work = tmp_path_factory.mktemp("canary")
    store_path = work / "devhost.sqlite"
    clock = VirtualClock(START)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        _, connection = stack.enter_context(canary_azurite(canaries.account_key))
        smtp = CanarySmtpReceiver(work / "mail", work, canaries.smtp_password)
        smtp.start()
        stack.callback(smtp.stop)
        webhook = stack.enter_context(RecordingWebhook())
        sim = ArmSimulator(SCENARIO, clock=clock)
        recorder = RecordingArmState(sim.scenario, clock.now, sim.identity_header)
        sim.state = recorder
        stack.enter_context(sim)
        for name, value in _environment(canaries, connection, smtp, webhook).items():
            patch.setenv(name, value)
        point_process_at(sim, patch)
        get_settings.cache_clear()
        arm_clients.reset_cache()
        stack.callback(install, RealClock())
        stack.callback(arm_clients.reset_cache)
        stack.callback(get_settings.cache_clear)
        logs = stack.enter_context(collecting_logs(*NOISY_LOGGERS))
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        index = load_app("function_app")
        engine = DurableEngine(index, store_path=str(store_path), clock=clock, task_hub=TASK_HUB)
        stack.callback(engine.close)
        server = DevHostServer(specs_from_index(index), engine, task_hub=TASK_HUB, manage_engine=False).start()
        stack.callback(server.stop)

        answers = _drive(server, sim)
        statuses = {
            i["instanceId"]: engine.get_status(i["instanceId"], show_history=True, show_history_output=True) or {}
            for i in engine.list_statuses()
        }
        settings = get_settings()
        captured = CanaryRun(
            canaries=canaries,
            settings=settings,
            arm=list(recorder.exchanges),
            group_puts=recorder.group_puts(),
            statuses=statuses,
            api_answers=answers,
            stored_results=_stored_results(settings),
            logs=logs.lines,
            stdout="",
            stderr="",
            mails=[p.read_bytes() for p in sorted((work / "mail").glob("*.eml"))],
            webhooks=list(webhook.calls),
            smtp_logins=smtp.logins_accepted,
            upload_failures=sim.stats()["upload_failures"],
        )
    captured.stdout, captured.stderr = stdout.getvalue(), stderr.getvalue()
    captured.sas_urls = [_env_of(put)["RESULTS_SAS_URL"] for put in captured.group_puts]
    with contextlib.closing(sqlite3.connect(store_path)) as db:
        captured.store_text = "\n".join(db.iterdump())
    captured.store_bytes = b"".join(p.read_bytes() for p in Path(work).glob("devhost.sqlite*"))
    yield captured


def _env_of(put: dict[str, Any]) -> dict[str, str]:
    """The scanner container's environment in a PUT body (secure values included)."""
    variables = put["properties"]["containers"][0]["properties"]["environmentVariables"]
    return {v["name"]: v.get("secureValue", v.get("value")) for v in variables}


def test_the_canaries_reach_their_real_destinations(run: CanaryRun) -> None:
    """Otherwise the absence checks below would prove nothing."""
    assert run.group_puts, "no scanner group was created"
    for put in run.group_puts:
        env = _env_of(put)
        assert env["QUALYS_ACCESS_TOKEN"] == run.canaries.qualys_token
        assert env["QUALYS_CLIENT_ID"] == run.canaries.qualys_client_id
        assert env["QUALYS_CLIENT_SECRET"] == run.canaries.qualys_client_secret
    assert run.upload_failures == 0  # the fake scanner uploaded every result through the SAS
    scanned = [r for s in run.statuses.values() for r in (s.get("output") or {}).get("images", [])]
    assert {"completed", "failed", "timed_out"} <= {r["status"] for r in scanned}
    assert run.smtp_logins >= 1 and run.mails  # SMTP AUTH with the canary password, over STARTTLS
    assert run.webhooks
    for call in run.webhooks:
        assert call.target.startswith(WEBHOOK_PATH_PREFIX + run.canaries.webhook_path_token + "?")
        assert run.canaries.webhook_query_token in call.target
        key = run.canaries.webhook_secret.encode()
        assert (
            call.headers[LEGACY_SIGNATURE_HEADER.lower()]
            == "sha256=" + hmac.new(key, call.body, hashlib.sha256).hexdigest()
        )
    assert run.stored_results  # Azurite accepted the canary account key


def test_secrets_reach_aci_only_as_secure_values(run: CanaryRun) -> None:
    for put in run.group_puts:
        container = put["properties"]["containers"][0]["properties"]
        assert container["command"] == list(SCANNER_COMMAND)
        for variable in container["environmentVariables"]:
            if variable["name"] in SECRET_ENV_NAMES:
                assert "value" not in variable and variable["secureValue"], variable["name"]
        container["environmentVariables"] = [v for v in container["environmentVariables"] if "secureValue" not in v]
        assert run.leaks(json.dumps(put)) == []


def test_the_upload_sas_is_create_write_only_short_lived_and_scoped_to_its_groups_container(run: CanaryRun) -> None:
    lifetime = timedelta(minutes=run.settings.upload_sas_minutes)
    puts = [e for e in run.arm if e.method == "PUT" and "/containergroups/" in e.path.lower() and e.request_body]
    containers: dict[str, str] = {}
    for put in puts:
        group = put.path.rstrip("/").rsplit("/", 1)[1]
        parts = urlsplit(_env_of(json.loads(put.request_body))["RESULTS_SAS_URL"])
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["sp"] == "cw" and query["sr"] == "c"
        assert parts.path == f"/{CANARY_ACCOUNT}/{uploads_container_of(run.settings, group)}"
        containers[group] = parts.path
        starts = datetime.fromisoformat(query["st"].replace("Z", "+00:00"))
        expires = datetime.fromisoformat(query["se"].replace("Z", "+00:00"))
        assert expires - starts <= lifetime + timedelta(minutes=5)  # plus the clock-skew allowance
    assert len(containers) >= 2 and len(set(containers.values())) == len(containers)  # one container per group


def test_arm_never_shows_a_secret_back(run: CanaryRun) -> None:
    gets = [e for e in run.arm if e.method == "GET" and "/containergroups/qscan-" in e.path.lower()]
    assert gets
    assert run.leaks(*(e.response_body for e in run.arm)) == []


def test_orchestration_inputs_outputs_status_and_history_hold_no_secret(run: CanaryRun) -> None:
    assert len(run.statuses) >= 3
    for instance_id, status in run.statuses.items():
        assert status.get("historyEvents") is not None or instance_id.startswith("@")
        assert run.leaks(json.dumps(status)) == [], instance_id


def test_the_durable_store_file_holds_no_secret(run: CanaryRun) -> None:
    assert "scan_deployment" in run.store_text
    assert run.leaks(run.store_text, run.store_bytes) == []


def test_logs_stdout_and_stderr_hold_no_secret(run: CanaryRun) -> None:
    assert any("event batch" in line for line in run.logs)  # the app's own log lines were captured
    assert run.leaks(*run.logs) == []
    assert run.leaks(run.stdout, run.stderr) == []


def test_notifications_hold_no_secret(run: CanaryRun) -> None:
    assert run.leaks(*run.mails) == []
    bodies_and_headers = [c.body for c in run.webhooks] + [json.dumps(c.headers) for c in run.webhooks]
    assert run.leaks(*bodies_and_headers) == []


def test_http_api_answers_and_stored_results_hold_no_secret(run: CanaryRun) -> None:
    assert len(run.api_answers) >= 3
    assert run.leaks(*run.api_answers) == []
    assert run.leaks(*run.stored_results) == []
