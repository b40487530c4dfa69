"""The probe apps' Durable patterns on the engine (virtual clock): what a docs-style app gets back from devhost."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devhost.clock import VirtualClock
from devhost.status import format_status_time

PATTERNS = "probe_patterns_app"
EDGE = "probe_edge_app"
CLIENT = "probe_client_app"
TIMEOUT = 30


@pytest.fixture
def run(make_engine):
    """Run one orchestration of an app to its end and return its status."""

    def run_one(app, name, input_value=None, clock=None):
        engine = make_engine(app, clock=clock)
        instance_id = engine.start_new(name, None, input_value)
        return engine.wait_for_completion(instance_id, timeout=TIMEOUT)

    return run_one


def test_chaining_fan_out_and_payload_shapes(run):
    assert run(PATTERNS, "hello_orchestrator")["output"] == ["Hello Seattle", "Hello Tokyo", "Hello London"]
    assert run(PATTERNS, "fan_out_fan_in", 50)["output"] == sum(2 * i for i in range(50))
    payloads = run(PATTERNS, "payloads", {"k": "ü"})["output"]
    assert payloads == {
        "dict": {"a": 1, "nested": {"b": [1, 2]}},
        "list": [1, "two", None, 3.5],
        "none": None,
        "text": "héllo wörld ✓ 日本",
        "returns_none": None,
        "non_json_failed": True,
        "input": {"k": "ü"},
    }


def test_monitor_and_eternal_orchestrations_advance_the_virtual_clock(run):
    clock = VirtualClock()
    started = clock.now()
    monitor = run(PATTERNS, "monitor", {"id": "j", "ready_after": 3, "interval_s": 60}, clock)
    assert monitor["output"]["checks"] == 3
    assert monitor["lastUpdatedTime"] == format_status_time(started + timedelta(minutes=2))

    eternal = run(PATTERNS, "eternal_cleanup", {"count": 0, "stop_at": 3}, clock)
    assert (eternal["runtimeStatus"], eternal["output"]) == ("Completed", 3)
    assert eternal["input"] == {"count": 2, "stop_at": 3}
    # createdTime is the last execution's start, as DurableTask.AzureStorage records it on every ExecutionStarted.
    assert eternal["createdTime"] == format_status_time(clock.now() - timedelta(hours=1))


def test_human_interaction_times_out_under_run(run):
    status = run(PATTERNS, "human_interaction")
    assert (status["output"], status["customStatus"]) == ("escalated", "escalated")


def test_sub_orchestrations_with_and_without_retry_and_failure_propagation(run):
    status = run(PATTERNS, "provision_devices", ["d1", "d2"])
    output = status["output"]
    parent = status["instanceId"]
    assert output["results"] == [{"device": d, "key": f"Hello {d}", "parent": parent} for d in ("d1", "d2")]
    assert output["with_retry"]["device"] == "retried"
    assert output["failure"].startswith("Orchestrator function 'failing_child' failed: child failed: boom")

    edge = run(EDGE, "sub_retry_parent")["output"]
    assert edge["recovered"] == 2
    assert edge["exhausted"].startswith("Orchestrator function 'flaky_child' failed: child attempt 3 failed")
    assert edge["auto_id"]["instance"].endswith(":9")  # `{executionId}:{taskId}` as DurableTask.Core names it


def test_activity_retry_exhaustion_reaches_the_orchestrator_with_type_and_message(run):
    output = run(PATTERNS, "retry_exhaustion")["output"]
    assert output["type"] == "Exception"
    assert output["caught"].startswith(
        "Activity function 'always_fails' failed: ConnectionError: backend unreachable (call 3) \n Traceback"
    )


def test_failures_and_non_determinism_fail_the_instance(run):
    raised = run(PATTERNS, "orchestrator_raises")
    assert raised["runtimeStatus"] == "Failed"
    assert raised["output"] == "Orchestrator function 'orchestrator_raises' failed: orchestrator exploded: ünïcode"
    uncaught = run(EDGE, "uncaught_activity_failure")
    assert uncaught["runtimeStatus"] == "Failed"
    assert "KeyError: 'item 7 is cursed'" in uncaught["output"]
    nondeterministic = run(PATTERNS, "nondeterministic")
    assert nondeterministic["runtimeStatus"] == "Failed"
    assert "Non-deterministic orchestration detected at action index" in nondeterministic["output"]


def test_fan_out_with_a_failure_races_and_timers(run):
    assert run(EDGE, "fan_out_one_fails", "catch")["output"] == {
        "caught": "Activity function 'maybe_fail' failed: KeyError: 'item 7 is cursed'"
    }
    assert run(EDGE, "fan_out_one_fails")["runtimeStatus"] == "Failed"
    assert run(EDGE, "race_activities")["output"] == {"winner": 0.0, "other": 0.2, "fast_won": True}
    timed = run(EDGE, "uuids_and_time")["output"]
    assert (timed["distinct"], timed["elapsed"], timed["replaying"]) == (True, 330.0, False)
    assert run(EDGE, "unknown_activity")["output"].startswith("The function 'does_not_exist' doesn't exist")
    assert run(EDGE, "plain_function_orchestrator", "p")["output"] == "no yields: p"


def test_entities_from_orchestrations(run):
    counter = run(CLIENT, "counter_orchestrator", "k1")["output"]
    assert counter == {"state": 7, "error": "counter cannot do that", "after_reset": 0}
    assert run(EDGE, "account_flow", "acc")["output"] == [{"balance": 10}, {"balance": 15}, {"balance": 0}]


def test_renamed_functions_are_found_by_their_function_names(run):
    assert run(CLIENT, "RenamedOrchestrator", "x")["output"] == "<<x>>"
    assert run("probe_blueprint_app", "local_orchestrator", "b")["output"] == {"inner": "blueprint greets b"}


def test_history_events_are_shaped_as_the_extension_shows_them(make_engine):
    engine = make_engine(PATTERNS)
    instance_id = engine.start_new("provision_devices", "hist", ["d1"])
    engine.run_until_idle(timeout=TIMEOUT)
    events = engine.get_status(instance_id, show_history=True, show_history_output=True)["historyEvents"]
    kinds = [e["EventType"] for e in events]
    assert kinds == [
        "ExecutionStarted",
        "SubOrchestrationInstanceCompleted",
        "SubOrchestrationInstanceCompleted",
        "SubOrchestrationInstanceFailed",
        "ExecutionCompleted",
    ]
    assert all("EventId" not in e and "IsPlayed" not in e and "TaskScheduledId" not in e for e in events)
    assert events[0]["FunctionName"] == "provision_devices"
    assert "Input" not in events[0]
    child = events[1]
    assert child["FunctionName"] == "device_provisioning"
    assert child["Result"] == {"device": "d1", "key": "Hello d1", "parent": "hist"}
    assert child["ScheduledTime"] <= child["Timestamp"]
    assert events[3]["Reason"].startswith("Orchestrator function 'failing_child' failed")
    assert events[-1]["OrchestrationStatus"] == "Completed"

    quiet = engine.get_status(instance_id, show_history=True)["historyEvents"]
    assert all("Result" not in e for e in quiet)

    waiting = engine.start_new("custom_status_steps", "hist-open")
    engine.run_until_idle(timeout=TIMEOUT)
    open_events = engine.get_status(waiting, show_history=True)["historyEvents"]
    assert [e["EventType"] for e in open_events] == ["ExecutionStarted", "TaskCompleted"]
    assert open_events[1]["FunctionName"] == "hello"
