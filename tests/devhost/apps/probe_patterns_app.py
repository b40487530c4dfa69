"""Probe app: the Durable patterns of Microsoft's Python v2 docs and samples, written the way they write them."""

import json
import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

myApp = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


# ---- HTTP starter (learn.microsoft.com "Quickstart: Python v2") ------------------------------------------------
@myApp.route(route="orchestrators/{functionName}")
@myApp.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client):
    function_name = req.route_params.get("functionName")
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(function_name, None, payload)
    logging.info(f"Started orchestration with ID = '{instance_id}'.")
    response = client.create_check_status_response(req, instance_id)
    return response


# ---- function chaining ------------------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def hello_orchestrator(context):
    result1 = yield context.call_activity("hello", "Seattle")
    result2 = yield context.call_activity("hello", "Tokyo")
    result3 = yield context.call_activity("hello", "London")
    return [result1, result2, result3]


@myApp.activity_trigger(input_name="city")
def hello(city: str):
    return f"Hello {city}"


# ---- fan-out/fan-in ---------------------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def fan_out_fan_in(context):
    count = context.get_input() or 50
    work_batch = yield context.call_activity("get_work_batch", count)
    parallel_tasks = [context.call_activity("process_item", b) for b in work_batch]
    outputs = yield context.task_all(parallel_tasks)
    total = yield context.call_activity("aggregate", outputs)
    return total


@myApp.activity_trigger(input_name="count")
def get_work_batch(count: int):
    return list(range(count))


@myApp.activity_trigger(input_name="item")
def process_item(item: int):
    return item * 2


@myApp.activity_trigger(input_name="values")
def aggregate(values: list[int]):
    return sum(values)


# ---- monitor ----------------------------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def monitor(context):
    job = context.get_input() or {"id": "job-1", "ready_after": 3, "interval_s": 60}
    polling_interval = job["interval_s"]
    expiry_time = context.current_utc_datetime + timedelta(hours=6)
    checks = 0
    while context.current_utc_datetime < expiry_time:
        checks += 1
        job_status = yield context.call_activity("get_job_status", {"job": job, "checks": checks})
        if job_status == "Completed":
            yield context.call_activity("send_alert", f"job {job['id']} done after {checks} checks")
            break
        next_check = context.current_utc_datetime + timedelta(seconds=polling_interval)
        yield context.create_timer(next_check)
    return {"checks": checks, "at": context.current_utc_datetime.isoformat()}


@myApp.activity_trigger(input_name="request")
def get_job_status(request: dict[str, Any]):
    return "Completed" if request["checks"] >= request["job"]["ready_after"] else "Running"


@myApp.activity_trigger(input_name="message")
def send_alert(message: str):
    return message


# ---- human interaction ------------------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def human_interaction(context):
    yield context.call_activity("request_approval", context.instance_id)
    context.set_custom_status("waiting for approval")
    due_time = context.current_utc_datetime + timedelta(hours=72)
    durable_timeout_task = context.create_timer(due_time)
    approval_event_task = context.wait_for_external_event("ApprovalEvent")
    winning_task = yield context.task_any([approval_event_task, durable_timeout_task])
    if approval_event_task == winning_task:
        durable_timeout_task.cancel()
        result = yield context.call_activity("process_approval", approval_event_task.result)
        context.set_custom_status("approved")
        return result
    context.set_custom_status("escalated")
    return "escalated"


@myApp.activity_trigger(input_name="instance")
def request_approval(instance: str):
    return f"approval requested for {instance}"


@myApp.activity_trigger(input_name="approval")
def process_approval(approval):
    return {"processed": approval}


# ---- eternal orchestration ---------------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def eternal_cleanup(context):
    state = context.get_input() or {"count": 0, "stop_at": 3}
    yield context.call_activity("do_cleanup", state["count"])
    next_cleanup = context.current_utc_datetime + timedelta(hours=1)
    yield context.create_timer(next_cleanup)
    if state["count"] + 1 >= state["stop_at"]:
        return state["count"] + 1
    context.continue_as_new({"count": state["count"] + 1, "stop_at": state["stop_at"]})


@myApp.activity_trigger(input_name="count")
def do_cleanup(count: int):
    return count


# ---- sub-orchestrations -----------------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def provision_devices(context):
    device_ids = context.get_input() or ["d1", "d2", "d3"]
    provisioning_tasks = []
    for device_id in device_ids:
        child_id = f"{context.instance_id}:{device_id}"
        provisioning_tasks.append(context.call_sub_orchestrator("device_provisioning", device_id, child_id))
    results = yield context.task_all(provisioning_tasks)
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=2)
    with_retry = yield context.call_sub_orchestrator_with_retry("device_provisioning", retry, "retried")
    failure: str | None = None
    try:
        yield context.call_sub_orchestrator("failing_child", "boom")
    except Exception as e:
        failure = str(e)
    return {"results": results, "with_retry": with_retry, "failure": failure}


@myApp.orchestration_trigger(context_name="context")
def device_provisioning(context):
    device_id = context.get_input()
    key = yield context.call_activity("hello", device_id)
    return {"device": device_id, "key": key, "parent": context.parent_instance_id}


@myApp.orchestration_trigger(context_name="context")
def failing_child(context):
    yield context.call_activity("hello", "child")
    raise ValueError(f"child failed: {context.get_input()}")


# ---- activity retries to exhaustion -------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def retry_exhaustion(context):
    retry_options = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)
    try:
        yield context.call_activity_with_retry("always_fails", retry_options, context.instance_id)
    except Exception as e:
        return {"caught": str(e), "type": type(e).__name__}
    return "not reached"


ALWAYS_FAILS_CALLS: dict[str, int] = {}


@myApp.activity_trigger(input_name="key")
def always_fails(key: str):
    ALWAYS_FAILS_CALLS[key] = ALWAYS_FAILS_CALLS.get(key, 0) + 1
    raise ConnectionError(f"backend unreachable (call {ALWAYS_FAILS_CALLS[key]})")


# ---- payload shapes ---------------------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def payloads(context):
    as_dict = yield context.call_activity("echo_value", {"a": 1, "nested": {"b": [1, 2]}})
    as_list = yield context.call_activity("echo_value", [1, "two", None, 3.5])
    as_none = yield context.call_activity("echo_value", None)
    as_text = yield context.call_activity("echo_value", "héllo wörld ✓ 日本")
    returns_none = yield context.call_activity("returns_nothing", "x")
    try:
        yield context.call_activity("returns_non_json", "x")
    except Exception as e:
        non_json = str(e)
    else:
        non_json = "no error"
    return {
        "dict": as_dict,
        "list": as_list,
        "none": as_none,
        "text": as_text,
        "returns_none": returns_none,
        "non_json_failed": "json serializable" in non_json,
        "input": context.get_input(),
    }


@myApp.activity_trigger(input_name="value")
def echo_value(value):
    return value


@myApp.activity_trigger(input_name="value")
def returns_nothing(value) -> None:
    logging.info("nothing to return for %s", value)


@myApp.activity_trigger(input_name="value")
def returns_non_json(value):
    return {value: datetime.now(UTC)}


# ---- failures and non-determinism ---------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def orchestrator_raises(context):
    yield context.call_activity("hello", "before failure")
    raise RuntimeError("orchestrator exploded: ünïcode")


@myApp.orchestration_trigger(context_name="context")
def nondeterministic(context):
    results = []
    for step in range(30):
        # Wrong on purpose: the branch depends on random and on wall-clock time, which differ on replay.
        name = "hello" if (random.random() < 0.5) != (datetime.now().microsecond % 2 == 0) else "echo_value"
        results.append((yield context.call_activity(name, step)))
    return results


# ---- custom status while running ---------------------------------------------------------------------------------
@myApp.orchestration_trigger(context_name="context")
def custom_status_steps(context):
    context.set_custom_status({"step": 1, "label": "started"})
    yield context.call_activity("hello", "step 1")
    context.set_custom_status({"step": 2, "label": "waiting"})
    yield context.wait_for_external_event("Continue")
    context.set_custom_status({"step": 3, "label": "done"})
    return "finished"
