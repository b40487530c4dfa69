"""Probe app: a DFApp that registers a blueprint from a sibling module, as `function_app.py` files usually do."""

import azure.durable_functions as df
import azure.functions as func
from probe_blueprint_bp import bp  # type: ignore[import-not-found]  # the app folder is on sys.path, as on Azure

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(bp)


@app.orchestration_trigger(context_name="context")
def local_orchestrator(context: df.DurableOrchestrationContext):
    inner = yield context.call_sub_orchestrator("bp_orchestrator", context.get_input() or "local")
    return {"inner": inner}
