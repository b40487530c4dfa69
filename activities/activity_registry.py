"""Typed registration of activity functions on a durable Blueprint, and validation of their JSON input."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from core.redaction import redact, secret_values
from core.settings import get_settings

ActivityFunction = Callable[[Any], dict[str, Any]]
Model = TypeVar("Model", bound=BaseModel)
ACTIVITY_INPUT_NAME = "payload"


def activity_registrar(blueprint: Any) -> Callable[[str], Callable[[ActivityFunction], ActivityFunction]]:
    """A decorator factory: `@activity(name)` registers a function as activity `name` and returns it unchanged.

    The function stays a plain callable (tests call it directly); the Blueprint registers it wrapped in
    `scrubbing_secrets`. The parameter of a registered function must be called `payload`.
    """

    def activity(name: str) -> Callable[[ActivityFunction], ActivityFunction]:
        def register(function: ActivityFunction) -> ActivityFunction:
            trigger = blueprint.activity_trigger(input_name=ACTIVITY_INPUT_NAME, activity=name)
            blueprint.function_name(name)(trigger(scrubbing_secrets(function)))
            return function

        return register

    return activity


class ActivityFailure(Exception):
    """An activity error whose text carried a secret of the app's settings: re-raised with the secret blanked."""


def scrubbing_secrets(function: ActivityFunction) -> ActivityFunction:
    """`function`, whose exceptions never carry a secret of the settings into durable history.

    An activity's exception text becomes the orchestration's failure reason and details (history, custom status,
    scan record, alert e-mail). When the text of the error or of any error in its chain contains a secret value of
    the settings (or a SAS signature), the error is re-raised as `ActivityFailure` with that text blanked and the
    chain cut; any other error passes unchanged, so the orchestrator's matching on error markers still works.
    """

    @functools.wraps(function)
    def run(payload: Any) -> dict[str, Any]:
        try:
            return function(payload)
        except Exception as error:
            secrets = _settings_secrets()
            chain = _chain(error)
            if all(redact(str(each), secrets) == str(each) for each in chain):
                raise
            raise ActivityFailure(redact(f"{type(error).__name__}: {error}", secrets)) from None

    return run


def _settings_secrets() -> list[str]:
    try:
        return secret_values(get_settings())
    except ValueError:  # settings that do not load hold no secret to scrub; SAS signatures still are
        return []


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def validated(model: type[Model], payload: object) -> Model:
    """The activity input as `model`: the host hands over the JSON-decoded value (or, rarely, the JSON text)."""
    if isinstance(payload, str | bytes):
        return model.model_validate_json(payload)
    return model.model_validate(payload)
