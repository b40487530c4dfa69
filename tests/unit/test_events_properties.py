"""Properties of the event parser: nothing but ValueError on any input, and targets are always valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.events import DeploymentEvent, parse_deployment_events, parse_message

EVENTS = Path(__file__).parents[1] / "events"
SCANNER_RG = "rg-qscanner"
FIXTURES = [json.loads(p.read_bytes()) for p in sorted(EVENTS.glob("*.json"))]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)


def _check(body: str | bytes) -> None:
    try:
        targets = parse_deployment_events(body, scanner_resource_group=SCANNER_RG)
    except ValueError:
        return
    keys = [t.resource_id.lower() for t in targets]
    assert len(keys) == len(set(keys))
    for target in targets:
        assert target.resource_group.casefold() != SCANNER_RG
        assert DeploymentEvent.model_validate(target.model_dump(mode="json")) == target


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_value_errors(body: bytes) -> None:
    _check(body)


@settings(max_examples=500)
@given(json_values)
def test_arbitrary_json_raises_only_value_errors(value: Any) -> None:
    _check(json.dumps(value))
    _check(json.dumps({"records": value if isinstance(value, list) else [value]}))


def _mutate(document: Any, path: list[int], replacement: Any) -> Any:
    """Replace the node reached by following `path` (indices modulo the children) with `replacement`."""
    if not path or not isinstance(document, dict | list) or not document:
        return replacement
    if isinstance(document, dict):
        key = sorted(document)[path[0] % len(document)]
        return {**document, key: _mutate(document[key], path[1:], replacement)}
    index = path[0] % len(document)
    return [*document[:index], _mutate(document[index], path[1:], replacement), *document[index + 1 :]]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(FIXTURES),
    st.lists(st.lists(st.integers(0, 50), max_size=6), min_size=1, max_size=3),
    st.lists(json_values, min_size=3, max_size=3),
)
def test_mutated_real_messages_raise_only_value_errors(
    document: Any, paths: list[list[int]], values: list[Any]
) -> None:
    for path, value in zip(paths, values, strict=False):
        document = _mutate(document, path, value)
    body = json.dumps(document)
    _check(body)
    result = parse_message(body, scanner_resource_group=SCANNER_RG)
    assert result.skipped <= result.records
