"""The demo's scenario file: the ARM simulator's `Scenario` plus delivery timing, cache seeds and a description."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.images import InvalidImageRef, parse_image_ref
from devhost.armsim.scenario import SCENARIO_DIR_CONTEXT, Scenario
from devhost.demo_exceptions import EXCEPTIONS_KEY, InlineExceptionsError, parse_inline

DESCRIPTION_KEY = "description"
CACHE_KEY = "cache"
RECEIVERS_KEY = "receivers"
CHAT_RECEIVERS = ("teams", "slack")
SWEEPS_KEY = "sweeps_at_s"
DEMO_ONLY_KEYS = (DESCRIPTION_KEY, CACHE_KEY, RECEIVERS_KEY, SWEEPS_KEY, EXCEPTIONS_KEY)
MAX_EXCEPTION_DAYS = 3660  # the bound the scenario's EXCEPTION_MAX_DAYS sets is checked when they are loaded
ENVELOPE_KEYS = frozenset({"body", "after_s", "at_s", "note"})
MAX_AT_S = 7 * 24 * 3600  # a week of virtual time: far beyond any wave, small enough to catch a unit mistake (ms)
SeverityName = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]
SEVERITY_NAMES: tuple[SeverityName, ...] = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


class ScenarioError(ValueError):
    """The scenario file cannot be read or is invalid; the message says where."""


class Envelope(BaseModel):
    """A message with delivery options: `{"after_s": 600, "body": <message>, "note": "..."}` or `{"at_s": 90, ...}`."""

    model_config = ConfigDict(extra="forbid")

    body: Any
    after_s: float | None = Field(default=None, ge=0)
    at_s: float | None = Field(default=None, ge=0, le=MAX_AT_S, allow_inf_nan=False, strict=True)  # no "90", no true
    note: str | None = None

    @model_validator(mode="after")
    def _one_timing(self) -> Envelope:
        """`after_s` (behind a barrier, relative) and `at_s` (absolute, no barrier) contradict each other."""
        if self.after_s is not None and self.at_s is not None:
            raise ValueError("a message has either after_s (after a barrier) or at_s (at a virtual time), not both")
        return self


class CacheSeed(BaseModel):
    """A result put in the cache before the first message, as if an earlier run had scanned the image."""

    model_config = ConfigDict(extra="forbid")

    image: str
    status: Literal["completed", "denied"] = "completed"
    vulnerabilities: dict[SeverityName, int] = Field(default_factory=dict)
    age_hours: float = Field(default=1.0, ge=0)

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str) -> str:
        """The seed is stored under the image's canonical reference, so it must be one."""
        try:
            parse_image_ref(value)
        except InvalidImageRef as error:
            raise ValueError(str(error)) from None
        return value


@dataclass(frozen=True)
class Delivery:
    """One Event Hub message to deliver: the body as the event's text, and when.

    `after_s`: behind a barrier, then that long after the previous message. `at_s`: at that virtual time since the
    start of the run, whatever is still running. Neither: right after the previous message, at the same instant.
    """

    index: int
    body: str
    after_s: float | None
    note: str | None
    at_s: float | None = None


@dataclass(frozen=True)
class DemoScenario:
    """A parsed scenario: the simulator's part, the deliveries in order, cache seeds and a description."""

    sim: Scenario
    deliveries: list[Delivery]
    cache: list[CacheSeed]
    description: str | None
    receivers: tuple[str, ...] = ()
    """Chat receivers to start besides SMTP and the webhook: "teams", "slack" (NOTIFY_TEAMS_URL / NOTIFY_SLACK_URL)."""
    sweeps_at_s: tuple[float, ...] = ()
    exceptions: tuple[dict[str, Any], ...] = ()
    """Inline exception entries, stored before the first message (devhost/demo_exceptions.py)."""


def _is_envelope(item: object) -> bool:
    """A JSON object whose keys are only `body`, `after_s` and `note`, with a `body`: never a real message shape."""
    return isinstance(item, dict) and "body" in item and set(item) <= ENVELOPE_KEYS


def event_text(body: object) -> str:
    """The event body: a JSON string is sent as it is (so malformed text can be sent), anything else as JSON."""
    return body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))


def deliveries_of(messages: list[Any]) -> list[Delivery]:
    """Each `messages` item as a delivery; an envelope adds timing, anything else is a body delivered at once.

    `at_s` values must not decrease in file order (messages at one time are delivered in file order).
    """
    deliveries: list[Delivery] = []
    latest: tuple[int, float] | None = None
    for index, item in enumerate(messages):
        if _is_envelope(item):
            try:
                envelope = Envelope.model_validate(item)
            except ValidationError as error:
                raise ScenarioError(f"messages[{index}]: {_first_error(error)}") from None
            if envelope.at_s is not None:
                if latest is not None and envelope.at_s < latest[1]:
                    raise ScenarioError(
                        f"messages[{index}]: at_s {envelope.at_s:g} is earlier than messages[{latest[0]}]'s "
                        f"at_s {latest[1]:g}; list timed messages in time order"
                    )
                latest = (index, envelope.at_s)
            deliveries.append(
                Delivery(index, event_text(envelope.body), envelope.after_s, envelope.note, envelope.at_s)
            )
        else:
            deliveries.append(Delivery(index, event_text(item), None, None))
    return deliveries


def _first_error(error: ValidationError) -> str:
    """`at_s: Input should be less than or equal to 604800` from pydantic's first error."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "envelope"
    return f"{where}: {first.get('msg', 'invalid')}"


def parse_scenario(document: object, source: str = "scenario", base_dir: Path | None = None) -> DemoScenario:
    """Validate a scenario document (already decoded JSON); scan `files` are relative to `base_dir`."""
    if not isinstance(document, dict):
        raise ScenarioError(f"{source}: the scenario must be a JSON object")
    sim_part = {k: v for k, v in document.items() if k not in DEMO_ONLY_KEYS}
    description = document.get(DESCRIPTION_KEY)
    try:
        context = {SCENARIO_DIR_CONTEXT: base_dir} if base_dir is not None else None
        sim = Scenario.model_validate(sim_part, context=context)
        deliveries = deliveries_of(sim.messages)
        seeds = [CacheSeed.model_validate(seed) for seed in document.get(CACHE_KEY) or []]
    except ValidationError as error:
        raise ScenarioError(f"{source}: {error}") from None
    except ScenarioError as error:
        raise ScenarioError(f"{source}: {error}") from None
    if description is not None and not isinstance(description, str):
        raise ScenarioError(f"{source}: {DESCRIPTION_KEY} must be a string")
    receivers = document.get(RECEIVERS_KEY) or []
    if not isinstance(receivers, list) or any(r not in CHAT_RECEIVERS for r in receivers):
        raise ScenarioError(f"{source}: {RECEIVERS_KEY} must be a list of {', '.join(CHAT_RECEIVERS)}")
    sweeps = document.get(SWEEPS_KEY) or []
    if not isinstance(sweeps, list) or not all(
        isinstance(t, int | float) and not isinstance(t, bool) and 0 <= t <= MAX_AT_S for t in sweeps
    ):
        raise ScenarioError(f"{source}: {SWEEPS_KEY} must be a list of virtual seconds from 0 to {MAX_AT_S}")
    try:
        exceptions = parse_inline(document.get(EXCEPTIONS_KEY), MAX_EXCEPTION_DAYS)
    except InlineExceptionsError as error:
        raise ScenarioError(f"{source}: {EXCEPTIONS_KEY}: {error}") from None
    return DemoScenario(
        sim=sim,
        deliveries=deliveries,
        cache=seeds,
        description=description,
        receivers=tuple(dict.fromkeys(receivers)),
        sweeps_at_s=tuple(sorted(float(t) for t in sweeps)),
        exceptions=exceptions,
    )


def load_demo_scenario(path: str | Path) -> DemoScenario:
    """Read and validate a scenario file."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise ScenarioError(f"{path}: not JSON: {error}") from None
    return parse_scenario(document, str(path), Path(path).parent)
