"""Orchestrations that exercise every action type devhost emulates, plus an entity and misbehaving activities."""

from datetime import timedelta
from typing import Any

import azure.durable_functions as df

app = df.DFApp()

ATTEMPTS: dict[str, int] = {}
BEHAVIOUR = {"first_activity": "step_a"}


@app.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext):
    request = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)
    try:
        attempts = yield context.call_activity_with_retry("flaky", options, request)
    except Exception as exc:
        return {"error": str(exc)}
    return {"attempts": attempts}


@app.activity_trigger(input_name="request")
def flaky(request: dict[str, Any]) -> int:
    key = request["key"]
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] <= request["fail_times"]:
        raise ValueError(f"attempt {ATTEMPTS[key]} failed")
    return ATTEMPTS[key]


@app.orchestration_trigger(context_name="context")
def timer_race(context: df.DurableOrchestrationContext):
    timeout = context.create_timer(context.current_utc_datetime + timedelta(minutes=45))
    work = context.call_activity("echo", "work")
    winner = yield context.task_any([work, timeout])
    if winner == work:
        if context.get_input() == "cancel":
            timeout.cancel()
        return "activity"
    return "timeout"


@app.orchestration_trigger(context_name="context")
def long_timer(context: df.DurableOrchestrationContext):
    started = context.current_utc_datetime
    yield context.create_timer(started + timedelta(minutes=45))
    return (context.current_utc_datetime - started).total_seconds()


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    timeout = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    approved = context.wait_for_external_event("approve")
    winner = yield context.task_any([approved, timeout])
    if winner == approved:
        timeout.cancel()
        return {"approved": approved.result}
    return {"approved": None}


@app.orchestration_trigger(context_name="context")
def countdown(context: df.DurableOrchestrationContext):
    value = context.get_input()
    yield context.call_activity("echo", value)
    if value > 0:
        context.continue_as_new(value - 1)
        return None
    event = yield context.wait_for_external_event("last")
    return {"done": value, "event": event}


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    child = yield context.call_sub_orchestrator("child", {"n": 2}, "child-of-" + context.instance_id)
    try:
        yield context.call_sub_orchestrator("failing_child", None)
    except Exception as exc:
        return {"child": child, "failure": str(exc)}
    return {"child": child}


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    request = context.get_input()
    doubled = yield context.call_activity("double", request["n"])
    return {"parent": context.parent_instance_id, "doubled": doubled}


@app.orchestration_trigger(context_name="context")
def failing_child(context: df.DurableOrchestrationContext):
    yield context.call_activity("echo", "x")
    raise RuntimeError("child broke")


@app.orchestration_trigger(context_name="context")
def entity_user(context: df.DurableOrchestrationContext):
    counter = df.EntityId("counter", context.get_input())
    context.signal_entity(counter, "add", 5)
    after_add = yield context.call_entity(counter, "add", 1)
    value = yield context.call_entity(counter, "get")
    try:
        yield context.call_entity(counter, "explode")
    except Exception as exc:
        return {"after_add": after_add, "value": value, "error": str(exc)}
    return {"after_add": after_add, "value": value}


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext):
    current = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        current += context.get_input()
        context.set_state(current)
        context.set_result(current)
    elif operation == "get":
        context.set_result(current)
    elif operation == "explode":
        raise ValueError("counter exploded")


@app.orchestration_trigger(context_name="context")
def bad_result(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("returns_object", None)
    except Exception as exc:
        return {"error": str(exc)}
    return {"error": None}


@app.activity_trigger(input_name="ignored")
def returns_object(ignored: None) -> object:
    return object()


@app.orchestration_trigger(context_name="context")
def crashes(context: df.DurableOrchestrationContext):
    yield context.call_activity("echo", "before")
    raise ValueError("boom")


@app.orchestration_trigger(context_name="context")
def changes_code(context: df.DurableOrchestrationContext):
    yield context.call_activity(BEHAVIOUR["first_activity"], None)
    yield context.wait_for_external_event("go")
    return "done"


@app.activity_trigger(input_name="value")
def echo(value):
    return value


@app.activity_trigger(input_name="value")
def double(value: int) -> int:
    return value * 2


@app.activity_trigger(input_name="value")
def step_a(value: None) -> str:
    return "a"


@app.activity_trigger(input_name="value")
def step_b(value: None) -> str:
    return "b"


@app.orchestration_trigger(context_name="context")
def replay_flags(context: df.DurableOrchestrationContext):
    flags = [context.is_replaying]
    for step in range(3):
        yield context.call_activity("echo", step)
        flags.append(context.is_replaying)
    context.set_custom_status(flags)
    return flags
