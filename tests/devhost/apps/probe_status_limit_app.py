"""Probe app: custom statuses around Azure's 16 KB (UTF-16 JSON text) limit on an orchestration's custom status."""

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def status_of_size(context: df.DurableOrchestrationContext):
    """Input: {"chars": n, "char": c}. Sets a small status, then one whose string is `c` * n, then calls `record`."""
    spec = context.get_input()
    first = yield context.call_activity("record", "before")
    context.set_custom_status({"step": "big", "text": spec["char"] * spec["chars"]})
    second = yield context.call_activity("record", "after")
    context.set_custom_status({"step": "done"})
    return [first, second]


@app.activity_trigger(input_name="label")
def record(label: str) -> str:
    return label
