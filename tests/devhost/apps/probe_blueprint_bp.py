"""Probe blueprint: functions registered on a `df.Blueprint`, imported by probe_blueprint_app as a sibling module."""

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


@bp.route(route="bp/start/{name}", methods=["GET", "POST"])
@bp.durable_client_input(client_name="client")
async def bp_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, req.params.get("who"))
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@bp.orchestration_trigger(context_name="context")
def bp_orchestrator(context: df.DurableOrchestrationContext):
    greeting = yield context.call_activity("bp_activity", context.get_input())
    return greeting


@bp.activity_trigger(input_name="who")
def bp_activity(who: str) -> str:
    return f"blueprint greets {who}"
