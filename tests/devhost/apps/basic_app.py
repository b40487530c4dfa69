"""A minimal app: one orchestrator calling activities in sequence and in parallel."""

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):
    name = context.get_input() or "world"
    first = yield context.call_activity("say_hello", name)
    parallel = yield context.task_all([context.call_activity("say_hello", f"{name}-{i}") for i in range(3)])
    context.set_custom_status({"step": "done"})
    return [first, *parallel]


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"
