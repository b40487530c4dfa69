"""Probe app: client functions (HTTP, Event Hub, timer), entities and the classic decorator variants, docs style."""

import json
import logging
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
COUNTER = "Counter"


def _status_json(status: Any) -> dict[str, Any]:
    return {
        "name": status.name,
        "instanceId": status.instance_id,
        "runtimeStatus": status.runtime_status.value if status.runtime_status else None,
        "customStatus": status.custom_status,
        "output": status.output,
        "input": status.input_,
    }


# ---- HTTP starters --------------------------------------------------------------------------------------------
@app.route(route="start/{functionName}/{instanceId?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(
        req.route_params["functionName"], req.route_params.get("instanceId"), json.loads(body) if body else None
    )
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@app.route(route="startwait/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start_and_wait(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["functionName"], None, req.get_json())
    timeout = int(req.params.get("timeout", "10000"))
    response: func.HttpResponse = await client.wait_for_completion_or_create_check_status_response(
        req, instance_id, timeout, 100
    )
    return response


@app.route(route="status/{instanceId}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def http_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    status = await client.get_status(req.route_params["instanceId"], show_input=True)
    return func.HttpResponse(json.dumps(_status_json(status)), mimetype="application/json")


@app.route(route="instances", methods=["GET"])
@app.durable_client_input(client_name="client")
async def http_list(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    if req.params.get("status"):
        wanted = [df.OrchestrationRuntimeStatus(s) for s in req.params["status"].split(",")]
        statuses = await client.get_status_by(
            created_time_from=datetime.utcnow() - timedelta(days=30),
            created_time_to=datetime.utcnow() + timedelta(days=30),
            runtime_status=wanted,
        )
    else:
        statuses = await client.get_status_all()
    return func.HttpResponse(json.dumps([_status_json(s) for s in statuses]), mimetype="application/json")


@app.route(route="raise/{instanceId}/{eventName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_raise(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    await client.raise_event(req.route_params["instanceId"], req.route_params["eventName"], req.get_json())
    return func.HttpResponse(status_code=202)


@app.route(route="terminate/{instanceId}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_terminate(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    await client.terminate(req.route_params["instanceId"], req.params.get("reason", "stopped by probe"))
    return func.HttpResponse(status_code=202)


@app.route(route="purge/{instanceId}", methods=["DELETE"])
@app.durable_client_input(client_name="client")
async def http_purge(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    result = await client.purge_instance_history(req.route_params["instanceId"])
    return func.HttpResponse(json.dumps({"deleted": result.instances_deleted}), mimetype="application/json")


# ---- entities (learn.microsoft.com "Durable entities", Python) -------------------------------------------------
@app.entity_trigger(context_name="context")
def Counter(context):
    current_value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        amount = context.get_input()
        current_value += amount
    elif operation == "reset":
        current_value = 0
    elif operation == "get":
        context.set_result(current_value)
    elif operation == "fail":
        raise ValueError("counter cannot do that")
    context.set_state(current_value)


@app.route(route="counter/{key}/{op}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_signal_counter(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    entity_id = df.EntityId(COUNTER, req.route_params["key"])
    await client.signal_entity(entity_id, req.route_params["op"], json.loads(body) if body else None)
    return func.HttpResponse(status_code=202)


@app.route(route="counter/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def http_read_counter(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    entity_id = df.EntityId(COUNTER, req.route_params["key"])
    state = await client.read_entity_state(entity_id)
    payload = {"exists": state.entity_exists, "state": state.entity_state}
    return func.HttpResponse(json.dumps(payload), mimetype="application/json")


@app.orchestration_trigger(context_name="context")
def counter_orchestrator(context: df.DurableOrchestrationContext):
    entity_id = df.EntityId(COUNTER, context.get_input() or "myCounter")
    context.signal_entity(entity_id, "add", 3)
    yield context.call_entity(entity_id, "add", 4)
    state = yield context.call_entity(entity_id, "get")
    error: str | None = None
    try:
        yield context.call_entity(entity_id, "fail")
    except Exception as e:
        error = str(e)
    yield context.call_entity(entity_id, "reset")
    after_reset = yield context.call_entity(entity_id, "get")
    return {"state": state, "error": error, "after_reset": after_reset}


# ---- classic decorator variants ----------------------------------------------------------------------------------
@app.function_name("RenamedOrchestrator")
@app.orchestration_trigger(context_name="ctx")
def renamed_orchestrator_impl(ctx: df.DurableOrchestrationContext):
    first = yield ctx.call_activity("RenamedActivity", {"who": ctx.get_input()})
    second = yield ctx.call_activity("RenamedActivity", {"who": first})
    return second


@app.function_name("RenamedActivity")
@app.activity_trigger(input_name="payload")
def renamed_activity_impl(payload: dict[str, Any]) -> str:
    return f"<{payload['who']}>"


# ---- long-running instances for status, events, terminate -----------------------------------------------------
@app.orchestration_trigger(context_name="context")
def waiter(context: df.DurableOrchestrationContext):
    context.set_custom_status({"phase": "waiting", "input": context.get_input()})
    first = yield context.wait_for_external_event("First")
    context.set_custom_status({"phase": "got first", "first": first})
    second = yield context.wait_for_external_event("Second")
    return {"first": first, "second": second}


@app.orchestration_trigger(context_name="context")
def quick(context: df.DurableOrchestrationContext):
    return {"echo": context.get_input()}


@app.orchestration_trigger(context_name="context")
def slow_timer(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(days=2))
    return "timer done"


# ---- non-HTTP triggers with a durable client ---------------------------------------------------------------------
STARTED_BY_TRIGGERS: list[str] = []


@app.event_hub_message_trigger(arg_name="event", event_hub_name="probe-hub", connection="EVENTHUB_CONNECTION")
@app.durable_client_input(client_name="client")
async def eventhub_one(event: func.EventHubEvent, client: df.DurableOrchestrationClient) -> None:
    body = event.get_body().decode("utf-8")
    instance_id = await client.start_new("quick", None, {"event": json.loads(body)})
    STARTED_BY_TRIGGERS.append(instance_id)
    logging.info("event hub started %s", instance_id)


@app.event_hub_message_trigger(
    arg_name="events", event_hub_name="probe-hub", connection="EVENTHUB_CONNECTION", cardinality="many"
)
@app.durable_client_input(client_name="client")
async def eventhub_many(events: list[func.EventHubEvent], client: df.DurableOrchestrationClient) -> None:
    for event in events:
        await client.start_new("quick", f"eh-{event.sequence_number}", {"batch": event.get_body().decode()})


@app.timer_trigger(schedule="0 0 * * * *", arg_name="mytimer", run_on_startup=False, use_monitor=False)
@app.durable_client_input(client_name="client")
async def timer_start(mytimer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    await client.start_new("quick", "from-timer", {"past_due": mytimer.past_due})
