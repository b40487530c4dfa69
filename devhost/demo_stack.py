"""Everything `make demo` runs on loopback: Azurite, the receivers, the ARM simulator and the app on devhost."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activities.names import SEND_NOTIFICATIONS
from core.settings import Settings, get_settings, load_settings
from devhost import azurite
from devhost import clock as clock_mod
from devhost.armsim import ArmSimulator
from devhost.armsim.blob_events import webhook_sink
from devhost.demo_chat_receivers import ChatReceiver, slack_receiver, teams_receiver
from devhost.demo_receivers import LOOPBACK, SMTP_PASSWORD, SMTP_USERNAME, SmtpReceiver, WebhookReceiver
from devhost.demo_scenario import DemoScenario
from devhost.server import DEFAULT_TASK_HUB, DevHostServer
from starters.upload_events import UPLOAD_EVENTS_FUNCTION

ROOT = Path(__file__).resolve().parent.parent
APP_SPEC = str(ROOT / "function_app.py")
MAIL_DIR = "mail"
WEBHOOK_DIR = "webhooks"
TEAMS_DIR = "teams"
SLACK_DIR = "slack"
DEMO_SUBSCRIPTION_ID = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"
DEMO_SCANNER_RESOURCE_GROUP = "rg-qscanner"
FAKE_QUALYS_TOKEN = "FAKE-demo-token-not-a-qualys-credential"  # noqa: S105 - never reaches Qualys: the scanner is simulated
# Credentials that would take precedence over the simulator's managed identity in DefaultAzureCredential.
COMPETING_CREDENTIALS = ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT")


def demo_settings(
    storage_connection: str,
    sim_env: Mapping[str, str],
    smtp: SmtpReceiver,
    webhook: WebhookReceiver,
    overrides: Mapping[str, str],
    *,
    chat: Mapping[str, ChatReceiver] | None = None,
) -> dict[str, str]:
    """The app's environment: demo defaults (loopback receivers, Azurite, the simulator), then the scenario's."""
    defaults = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "QUALYS_POD": "US2",
        "QUALYS_ACCESS_TOKEN": FAKE_QUALYS_TOKEN,
        "AZURE_SUBSCRIPTION_ID": DEMO_SUBSCRIPTION_ID,
        "SCANNER_RESOURCE_GROUP": DEMO_SCANNER_RESOURCE_GROUP,
        "SCANNER_LOCATION": "westeurope",
        "RESOLVE_DIGESTS": "false",
        "AzureWebJobsStorage": storage_connection,
        "NOTIFICATION_EMAIL": "security-team@example.com",
        "SMTP_HOST": LOOPBACK,
        "SMTP_PORT": str(smtp.port),
        "SMTP_FROM": "qscanner-demo@example.com",
        "SMTP_USERNAME": SMTP_USERNAME,
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "SMTP_STARTTLS": "true",
        "NOTIFY_WEBHOOK_URL": webhook.url,
        "SSL_CERT_FILE": str(smtp.ca_bundle),
        **sim_env,
    }
    for name, receiver in (chat or {}).items():
        defaults[f"NOTIFY_{name.upper()}_URL"] = receiver.url
    return {**defaults, **overrides}


def apply_environment(env: Mapping[str, str]) -> None:
    """Make `env` the process environment of the app (devhost hosts it in this process)."""
    for name in COMPETING_CREDENTIALS:
        os.environ.pop(name, None)
    for name, value in env.items():
        os.environ[name] = value
    get_settings.cache_clear()


@dataclass
class DemoStack:
    """The running pieces; `settings` is what the app reads, `server` the devhost with the app."""

    out: Path
    scenario: DemoScenario
    clock: clock_mod.VirtualClock
    storage: azurite.Azurite
    smtp: SmtpReceiver
    webhook: WebhookReceiver
    sim: ArmSimulator
    settings: Settings
    server: DevHostServer
    chat: dict[str, ChatReceiver] | None = None
    """The scenario's Teams / Slack receivers by name."""

    def chat_count(self, name: str) -> int:
        """Messages the named chat receiver accepted (0 when the scenario has none)."""
        receiver = (self.chat or {}).get(name)
        return receiver.count if receiver else 0

    @property
    def mail_dir(self) -> Path:
        return self.out / MAIL_DIR

    @property
    def webhook_dir(self) -> Path:
        return self.out / WEBHOOK_DIR

    def sim_stats(self) -> dict[str, Any]:
        """The simulator's counters: ARM requests, scanner groups, images handed to scanners."""
        return self.sim.stats()


def _start_devhost(app_spec: str, clock: clock_mod.VirtualClock, task_hub: str) -> DevHostServer:
    """The app on devhost with the virtual clock; the engine runs only when the demo drives it (`wait_idle`)."""
    from devhost.engine import DurableEngine
    from devhost.functions import load_app
    from devhost.triggers import specs_from_index

    index = load_app(app_spec)
    # Ordered completions: the same scenario runs the same way every time (docs/demo.md, "Determinism"); alerts, which
    # race on one claim row by design, run one at a time in scheduling order.
    engine = DurableEngine(
        index, clock=clock, task_hub=task_hub, ordered_completions=True, serial_activities=(SEND_NOTIFICATIONS,)
    )
    server = DevHostServer(
        specs_from_index(index),
        engine,
        task_hub=task_hub,
        manage_engine=False,
        orchestrator_exists=lambda name: index.orchestrator(name) is not None,
    )
    try:
        return server.start()
    except BaseException:
        engine.close()
        raise


@contextlib.contextmanager
def running_stack(
    scenario: DemoScenario, out: Path, log: Callable[[str], None], app_spec: str = APP_SPEC
) -> Iterator[DemoStack]:
    """Start everything (in dependency order) and stop it all again, whatever happens in between."""
    workdir = Path(tempfile.mkdtemp(prefix="qscan-demo-"))
    clock = clock_mod.VirtualClock()
    clock_mod.install(clock)  # the simulator and the engine read the same virtual time
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        log("starting Azurite ...")
        storage = azurite.start()
        stack.callback(storage.stop)
        smtp = SmtpReceiver(out / MAIL_DIR, workdir).start()
        stack.callback(smtp.stop)
        webhook = WebhookReceiver(out / WEBHOOK_DIR).start()
        stack.callback(webhook.stop)
        makers = {"teams": (teams_receiver, TEAMS_DIR), "slack": (slack_receiver, SLACK_DIR)}
        chat: dict[str, ChatReceiver] = {}
        for name in scenario.receivers:
            make, directory = makers[name]
            chat[name] = make(out / directory).start()
            stack.callback(chat[name].stop)
        sim = ArmSimulator(scenario.sim).start()
        stack.callback(sim.stop)
        env = demo_settings(storage.connection_string, sim.env(), smtp, webhook, scenario.sim.app_settings(), chat=chat)
        settings = load_settings(env)  # a SettingsError names every bad variable before anything else runs
        apply_environment(env)
        log("starting the app on devhost (virtual clock) ...")
        server = _start_devhost(app_spec, clock, settings.durable_task_hub or DEFAULT_TASK_HUB)
        stack.callback(server.engine.close)
        stack.callback(server.stop)
        # The storage account's Event Grid subscription: status uploads reach `upload_events` (ARMSIM_BLOB_EVENTS).
        sink = webhook_sink(server.base_url, UPLOAD_EVENTS_FUNCTION)
        sim.state.blob_events.subscribe(sink, settings.uploads_container)
        yield DemoStack(out, scenario, clock, storage, smtp, webhook, sim, settings, server, chat)
