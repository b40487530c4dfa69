"""A DFApp for the devhost server tests: every client call over HTTP, an Event Hub trigger with retries, a timer."""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

# What the Event Hub and timer functions saw, for the tests to read (the functions run in-process).
SEEN: dict[str, list[Any]] = {"events": [], "timer": [], "eh_attempts": []}
FAIL_FIRST_ATTEMPTS = {"count": 1}


def _json(payload: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(payload), status_code=status, mimetype="application/json")


def _status_json(status: df.DurableOrchestrationStatus) -> dict[str, Any]:
    runtime = status.runtime_status
    return {
        "runtimeStatus": runtime.value if runtime is not None else None,
        "input": status.input_,
        "output": status.output,
        "customStatus": status.custom_status,
        "instanceId": status.instance_id,
    }


@app.orchestration_trigger(context_name="context")
def greeter(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    payload = context.get_input() or {}
    greeting = yield context.call_activity("make_greeting", payload.get("name", "nobody"))
    return greeting


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    context.set_custom_status("waiting")
    decision = yield context.wait_for_external_event("decision")
    return {"input": context.get_input(), "decision": decision}


@app.orchestration_trigger(context_name="context")
def broken(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("make_greeting", "x")
    raise ValueError("broken on purpose")


@app.activity_trigger(input_name="name")
def make_greeting(name: str) -> str:
    return f"hello {name}"


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    if context.operation_name == "add":
        value += context.get_input()
    elif context.operation_name == "reset":
        value = 0
    context.set_state(value)


@app.route(route="orchestrators/{name}/{instance_id?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["name"], req.route_params.get("instance_id"), payload)
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@app.route(route="run/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json())
    response: func.HttpResponse = await client.wait_for_completion_or_create_check_status_response(
        req, instance_id, 10000, 50
    )
    return response


@app.route(route="status/{instance_id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def http_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    status = await client.get_status(req.route_params["instance_id"], show_input=True)
    return _json(_status_json(status))


@app.route(route="instances", methods=["GET"])
@app.durable_client_input(client_name="client")
async def http_list(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    wanted = req.params.get("runtimeStatus")
    if wanted:
        statuses = await client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus(wanted)])
    else:
        statuses = await client.get_status_all()
    return _json(sorted(status.instance_id for status in statuses))


@app.route(route="events/{instance_id}/{event}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_raise(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    await client.raise_event(req.route_params["instance_id"], req.route_params["event"], req.get_json())
    return func.HttpResponse(status_code=202)


@app.route(route="terminate/{instance_id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_terminate(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    await client.terminate(req.route_params["instance_id"], req.params.get("reason", "test"))
    return func.HttpResponse(status_code=202)


@app.route(route="purge/{instance_id}", methods=["DELETE"])
@app.durable_client_input(client_name="client")
async def http_purge(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    result = await client.purge_instance_history(req.route_params["instance_id"])
    return _json({"instancesDeleted": result.instances_deleted})


@app.route(route="entities/{name}/{key}", methods=["GET", "POST"])
@app.durable_client_input(client_name="client")
async def http_entity(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    entity_id = df.EntityId(req.route_params["name"], req.route_params["key"])
    if req.method == "POST":
        await client.signal_entity(entity_id, req.params["op"], req.get_json())
        return func.HttpResponse(status_code=202)
    state = await client.read_entity_state(entity_id)
    return _json({"exists": state.entity_exists, "state": state.entity_state})


@app.route(route="hello/{who:alpha}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> str:
    return f"hello {req.route_params['who']} {req.params.get('punct', '')}".strip()


@app.event_hub_message_trigger(
    arg_name="events", event_hub_name="deployments", connection="EVENTHUB", cardinality="many"
)
@app.durable_client_input(client_name="client")
@app.retry(strategy="fixed_delay", max_retry_count="2", delay_interval="00:00:30")
async def eventhub_starter(events: list[func.EventHubEvent], client: df.DurableOrchestrationClient) -> None:
    SEEN["eh_attempts"].append(len(events))
    if FAIL_FIRST_ATTEMPTS["count"] > 0:
        FAIL_FIRST_ATTEMPTS["count"] -= 1
        raise RuntimeError("transient failure")
    for event in events:
        body = json.loads(event.get_body())
        SEEN["events"].append({"body": body, "sequence": event.sequence_number, "enqueued": event.enqueued_time})
        await client.start_new("greeter", f"eh-{body['name']}", body)


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False)
def janitor_timer(timer: func.TimerRequest) -> None:
    SEEN["timer"].append(timer.past_due)
