"""Durable entities through the SDK's batch protocol: calls, signals, errors and persisted state."""

from __future__ import annotations

import pytest

from devhost.errors import UnknownFunctionError
from devhost.history import EventType

APP = "features_app"


def test_orchestration_calls_and_signals_an_entity(make_engine):
    engine = make_engine(APP)
    instance_id = engine.start_new("entity_user", "uses-counter", "k1")
    engine.run_until_idle(timeout=30)
    status = engine.get_status(instance_id, show_history=True)
    assert status["output"] == {"after_add": 6, "value": 6, "error": "counter exploded"}
    sent = [e for e in engine.history(instance_id) if e["EventType"] == EventType.EVENT_SENT]
    assert [e["EventId"] for e in sent] == [0, 1, 2, 3]
    assert all(e["InstanceId"] == "@counter@k1" for e in sent)
    assert engine.read_entity_state("counter", "k1") == (True, 6)


def test_client_signals_are_serialized_and_state_survives_a_restart(make_engine, tmp_path):
    store = str(tmp_path / "entities.sqlite")
    engine = make_engine(APP, store=store)
    for amount in range(1, 11):
        engine.signal_entity("counter", "shared", "add", amount)
    engine.run_until_idle(timeout=30)
    assert engine.read_entity_state("counter", "shared") == (True, 55)
    assert engine.read_entity_state("counter", "unknown") == (False, None)
    engine.close()
    restarted = make_engine(APP, store=store)
    assert restarted.read_entity_state("counter", "shared") == (True, 55)
    with pytest.raises(UnknownFunctionError):
        restarted.signal_entity("no_such_entity", "k", "add", 1)
