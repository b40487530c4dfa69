"""Typed registration of activity functions on a durable Blueprint, and validation of their JSON input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

ActivityFunction = Callable[[Any], dict[str, Any]]
Model = TypeVar("Model", bound=BaseModel)
ACTIVITY_INPUT_NAME = "payload"


def activity_registrar(blueprint: Any) -> Callable[[str], Callable[[ActivityFunction], ActivityFunction]]:
    """A decorator factory: `@activity(name)` registers a function as activity `name` and returns it unchanged.

    The function stays a plain callable (tests call it directly); the Blueprint keeps the function builder.
    The parameter of a registered function must be called `payload`.
    """

    def activity(name: str) -> Callable[[ActivityFunction], ActivityFunction]:
        def register(function: ActivityFunction) -> ActivityFunction:
            trigger = blueprint.activity_trigger(input_name=ACTIVITY_INPUT_NAME, activity=name)
            blueprint.function_name(name)(trigger(function))
            return function

        return register

    return activity


def validated(model: type[Model], payload: object) -> Model:
    """The activity input as `model`: the host hands over the JSON-decoded value (or, rarely, the JSON text)."""
    if isinstance(payload, str | bytes):
        return model.model_validate_json(payload)
    return model.model_validate(payload)
