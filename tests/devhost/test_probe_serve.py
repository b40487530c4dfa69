"""`python -m devhost serve` driven over HTTP as a checker would: the probe apps' client functions and webhooks."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.devhost.conftest import app_path

ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"devhost listening on (http://127\.0\.0\.1:\d+)")
WEBHOOK = "/runtime/webhooks/durabletask"
TIMEOUT = 10
POLL_SECONDS = 0.02


@contextmanager
def served(app: str, *options: str) -> Iterator[str]:
    """`python -m devhost serve --app <app> --port 0 --clock virtual ...` in a subprocess; yields its base URL."""
    command = [sys.executable, "-m", "devhost", "serve", "--app", app_path(app), "--port", "0", "--clock", "virtual"]
    process = subprocess.Popen([*command, *options], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        base_url = ""
        for line in process.stderr:
            if found := LISTENING.search(line):
                base_url = found.group(1)
                break
        assert base_url, "devhost serve did not start"
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0


def poll(url: str, done: Callable[[requests.Response], bool] = lambda r: r.status_code != 202) -> requests.Response:
    """Poll a status URL (a real subprocess: there is no clock to simulate) until `done`."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        response = requests.get(url, timeout=TIMEOUT)
        if done(response) or time.monotonic() > deadline:
            return response
        time.sleep(POLL_SECONDS)


def waiting_for(status: Any) -> Callable[[requests.Response], bool]:
    return lambda response: response.json().get("customStatus") == status


def test_async_http_api_human_interaction_and_custom_status() -> None:
    with served("probe_patterns_app", "--event-grace", "60") as base:
        started = requests.post(f"{base}/api/orchestrators/hello_orchestrator", timeout=TIMEOUT)
        assert started.status_code == 202
        links = started.json()
        assert (started.headers["Location"], started.headers["Retry-After"]) == (links["statusQueryGetUri"], "10")
        done = poll(links["statusQueryGetUri"])
        assert (done.status_code, done.json()["output"]) == (200, ["Hello Seattle", "Hello Tokyo", "Hello London"])

        # A 72-hour timer races the event; with the virtual clock the host holds it while a client may still raise.
        links = requests.get(f"{base}/api/orchestrators/human_interaction", timeout=TIMEOUT).json()
        running = poll(links["statusQueryGetUri"], waiting_for("waiting for approval"))
        assert (running.status_code, running.json()["runtimeStatus"]) == (202, "Running")
        event_url = links["sendEventPostUri"].replace("{eventName}", "ApprovalEvent")
        assert requests.post(event_url, json={"ok": True}, timeout=TIMEOUT).status_code == 202
        approved = poll(links["statusQueryGetUri"])
        assert (approved.status_code, approved.json()["output"]) == (200, {"processed": {"ok": True}})
        assert approved.json()["customStatus"] == "approved"
        assert requests.post(event_url, json={}, timeout=TIMEOUT).status_code == 410

        links = requests.post(f"{base}/api/orchestrators/custom_status_steps", timeout=TIMEOUT).json()
        step = poll(links["statusQueryGetUri"], lambda r: r.json().get("customStatus", {}).get("step") == 2)
        assert (step.status_code, step.json()["runtimeStatus"]) == (202, "Running")
        event_url = links["sendEventPostUri"].replace("{eventName}", "Continue")
        assert requests.post(event_url, json="go", timeout=TIMEOUT).status_code == 202
        finished = poll(links["statusQueryGetUri"]).json()
        assert (finished["output"], finished["customStatus"]) == ("finished", {"step": 3, "label": "done"})

        unknown = requests.post(f"{base}/api/orchestrators/no_such_orchestrator", timeout=TIMEOUT)
        assert unknown.status_code == 500  # the SDK's start_new raises on the extension's 400


def _client_flows(base: str) -> None:
    started = requests.post(f"{base}/api/start/waiter/w-1", json={"a": "ü"}, timeout=TIMEOUT)
    assert started.status_code == 202
    status_url = f"{base}/api/status/w-1"
    waiting = poll(status_url, waiting_for({"phase": "waiting", "input": {"a": "ü"}})).json()
    assert (waiting["runtimeStatus"], waiting["input"]) == ("Running", {"a": "ü"})
    assert requests.post(f"{base}/api/raise/w-1/First", json={"x": 1}, timeout=TIMEOUT).status_code == 202
    poll(status_url, lambda r: r.json()["customStatus"]["phase"] == "got first")
    second = started.json()["sendEventPostUri"].replace("{eventName}", "Second")
    assert requests.post(second, json=[1, 2], timeout=TIMEOUT).status_code == 202
    done = poll(status_url, lambda r: r.json()["runtimeStatus"] == "Completed").json()
    # The SDK client's raise_event data arrives as JSON text (Azure/azure-functions-durable-python#295).
    assert done["output"] == {"first": '{"x": 1}', "second": [1, 2]}

    assert requests.get(f"{base}/api/status/unknown-id", timeout=TIMEOUT).json()["runtimeStatus"] is None
    refused = requests.post(f"{base}{WEBHOOK}/orchestrators/quick/@entity-like", timeout=TIMEOUT)
    assert refused.status_code == 400
    assert refused.json()["ExceptionMessage"] == "Orchestration instance ids must not start with @."
    assert requests.post(f"{base}/api/start/quick/@entity-like", timeout=TIMEOUT).status_code == 500  # SDK raises

    assert requests.post(f"{base}/api/start/waiter/w-2", timeout=TIMEOUT).status_code == 202
    poll(f"{base}/api/status/w-2", lambda r: r.json()["runtimeStatus"] == "Running")
    assert requests.post(f"{base}/api/terminate/w-2", params={"reason": "bye"}, timeout=TIMEOUT).status_code == 202
    terminated = poll(f"{base}/api/status/w-2", lambda r: r.json()["runtimeStatus"] == "Terminated").json()
    assert terminated["output"] == "bye"
    assert requests.delete(f"{base}/api/purge/w-2", timeout=TIMEOUT).json() == {"deleted": 1}
    assert requests.delete(f"{base}/api/purge/w-2", timeout=TIMEOUT).json() == {"deleted": 0}

    quick = requests.post(f"{base}/api/startwait/quick", json={"q": 1}, timeout=TIMEOUT)
    assert (quick.status_code, quick.json()) == (200, {"echo": {"q": 1}})
    pending = requests.post(f"{base}/api/startwait/waiter", params={"timeout": "200"}, json={}, timeout=TIMEOUT)
    assert (pending.status_code, set(pending.json())) == (202, set(started.json()))

    running = requests.get(f"{base}/api/instances", params={"status": "Running"}, timeout=TIMEOUT).json()
    assert [s["name"] for s in running] == ["waiter"]
    finished = requests.get(f"{base}/api/instances", params={"status": "Completed"}, timeout=TIMEOUT).json()
    assert sorted(s["name"] for s in finished) == ["quick", "waiter"]
    assert len(requests.get(f"{base}/api/instances", timeout=TIMEOUT).json()) == 3


def _entity_and_trigger_flows(base: str) -> None:
    for amount in (5, 2):
        assert requests.post(f"{base}/api/counter/c1/add", json=amount, timeout=TIMEOUT).status_code == 202
    state = poll(f"{base}/api/counter/c1", lambda r: r.json()["state"] == 7).json()
    assert state == {"exists": True, "state": 7}
    assert requests.get(f"{base}/api/counter/none", timeout=TIMEOUT).json() == {"exists": False, "state": None}
    assert requests.get(f"{base}{WEBHOOK}/entities/Counter/c1", timeout=TIMEOUT).json() == 7

    for name, admin_input in (("eventhub_one", json.dumps({"k": "v"})), ("timer_start", "")):
        response = requests.post(f"{base}/admin/functions/{name}", json={"input": admin_input}, timeout=TIMEOUT)
        assert response.status_code == 202
    batch = json.dumps([{"a": 1}, {"b": 2}])
    assert requests.post(f"{base}/admin/functions/eventhub_many", json={"input": batch}, timeout=TIMEOUT).ok
    assert requests.post(f"{base}/admin/devhost/idle", timeout=TIMEOUT).status_code == 200
    timer_started = requests.get(f"{base}{WEBHOOK}/instances/from-timer", timeout=TIMEOUT).json()
    assert timer_started["output"] == {"echo": {"past_due": False}}
    listed: list[dict[str, Any]] = requests.get(
        f"{base}{WEBHOOK}/instances", params={"instanceIdPrefix": "eh-"}, timeout=TIMEOUT
    ).json()
    assert sorted(s["input"]["batch"] for s in listed) == ['{"a": 1}', '{"b": 2}']
    by_event = [s for s in requests.get(f"{base}{WEBHOOK}/instances", timeout=TIMEOUT).json() if s["input"]]
    assert {"event": {"k": "v"}} in [s["input"] for s in by_event]


def test_client_functions_entities_and_non_http_triggers() -> None:
    with served("probe_client_app", "--event-grace", "60") as base:
        _client_flows(base)
        _entity_and_trigger_flows(base)
