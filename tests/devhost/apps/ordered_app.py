"""Activities that finish in the reverse of their launch order, and an entity that records who reached it first."""

import time
from datetime import timedelta

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def nap_then_sign(context: df.DurableOrchestrationContext):
    name, nap_ms = context.get_input()
    yield context.call_activity("nap", nap_ms)
    yield context.call_entity(df.EntityId("ledger", "one"), "sign", name)
    return name


@app.activity_trigger(input_name="napms")
def nap(napms: int) -> int:
    time.sleep(napms / 1000)  # wall time: a slow activity launched first finishes last
    return napms


@app.entity_trigger(context_name="context")
def ledger(context: df.DurableEntityContext):
    names = context.get_state(lambda: [])
    names.append(context.get_input())
    context.set_state(names)
    context.set_result(len(names))


@app.orchestration_trigger(context_name="context")
def wait_minutes(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=context.get_input()))
    return "fired"
