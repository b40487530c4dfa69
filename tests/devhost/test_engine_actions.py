"""Each action type through the real SDK: retries, timers, external events, continue-as-new, sub-orchestrations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devhost.clock import RealClock, VirtualClock
from devhost.errors import InstanceNotRunningError, OrchestrationExistsError, UnknownFunctionError
from devhost.history import EventType

APP = "features_app"


def history_of(engine, instance_id):
    hidden = (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED)
    return [
        (EventType(e["EventType"]).name, e.get("EventId"), e.get("TaskScheduledId", e.get("TimerId")))
        for e in engine.history(instance_id)
        if e["EventType"] not in hidden
    ]


def test_retry_until_success_uses_a_timer_then_a_new_task_id(make_engine):
    clock = VirtualClock()
    engine = make_engine(APP, clock=clock)
    started = clock.now()
    instance_id = engine.start_new("with_retry", "retry-ok", {"key": "retry-ok", "fail_times": 1})
    engine.run_until_idle(timeout=30)
    status = engine.get_status(instance_id, show_history=True)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"attempts": 2}
    assert history_of(engine, instance_id) == [
        ("EXECUTION_STARTED", -1, None),
        ("TASK_SCHEDULED", 0, None),
        ("TASK_FAILED", -1, 0),
        ("TIMER_CREATED", 1, None),
        ("TIMER_FIRED", -1, 1),
        ("TASK_SCHEDULED", 2, None),
        ("TASK_COMPLETED", -1, 2),
        ("EXECUTION_COMPLETED", -1, None),
    ]
    timer = next(e for e in status["historyEvents"] if e["EventType"] == "TimerCreated")
    assert timer["FireAt"].startswith((started + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S"))


def test_retry_exhaustion_raises_the_last_failure_in_the_orchestrator(make_engine):
    engine = make_engine(APP)
    instance_id = engine.start_new("with_retry", "retry-out", {"key": "retry-out", "fail_times": 10})
    engine.run_until_idle(timeout=30)
    status = engine.get_status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["error"].startswith("Activity function 'flaky' failed: ValueError: attempt 3 failed")
    kinds = [kind for kind, _, _ in history_of(engine, instance_id)]
    assert kinds.count("TASK_SCHEDULED") == 3
    assert kinds.count("TIMER_FIRED") == 3  # DTFx awaits the delay after the last failure too


def test_cancelled_timer_lets_the_instance_complete_and_an_open_one_keeps_it_running(make_engine):
    engine = make_engine(APP, clock=RealClock())
    cancelled = engine.start_new("timer_race", "race-cancel", "cancel")
    kept = engine.start_new("timer_race", "race-keep", "keep")
    engine.run_until_idle(timeout=30)
    assert engine.get_status(cancelled)["runtimeStatus"] == "Completed"
    assert engine.get_status(cancelled)["output"] == "activity"
    assert engine.get_status(kept)["runtimeStatus"] == "Running"


def test_uncancelled_timer_completes_once_it_fires_on_the_virtual_clock(make_engine):
    engine = make_engine(APP)
    kept = engine.start_new("timer_race", "race-keep", "keep")
    engine.run_until_idle(timeout=30)
    assert engine.get_status(kept)["output"] == "activity"
    assert [kind for kind, _, _ in history_of(engine, kept)][-2:] == ["TIMER_FIRED", "EXECUTION_COMPLETED"]


def test_a_45_minute_timer_costs_milliseconds_on_the_virtual_clock(make_engine):
    clock = VirtualClock()
    engine = make_engine(APP, clock=clock)
    started = clock.now()
    instance_id = engine.start_new("long_timer", "long", None)
    engine.run_until_idle(timeout=5)
    assert engine.get_status(instance_id)["output"] == 2700.0
    assert clock.now() - started >= timedelta(minutes=45)


def test_external_event_wins_over_a_timeout(make_engine):
    engine = make_engine(APP, clock=RealClock())
    instance_id = engine.start_new("approval", "approval-1", None)
    engine.run_until_idle(timeout=30)
    assert engine.get_status(instance_id)["runtimeStatus"] == "Running"
    engine.raise_event(instance_id, "approve", {"by": "ops"})
    engine.run_until_idle(timeout=30)
    status = engine.get_status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"approved": {"by": "ops"}}
    with pytest.raises(InstanceNotRunningError):
        engine.raise_event(instance_id, "approve", None)


def test_continue_as_new_starts_a_fresh_execution_with_reset_history(make_engine):
    engine = make_engine(APP)
    instance_id = engine.start_new("countdown", "countdown", 2)
    engine.raise_event(instance_id, "last", "early")  # delivered to the first execution, which does not wait for it
    engine.run_until_idle(timeout=30)
    status = engine.get_status(instance_id, show_history=True)
    assert status["runtimeStatus"] == "Running"
    assert status["input"] == 0
    assert [e["EventType"] for e in status["historyEvents"]] == ["ExecutionStarted", "TaskCompleted"]
    engine.raise_event(instance_id, "last", "late")
    engine.run_until_idle(timeout=30)
    assert engine.get_status(instance_id)["output"] == {"done": 0, "event": "late"}


def test_sub_orchestrations_return_output_and_failures(make_engine):
    engine = make_engine(APP)
    instance_id = engine.start_new("parent", "parent-1", None)
    engine.run_until_idle(timeout=30)
    status = engine.get_status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["child"] == {"parent": "parent-1", "doubled": 4}
    assert status["output"]["failure"].startswith("Orchestrator function 'failing_child' failed: child broke")
    assert engine.get_status("child-of-parent-1")["runtimeStatus"] == "Completed"


def test_activity_result_that_is_not_json_fails_the_activity(make_engine):
    engine = make_engine(APP)
    instance_id = engine.start_new("bad_result", "bad", None)
    engine.run_until_idle(timeout=30)
    error = engine.get_status(instance_id)["output"]["error"]
    assert error.startswith("Activity function 'returns_object' failed: ValueError: activity trigger output must be")


def test_orchestrator_exception_fails_the_instance(make_engine):
    engine = make_engine(APP)
    instance_id = engine.start_new("crashes", "crash", None)
    engine.run_until_idle(timeout=30)
    status = engine.get_status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == "Orchestrator function 'crashes' failed: boom"


def test_start_rules_match_the_extension(make_engine):
    engine = make_engine(APP, clock=RealClock())
    with pytest.raises(UnknownFunctionError):
        engine.start_new("no_such_orchestrator")
    engine.start_new("approval", "dup", None)
    with pytest.raises(OrchestrationExistsError):
        engine.start_new("approval", "dup", None)
    engine.terminate("dup", "stop")
    engine.run_until_idle(timeout=30)
    assert engine.get_status("dup")["runtimeStatus"] == "Terminated"
    assert engine.get_status("dup")["output"] == "stop"
    engine.start_new("crashes", "dup", None)  # a finished instance is replaced
    engine.run_until_idle(timeout=30)
    assert engine.get_status("dup")["name"] == "crashes"
    assert engine.purge("dup") and engine.get_status("dup") is None
