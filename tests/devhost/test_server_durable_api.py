"""The SDK client over HTTP from HTTP-triggered client functions, and the Durable built-in API, on the real engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from devhost.server import DevHostServer
from tests.devhost.server_support import TIMEOUT, idle, running_server
from tests.loopback import loopback_http_server

WEBHOOK = "/runtime/webhooks/durabletask"


@pytest.fixture(scope="module")
def server() -> Iterator[DevHostServer]:
    with running_server() as (running, _clock):
        yield running


def _start(server: DevHostServer, name: str, instance_id: str = "", payload: object = None) -> requests.Response:
    url = f"{server.base_url}/api/orchestrators/{name}/{instance_id}".rstrip("/")
    return requests.post(url, json=payload, timeout=TIMEOUT)


def _status(server: DevHostServer, instance_id: str) -> dict[str, object]:
    response = requests.get(f"{server.base_url}/api/status/{instance_id}", timeout=TIMEOUT)
    assert response.status_code == 200
    payload: dict[str, object] = response.json()
    return payload


def test_check_status_response_urls_resolve_and_drive_the_instance(server: DevHostServer) -> None:
    response = _start(server, "approval", "app-1", {"a": 1})

    assert response.status_code == 202
    links = response.json()
    assert links["id"] == "app-1"
    assert response.headers["Location"] == links["statusQueryGetUri"]
    assert links["statusQueryGetUri"].startswith(f"{server.base_url}{WEBHOOK}/instances/app-1?taskHub=TestHub")
    idle(server)
    waiting = requests.get(links["statusQueryGetUri"], timeout=TIMEOUT)
    assert waiting.status_code == 202
    assert waiting.json()["runtimeStatus"] == "Running"
    assert waiting.json()["customStatus"] == "waiting"
    event_url = links["sendEventPostUri"].replace("{eventName}", "decision")
    assert requests.post(event_url, json={"ok": True}, timeout=TIMEOUT).status_code == 202
    idle(server)
    done = requests.get(links["statusQueryGetUri"], timeout=TIMEOUT)
    assert done.status_code == 200
    assert done.json()["runtimeStatus"] == "Completed"
    assert done.json()["output"] == {"input": {"a": 1}, "decision": {"ok": True}}
    terminate_url = links["terminatePostUri"].replace("{text}", "late")
    assert requests.post(terminate_url, timeout=TIMEOUT).status_code == 410
    assert requests.delete(links["purgeHistoryDeleteUri"], timeout=TIMEOUT).json() == {"instancesDeleted": 1}
    assert requests.get(links["statusQueryGetUri"], timeout=TIMEOUT).status_code == 404


def test_sdk_get_status_of_unknown_instance_has_no_runtime_status(server: DevHostServer) -> None:
    assert _status(server, "never-started")["runtimeStatus"] is None


def test_sdk_raise_event_arrives_as_json_text_as_on_azure(server: DevHostServer) -> None:
    assert _start(server, "approval", "sdk-ev", {"n": 2}).status_code == 202
    idle(server)
    assert _status(server, "sdk-ev")["runtimeStatus"] == "Running"

    raised = requests.post(f"{server.base_url}/api/events/sdk-ev/decision", json={"y": 2}, timeout=TIMEOUT)
    assert raised.status_code == 202
    idle(server)

    status = _status(server, "sdk-ev")
    assert status["runtimeStatus"] == "Completed"
    # The SDK's raise_event double-encodes: Azure/azure-functions-durable-python#295.
    assert status["output"] == {"input": {"n": 2}, "decision": '{"y": 2}'}


def test_sdk_terminate_purge_and_list(server: DevHostServer) -> None:
    base = server.base_url
    assert _start(server, "approval", "sdk-term").status_code == 202
    idle(server)

    assert "sdk-term" in requests.get(f"{base}/api/instances", timeout=TIMEOUT).json()
    running = requests.get(f"{base}/api/instances", params={"runtimeStatus": "Running"}, timeout=TIMEOUT).json()
    assert "sdk-term" in running
    assert requests.post(f"{base}/api/terminate/sdk-term", params={"reason": "stop"}, timeout=TIMEOUT).ok
    idle(server)
    assert _status(server, "sdk-term")["runtimeStatus"] == "Terminated"
    terminated = requests.get(f"{base}/api/instances", params={"runtimeStatus": "Terminated"}, timeout=TIMEOUT).json()
    assert "sdk-term" in terminated
    assert requests.delete(f"{base}/api/purge/sdk-term", timeout=TIMEOUT).json() == {"instancesDeleted": 1}
    assert requests.delete(f"{base}/api/purge/sdk-term", timeout=TIMEOUT).json() == {"instancesDeleted": 0}


def test_sdk_wait_for_completion_returns_the_output(server: DevHostServer) -> None:
    response = requests.post(f"{server.base_url}/api/run/greeter", json={"name": "bob"}, timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.text == "hello bob"  # the SDK sends a string output as it is, not JSON-encoded


def test_sdk_signal_and_read_entity(server: DevHostServer) -> None:
    url = f"{server.base_url}/api/entities/counter/k1"

    assert requests.get(url, timeout=TIMEOUT).json() == {"exists": False, "state": None}
    assert requests.post(url, params={"op": "add"}, json=5, timeout=TIMEOUT).status_code == 202
    assert requests.post(url, params={"op": "add"}, json=2, timeout=TIMEOUT).status_code == 202
    idle(server)
    assert requests.get(url, timeout=TIMEOUT).json() == {"exists": True, "state": 7}
    builtin = f"{server.base_url}{WEBHOOK}/entities/counter/k1"
    assert requests.get(builtin, timeout=TIMEOUT).json() == 7
    assert requests.get(f"{server.base_url}{WEBHOOK}/entities/counter/nobody", timeout=TIMEOUT).status_code == 404


def test_builtin_api_status_codes_by_state(server: DevHostServer) -> None:
    start = f"{server.base_url}{WEBHOOK}/orchestrators"
    instances = f"{server.base_url}{WEBHOOK}/instances/"
    assert requests.post(f"{start}/greeter/s-done", json={"name": "x"}, timeout=TIMEOUT).status_code == 202
    assert requests.post(f"{start}/broken/s-failed", timeout=TIMEOUT).status_code == 202
    assert requests.post(f"{start}/approval/s-run", timeout=TIMEOUT).status_code == 202
    idle(server)

    assert requests.get(instances + "s-run", timeout=TIMEOUT).status_code == 202
    done = requests.get(instances + "s-done", timeout=TIMEOUT)
    assert (done.status_code, done.json()["output"]) == (200, "hello x")
    failed = requests.get(instances + "s-failed", timeout=TIMEOUT)
    assert (failed.status_code, failed.json()["runtimeStatus"]) == (200, "Failed")
    strict = requests.get(instances + "s-failed", params={"returnInternalServerErrorOnFailure": "true"}, timeout=10)
    assert strict.status_code == 500
    assert requests.get(instances + "unknown-id", timeout=TIMEOUT).status_code == 404
    assert requests.delete(instances + "s-run", timeout=TIMEOUT).status_code == 412
    history = requests.get(instances + "s-done", params={"showHistory": "true"}, timeout=TIMEOUT).json()
    assert history["historyEvents"]
    assert requests.post(instances + "s-run/terminate", params={"reason": "x"}, timeout=TIMEOUT).status_code == 202
    idle(server)
    terminated = requests.get(instances + "s-run", timeout=TIMEOUT)
    assert (terminated.status_code, terminated.json()["runtimeStatus"]) == (200, "Terminated")
    listed = requests.get(instances, params={"runtimeStatus": "Failed"}, timeout=TIMEOUT).json()
    assert [status["instanceId"] for status in listed] == ["s-failed"]


def test_builtin_api_start_errors(server: DevHostServer) -> None:
    start = f"{server.base_url}{WEBHOOK}/orchestrators"

    unknown = requests.post(f"{start}/no_such_orchestrator", timeout=TIMEOUT)
    assert unknown.status_code == 400
    assert "no_such_orchestrator" in unknown.json()["ExceptionMessage"]
    assert requests.post(f"{start}/approval/dup-1", json=1, timeout=TIMEOUT).status_code == 202
    assert requests.post(f"{start}/approval/dup-1", json=1, timeout=TIMEOUT).status_code == 409
    assert requests.post(f"{start}/approval", data="{not json", timeout=TIMEOUT).status_code == 400


def test_builtin_api_raise_event_requires_json_and_a_live_instance(server: DevHostServer) -> None:
    assert _start(server, "approval", "ev-1").status_code == 202
    idle(server)
    url = f"{server.base_url}{WEBHOOK}/instances/ev-1/raiseEvent/decision"

    plain = requests.post(url, data="x", headers={"Content-Type": "text/plain"}, timeout=TIMEOUT)
    assert plain.status_code == 400
    assert requests.post(url, json={"z": 1}, timeout=TIMEOUT).status_code == 202
    idle(server)
    assert _status(server, "ev-1")["output"] == {"input": None, "decision": {"z": 1}}
    assert requests.post(url, json=1, timeout=TIMEOUT).status_code == 410
    missing = f"{server.base_url}{WEBHOOK}/instances/missing/raiseEvent/decision"
    assert requests.post(missing, json=1, timeout=TIMEOUT).status_code == 404


def test_http_trigger_routes_methods_and_plain_string_result(server: DevHostServer) -> None:
    base = server.base_url

    response = requests.get(f"{base}/api/HELLO/world", params={"punct": "!"}, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.text == "hello world !"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert requests.get(f"{base}/api/hello/42", timeout=TIMEOUT).status_code == 404
    assert requests.post(f"{base}/api/hello/world", timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{base}/api/nothing/here", timeout=TIMEOUT).status_code == 404


def test_a_forged_host_header_does_not_redirect_the_durable_client(server: DevHostServer) -> None:
    """The client binding points at devhost's listener: a request's `Host` must not choose where the input goes."""
    received: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.path)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    with loopback_http_server(Recorder) as evil:
        forged = evil.removeprefix("http://")
        response = requests.post(
            f"{server.base_url}/api/orchestrators/greeter/forged-1",
            json={"name": "x"},
            headers={"Host": forged},
            timeout=TIMEOUT,
        )
    assert received == []
    assert response.status_code == 202
    idle(server)
    assert _status(server, "forged-1")["runtimeStatus"] == "Completed"
    # The check-status links follow the request's origin, as the SDK builds them on Azure (only the caller reads them).
    assert response.json()["statusQueryGetUri"].startswith(f"http://{forged}{WEBHOOK}/instances/forged-1")


def test_client_binding_is_the_listener_even_for_a_forged_host(server: DevHostServer) -> None:
    binding = json.loads(server.client_binding_for())
    assert binding["rpcBaseUrl"] == f"{server.base_url}/durabletask/"
    response = requests.get(
        f"{server.base_url}/api/status/never-started", headers={"Host": "evil.example:1234"}, timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert response.json()["runtimeStatus"] is None
