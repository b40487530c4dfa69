"""Replay fidelity: the trigger payload the SDK receives, and non-determinism detection."""

from __future__ import annotations

import json

import pytest

from devhost import history as h
from devhost.actions import NonDeterminismError, ShimReplay
from devhost.clock import RealClock, VirtualClock

APP = "features_app"


def test_changed_orchestrator_code_fails_the_instance_as_non_deterministic(make_engine):
    engine = make_engine(APP, clock=RealClock())
    instance_id = engine.start_new("changes_code", "nd", None)
    engine.run_until_idle(timeout=30)
    assert engine.get_status(instance_id)["runtimeStatus"] == "Running"
    behaviour = engine.index.module.BEHAVIOUR  # the app module devhost loaded
    behaviour["first_activity"] = "step_b"
    try:
        engine.raise_event(instance_id, "go", None)
        engine.run_until_idle(timeout=30)
    finally:
        behaviour["first_activity"] = "step_a"
    status = engine.get_status(instance_id)
    assert status["runtimeStatus"] == "Failed"
    message = status["output"]
    assert "Non-deterministic orchestration" in message
    assert "action index 0 (task id 0)" in message
    assert "expects CallActivity 'step_a' but the replay scheduled CallActivity 'step_b'" in message


def test_replay_reports_history_the_code_no_longer_schedules():
    clock = VirtualClock()
    now = clock.now()
    events = [
        h.orchestrator_started(now),
        h.execution_started(now, "o", None, "i", "e", None),
        h.task_scheduled(now, 0, "a", None),
        h.timer_created(now, 1, h.format_timestamp(now)),
    ]
    actions = [{"actionType": 0, "functionName": "a", "input": None}]
    replay = ShimReplay(actions, "i", "e", now)
    events.insert(3, h.task_completed(now, 0, "1"))
    with pytest.raises(NonDeterminismError, match="expects CreateTimer but the replay scheduled nothing"):
        replay.replay(events)


def test_context_payload_has_the_fields_the_extension_sends():
    now = VirtualClock().now()
    history = h.ExecutionHistory()
    history.commit([h.orchestrator_started(now), h.execution_started(now, "o", '{"a": 1}', "i", "e", None)])
    payload = json.loads(
        h.build_context_json(history.render([h.orchestrator_started(now)]), "i", '{"a": 1}', None, True)
    )
    assert payload["input"] == '{"a": 1}'
    assert payload["upperSchemaVersion"] == 1 and payload["upperSchemaVersionNew"] == 2
    assert payload["isReplaying"] is True and payload["parentInstanceId"] is None
    played = [event["IsPlayed"] for event in payload["history"]]
    assert played == [False, True, False]  # OrchestratorStarted is never marked played
    assert payload["history"][1]["Version"] == ""


def test_is_replaying_is_true_only_for_code_before_the_newest_event(make_engine):
    engine = make_engine(APP)
    instance_id = engine.start_new("replay_flags", "flags", None)
    engine.run_until_idle(timeout=30)
    assert engine.get_status(instance_id)["output"] == [True, True, True, False]
