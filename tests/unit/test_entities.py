"""The entity functions speak the Durable entity protocol: state and results round-trip as the host sends them."""

import json
from typing import Any

import azure.durable_functions as df

from entities import aci_quota, image_lease
from entities.names import ACI_QUOTA_ENTITY, ACQUIRE_OPERATION, GET_OPERATION, IMAGE_LEASE_ENTITY, RELEASE_OPERATION

NOW = "2026-10-02T08:00:00Z"


def entity_functions() -> dict[str, Any]:
    app = df.DFApp()
    app.register_functions(image_lease.bp)
    app.register_functions(aci_quota.bp)
    return {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


FUNCTIONS = entity_functions()


def run_batch(name: str, state: str | None, operations: list[tuple[str, Any]]) -> dict[str, Any]:
    """One entity episode: the host double-encodes each operation's input and the state is a JSON string."""
    batch = [{"name": op, "input": json.dumps(json.dumps(value))} for op, value in operations]
    context = {"self": {"name": name, "key": "k"}, "state": state, "exists": state is not None, "batch": batch}
    reply: dict[str, Any] = json.loads(FUNCTIONS[name](json.dumps(context)))
    return reply


def results(reply: dict[str, Any]) -> list[Any]:
    return [json.loads(r["result"]) for r in reply["results"]]


def test_image_lease_is_single_flight_across_episodes() -> None:
    first = run_batch(IMAGE_LEASE_ENTITY, None, [(ACQUIRE_OPERATION, {"instance_id": "a", "now": NOW, "ttl_s": 60})])
    assert results(first) == [{"granted": True, "holder": "a"}]
    second = run_batch(
        IMAGE_LEASE_ENTITY,
        first["entityState"],
        [
            (ACQUIRE_OPERATION, {"instance_id": "b", "now": NOW, "ttl_s": 60}),
            (RELEASE_OPERATION, {"instance_id": "a"}),
            (GET_OPERATION, {"now": NOW}),
        ],
    )
    assert results(second) == [{"granted": False, "holder": "a"}, None, {"granted": False, "holder": None}]


def test_unknown_operation_is_an_error_result_not_a_crash() -> None:
    reply = run_batch(IMAGE_LEASE_ENTITY, None, [("steal", {"instance_id": "x"})])
    assert reply["results"][0]["isError"] is True
    assert "unknown operation" in json.loads(reply["results"][0]["result"])


def test_bad_input_is_an_error_result() -> None:
    reply = run_batch(ACI_QUOTA_ENTITY, None, [(ACQUIRE_OPERATION, {"instance_id": "a"})])
    assert reply["results"][0]["isError"] is True


def test_quota_gate_counts_slots() -> None:
    request = {"instance_id": "a", "groups": 1, "now": NOW, "ttl_s": 600, "max_concurrent": 1}
    first = run_batch(ACI_QUOTA_ENTITY, None, [(ACQUIRE_OPERATION, request)])
    assert results(first)[0]["granted"] is True
    second = run_batch(
        ACI_QUOTA_ENTITY,
        first["entityState"],
        [
            (ACQUIRE_OPERATION, request | {"instance_id": "b"}),
            (RELEASE_OPERATION, {"instance_id": "a"}),
            (ACQUIRE_OPERATION, request | {"instance_id": "b"}),
            (GET_OPERATION, None),
        ],
    )
    refused, released, granted, seen = results(second)
    assert refused["granted"] is False and refused["reason"] == "concurrent scanner groups at the limit"
    assert released is None
    assert granted["granted"] is True
    assert seen == {"in_use": 1, "cores_in_use": 0.0, "holders": ["b"]}
