"""The trigger bindings' settings, read when the app is indexed: the Event Hub trigger's and the timers'.

The same variables as in `core.settings.Settings` (and documented there), read apart because decorators run at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.setting_types import EventHubEntity, Ncrontab, SettingName
from core.settings import (
    DEFAULT_EVENTHUB_CONNECTION,
    DEFAULT_EXCEPTIONS_SCHEDULE,
    DEFAULT_JANITOR_SCHEDULE,
    DEFAULT_RESCAN_SCHEDULE,
    DEFAULT_SWEEP_SCHEDULE,
    SettingsError,
)
from core.settings_notify import MAX_DIGEST_MINUTES, digest_minutes_problem, digest_schedule

_Binding = TypeVar("_Binding", bound=BaseModel)


class EventHubBinding(BaseModel):
    """The Event Hub trigger's hub, consumer group and connection prefix, the same variables as in Settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    eventhub_name: EventHubEntity = "deployments"
    eventhub_consumer_group: EventHubEntity = "$Default"
    eventhub_connection: SettingName = DEFAULT_EVENTHUB_CONNECTION


def load_event_hub_binding(environ: Mapping[str, str] | None = None) -> EventHubBinding:
    """Only the trigger's settings: read when the app is indexed (decorators run at import), defaults applied.

    Reading them then, rather than writing "%EVENTHUB_NAME%" in the binding, keeps the documented defaults working
    (the host fails to index a binding whose %setting% is unset) and is the only way for `connection`, which the
    host reads as a setting name and never resolves.
    """
    return _load_binding(EventHubBinding, environ)


def _load_binding(model: type[_Binding], environ: Mapping[str, str] | None) -> _Binding:
    env = os.environ if environ is None else environ
    data = {name: env[name.upper()].strip() for name in model.model_fields if (env.get(name.upper()) or "").strip()}
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [(str(e["loc"][0]).upper(), e["msg"].removeprefix("Value error, ")) for e in error.errors()]
        raise SettingsError(problems) from None


class JanitorBinding(BaseModel):
    """The janitor timer's schedule, the same variable as in Settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    janitor_schedule: Ncrontab = DEFAULT_JANITOR_SCHEDULE


def load_janitor_binding(environ: Mapping[str, str] | None = None) -> JanitorBinding:
    """The timer's schedule, read when the app is indexed for the same reason as `load_event_hub_binding`."""
    return _load_binding(JanitorBinding, environ)


class DigestBinding(BaseModel):
    """The alert digest timer's window, the same variable as in Settings (validated there too)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    alert_digest_minutes: int = Field(default=0, ge=0, le=MAX_DIGEST_MINUTES)

    @property
    def schedule(self) -> str:
        """One run per window; a bad value fails in Settings, which names it, so this falls back to daily."""
        minutes = self.alert_digest_minutes
        return digest_schedule(0 if digest_minutes_problem(minutes) else minutes)


def load_digest_binding(environ: Mapping[str, str] | None = None) -> DigestBinding:
    """The digest timer's window, read when the app is indexed for the same reason as `load_event_hub_binding`."""
    return _load_binding(DigestBinding, environ)


class SweepBinding(BaseModel):
    """The inventory sweep's and the rescan timer's schedules, the same variables as in Settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sweep_schedule: Ncrontab = DEFAULT_SWEEP_SCHEDULE
    rescan_schedule: Ncrontab = DEFAULT_RESCAN_SCHEDULE


def load_sweep_binding(environ: Mapping[str, str] | None = None) -> SweepBinding:
    """SWEEP_SCHEDULE and RESCAN_SCHEDULE, read when the app is indexed (as `load_event_hub_binding`)."""
    return _load_binding(SweepBinding, environ)


class ExceptionsBinding(BaseModel):
    """The exceptions expiry timer's schedule, the same variable as in Settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    exceptions_schedule: Ncrontab = DEFAULT_EXCEPTIONS_SCHEDULE


def load_exceptions_binding(environ: Mapping[str, str] | None = None) -> ExceptionsBinding:
    """The expiry timer's schedule, read when the app is indexed for the same reason as `load_event_hub_binding`."""
    return _load_binding(ExceptionsBinding, environ)
