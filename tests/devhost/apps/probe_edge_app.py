"""Probe app: less common but documented orchestration shapes (failing fan-out, async activities, uuids, retries)."""

import asyncio
from datetime import timedelta

import azure.durable_functions as df

app = df.DFApp()
FLAKY_CALLS: dict[str, int] = {}


@app.orchestration_trigger(context_name="context")
def fan_out_one_fails(context: df.DurableOrchestrationContext):
    tasks = [context.call_activity("maybe_fail", i) for i in range(10)]
    if context.get_input() == "catch":
        try:
            yield context.task_all(tasks)
        except Exception as e:
            return {"caught": str(e).split(" \n ")[0]}
        return "no failure"
    results = yield context.task_all(tasks)
    return results


@app.activity_trigger(input_name="i")
def maybe_fail(i: int) -> int:
    if i == 7:
        raise KeyError(f"item {i} is cursed")
    return i


@app.orchestration_trigger(context_name="context")
def race_activities(context: df.DurableOrchestrationContext):
    slow = context.call_activity("slow_async", 0.2)
    fast = context.call_activity("slow_async", 0.0)
    winner = yield context.task_any([slow, fast])
    other = yield slow
    return {"winner": winner.result, "other": other, "fast_won": winner == fast}


@app.activity_trigger(input_name="seconds")
async def slow_async(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@app.orchestration_trigger(context_name="context")
def uuids_and_time(context: df.DurableOrchestrationContext):
    first = context.new_uuid()
    start = context.current_utc_datetime
    yield context.create_timer(start + timedelta(minutes=5))
    second = context.new_uuid()
    timers = [context.create_timer(context.current_utc_datetime + timedelta(seconds=s)) for s in (30, 10, 20)]
    yield context.task_all(timers)
    elapsed = (context.current_utc_datetime - start).total_seconds()
    return {"distinct": first != second, "first": first, "elapsed": elapsed, "replaying": context.is_replaying}


@app.orchestration_trigger(context_name="context")
def sub_retry_parent(context: df.DurableOrchestrationContext):
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=3)
    recovered = yield context.call_sub_orchestrator_with_retry("flaky_child", retry, context.instance_id)
    try:
        yield context.call_sub_orchestrator_with_retry("flaky_child", retry, "never")
    except Exception as e:
        exhausted = str(e)
    else:
        exhausted = "no failure"
    auto_id = yield context.call_sub_orchestrator("child_reports_id", None)
    return {"recovered": recovered, "exhausted": exhausted, "auto_id": auto_id}


@app.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext):
    key = context.get_input()
    calls = yield context.call_activity("count_call", key)
    if key == "never" or calls < 2:
        raise RuntimeError(f"child attempt {calls} failed")
    return calls


@app.activity_trigger(input_name="key")
def count_call(key: str) -> int:
    FLAKY_CALLS[key] = FLAKY_CALLS.get(key, 0) + 1
    return FLAKY_CALLS[key]


@app.orchestration_trigger(context_name="context")
def child_reports_id(context: df.DurableOrchestrationContext):
    return {"instance": context.instance_id, "parent": context.parent_instance_id}
    yield  # a generator that finishes without scheduling anything


@app.orchestration_trigger(context_name="context")
def uncaught_activity_failure(context: df.DurableOrchestrationContext):
    yield context.call_activity("maybe_fail", 7)
    return "not reached"


@app.orchestration_trigger(context_name="context")
def unknown_activity(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("does_not_exist", 1)
    except Exception as e:
        return str(e)
    return "no failure"


@app.orchestration_trigger(context_name="context")
def plain_function_orchestrator(context: df.DurableOrchestrationContext):
    return f"no yields: {context.get_input()}"


@app.entity_trigger(context_name="context")
def Account(context: df.DurableEntityContext):
    balance = context.get_state(lambda: {"balance": 0})
    op = context.operation_name
    if op == "deposit":
        balance["balance"] += context.get_input()["amount"]
        context.set_state(balance)
    elif op == "close":
        context.destruct_on_exit()
    context.set_result(balance)


@app.orchestration_trigger(context_name="context")
def account_flow(context: df.DurableOrchestrationContext):
    account = df.EntityId("Account", context.get_input())
    first = yield context.call_entity(account, "deposit", {"amount": 10})
    second = yield context.call_entity(account, "deposit", {"amount": 5})
    yield context.call_entity(account, "close")
    after_close = yield context.call_entity(account, "get")
    return [first, second, after_close]
