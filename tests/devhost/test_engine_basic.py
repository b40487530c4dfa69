"""The app loader and the basic orchestration path: activities in sequence and fan-out/fan-in."""

from __future__ import annotations

from devhost.functions import KIND_ACTIVITY, KIND_ORCHESTRATION, load_app
from devhost.history import EventType
from tests.devhost.conftest import app_path


def test_load_app_indexes_functions_by_kind_and_durable_name():
    index = load_app(app_path("basic_app"))
    assert [entry.name for entry in index.of_kind(KIND_ORCHESTRATION)] == ["hello_sequence"]
    activity = index.activity("SAY_HELLO")
    assert activity is not None and activity.kind == KIND_ACTIVITY
    assert activity.trigger_parameter == "name"
    assert activity.trigger == {"direction": "IN", "type": "activityTrigger", "name": "name"}


def test_sequence_and_fan_out_complete_with_output_and_custom_status(make_engine):
    engine = make_engine("basic_app")
    instance_id = engine.start_new("hello_sequence", "seq-1", "Bob")
    engine.run_until_idle(timeout=30)
    status = engine.get_status(instance_id)
    assert status is not None
    assert status["runtimeStatus"] == "Completed"
    assert status["input"] == "Bob"
    assert status["output"] == ["Hello Bob", "Hello Bob-0", "Hello Bob-1", "Hello Bob-2"]
    assert status["customStatus"] == {"step": "done"}


def test_history_ids_count_up_in_scheduling_order(make_engine):
    engine = make_engine("basic_app")
    instance_id = engine.start_new("hello_sequence", None, "Ann")
    engine.run_until_idle(timeout=30)
    status = engine.get_status(instance_id, show_history=True, show_history_output=True)
    scheduled = [e["EventId"] for e in engine.history(instance_id) if e["EventType"] == EventType.TASK_SCHEDULED]
    assert scheduled == [0, 1, 2, 3]
    assert status["historyEvents"][0]["EventType"] == "ExecutionStarted"
    assert status["historyEvents"][-1]["EventType"] == "ExecutionCompleted"


def test_background_worker_and_run_until_idle_can_drive_together(make_engine):
    engine = make_engine("basic_app")
    engine.start()
    try:
        ids = [engine.start_new("hello_sequence", None, f"w{i}") for i in range(5)]
        engine.run_until_idle(timeout=30)
        assert {engine.get_status(i)["runtimeStatus"] for i in ids} == {"Completed"}
        late = engine.start_new("hello_sequence", None, "late")
        assert engine.wait_for_completion(late, timeout=30)["output"][0] == "Hello late"
    finally:
        engine.stop()
