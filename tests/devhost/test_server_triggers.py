"""Event Hub and timer triggers through the admin endpoint, `@app.retry`, and the trigger conversions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests

from devhost import clock as clock_mod
from devhost.client_binding import client_binding
from devhost.http_trigger import compile_route
from devhost.server import DevHostServer
from devhost.triggers import EventHubSource, FunctionSpec, RetryPolicy, specs_by_type
from tests.devhost.apps import server_sample_app
from tests.devhost.server_support import START, TIMEOUT, idle, running_server, sample_specs


@pytest.fixture
def hosted() -> Iterator[tuple[DevHostServer, clock_mod.VirtualClock]]:
    server_sample_app.SEEN.update(events=[], timer=[], eh_attempts=[])
    with running_server() as running:
        yield running


def _admin(server: DevHostServer, name: str, admin_input: str) -> requests.Response:
    return requests.post(f"{server.base_url}/admin/functions/{name}", json={"input": admin_input}, timeout=TIMEOUT)


def test_event_hub_batch_is_retried_per_policy_without_sleeping(
    hosted: tuple[DevHostServer, clock_mod.VirtualClock],
) -> None:
    server, virtual_clock = hosted
    server_sample_app.FAIL_FIRST_ATTEMPTS["count"] = 1
    bodies = [{"name": "a"}, {"name": "b"}]

    response = _admin(server, "eventhub_starter", json.dumps(bodies))
    assert response.status_code == 202
    [record] = idle(server)["invocations"]
    assert record["id"] == response.headers["x-devhost-invocation-id"]
    assert record == {**record, "status": "succeeded", "attempts": 2, "function": "eventhub_starter"}
    assert server_sample_app.SEEN["eh_attempts"] == [2, 2]
    seen = server_sample_app.SEEN["events"]
    assert [event["body"] for event in seen] == bodies
    assert seen[1]["sequence"] == seen[0]["sequence"] + 1
    assert seen[0]["enqueued"] == START + timedelta(seconds=30)
    assert virtual_clock.now() >= START + timedelta(seconds=30)
    for name in ("a", "b"):
        status = requests.get(f"{server.base_url}/api/status/eh-{name}", timeout=TIMEOUT).json()
        assert (status["runtimeStatus"], status["output"]) == ("Completed", f"hello {name}")


def test_event_hub_failure_after_retries_is_logged_and_reported(
    hosted: tuple[DevHostServer, clock_mod.VirtualClock], caplog: pytest.LogCaptureFixture
) -> None:
    server, _clock = hosted
    server_sample_app.FAIL_FIRST_ATTEMPTS["count"] = 5

    assert _admin(server, "eventhub_starter", '{"name": "c"}').status_code == 202
    [record] = server.wait_idle(10)

    assert record.status == "failed"
    assert record.attempts == 3
    assert record.error == "RuntimeError: transient failure"
    assert server_sample_app.SEEN["eh_attempts"] == [1, 1, 1]
    assert "function eventhub_starter failed after 3 attempt(s)" in caplog.text
    server_sample_app.FAIL_FIRST_ATTEMPTS["count"] = 0


def test_timer_through_admin_endpoint(hosted: tuple[DevHostServer, clock_mod.VirtualClock]) -> None:
    server, _clock = hosted
    assert _admin(server, "janitor_timer", "").status_code == 202
    assert _admin(server, "janitor_timer", '{"IsPastDue": true}').status_code == 202
    records = server.wait_idle(10)

    assert [record.status for record in records] == ["succeeded", "succeeded"]
    assert server_sample_app.SEEN["timer"] == [False, True]


def test_admin_endpoint_rejects_unknown_functions_and_bad_bodies(
    hosted: tuple[DevHostServer, clock_mod.VirtualClock],
) -> None:
    server, _clock = hosted
    assert _admin(server, "no_such_function", "").status_code == 404
    assert _admin(server, "hello", "").status_code == 404
    bad = requests.post(f"{server.base_url}/admin/functions/janitor_timer", json={"input": 3}, timeout=10)
    assert bad.status_code == 400


def test_cardinality_one_and_many_admin_input_semantics() -> None:
    specs = specs_by_type(sample_specs(), "eventHubTrigger")
    many = specs["eventhub_starter"]
    one = FunctionSpec("single", {**many.trigger, "cardinality": "one"}, many.user_function)
    source = EventHubSource()

    assert source.bodies_from_admin_input(many, '[{"a": 1}, "text"]') == ['{"a": 1}', "text"]
    assert source.bodies_from_admin_input(many, '{"a": 1}') == ['{"a": 1}']
    assert source.bodies_from_admin_input(one, "[1, 2]") == ["[1, 2]"]
    single = source.trigger_value(one, ["payload"], [{"kind": "test"}])
    assert single.get_body() == b"payload"
    assert single.metadata["Properties"] == {"kind": "test"}
    assert single.sequence_number == 0
    batch = source.trigger_value(many, ["x", "y"])
    assert [event.get_body() for event in batch] == [b"x", b"y"]
    assert [event.sequence_number for event in batch] == [1, 2]
    with pytest.raises(ValueError, match="cardinality one"):
        source.trigger_value(one, ["x", "y"])


def test_retry_policy_delays() -> None:
    fixed = RetryPolicy.from_setting({"strategy": "fixed_delay", "max_retry_count": "3", "delay_interval": "00:00:05"})
    exponential = RetryPolicy.from_setting(
        {
            "strategy": "exponential_backoff",
            "max_retry_count": "-1",
            "minimum_interval": "00:00:01",
            "maximum_interval": "00:00:05",
        }
    )

    assert fixed is not None
    assert exponential is not None
    assert [fixed.delay_before(n).total_seconds() for n in (1, 2, 3)] == [5, 5, 5]
    assert (fixed.allows(3), fixed.allows(4)) == (True, False)
    assert [exponential.delay_before(n).total_seconds() for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert exponential.allows(1000)


def test_route_templates() -> None:
    assert compile_route("items/{id:int}").match("/Items/42")
    assert not compile_route("items/{id:int}").match("/items/x")
    assert compile_route("items/{id?}").match("/items")
    match = compile_route("files/{*path}").match("/files/a/b/c")
    assert match is not None
    assert match["path"] == "a/b/c"


def test_client_binding_has_what_the_sdk_reads() -> None:
    binding = json.loads(client_binding("http://127.0.0.1:7071", "Hub"))

    assert binding["rpcBaseUrl"] == "http://127.0.0.1:7071/durabletask/"
    assert binding["taskHubName"] == "Hub"
    assert binding["managementUrls"]["id"] == "INSTANCEID"
    assert binding["managementUrls"]["statusQueryGetUri"] == (
        "http://127.0.0.1:7071/runtime/webhooks/durabletask/instances/INSTANCEID?taskHub=Hub&connection=Storage"
    )
    assert "{functionName}" in binding["creationUrls"]["createNewInstancePostUri"]
