"""Inline exceptions in a demo scenario (`"exceptions": [...]`, the document's entries) and the expiry timer's runs.

Each entry is an entry of the exceptions document (core/exceptions_doc.py); besides `expires` (absolute) a scenario
may give `expires_after_s`: seconds of virtual time after the run's start, so an exception can expire during the
run. They are stored (version 1, actor `scenario`) before the first message. The `exceptions_expiry` timer runs
whenever the virtual clock has passed an expiry since its last run (checked before each message), and once more at
the end: the clock then moves on to each expiry at most `END_GRACE_S` (an hour: the default EXCEPTIONS_SCHEDULE's
period) after the orchestrations finished, as the hourly timer would get there; later expiries are not reached.
The app's exception evaluation reads devhost's virtual clock (`activities.wallclock`) during the run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from activities import wallclock
from activities.exceptions_store import ExceptionStore
from activities.notify_store import EXCEPTED_PARTITION, suppression_counts
from activities.storage_clients import clients_for
from core.exceptions_doc import DEFAULT_MAX_DAYS, InvalidExceptions, parse_document
from starters.exceptions_api import EXCEPTIONS_EXPIRY_FUNCTION

if TYPE_CHECKING:
    from devhost.demo_run import Driver
    from devhost.demo_stack import DemoStack

EXCEPTIONS_KEY = "exceptions"
RELATIVE_KEY = "expires_after_s"
SCENARIO_ACTOR = "scenario"
MAX_AT_S = 7 * 24 * 3600
END_GRACE_S = 3600


class InlineExceptionsError(ValueError):
    """The scenario's `exceptions` are invalid; the message names the entry."""


def resolve(entries: Sequence[dict[str, Any]], start: datetime) -> dict[str, Any]:
    """The document of the inline entries, `expires_after_s` turned into `expires` from `start`."""
    resolved = []
    for index, raw in enumerate(entries):
        item = dict(raw)
        if RELATIVE_KEY in item:
            seconds = item.pop(RELATIVE_KEY)
            if "expires" in item:
                raise InlineExceptionsError(f"exceptions[{index}]: give expires or {RELATIVE_KEY}, not both")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_AT_S:
                raise InlineExceptionsError(f"exceptions[{index}].{RELATIVE_KEY}: seconds from 0 to {MAX_AT_S}")
            item["expires"] = (start + timedelta(seconds=seconds)).isoformat()
        resolved.append(item)
    return {"version": 0, "exceptions": resolved}


def parse_inline(raw: object, max_days: int = DEFAULT_MAX_DAYS) -> tuple[dict[str, Any], ...]:
    """Validate the scenario's `exceptions` as they will be loaded (from the wall clock's now)."""
    if raw is None:
        return ()
    if isinstance(raw, dict) and set(raw) <= {"version", EXCEPTIONS_KEY}:
        raw = raw.get(EXCEPTIONS_KEY) or []  # the whole document is fine too
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise InlineExceptionsError(f"{EXCEPTIONS_KEY} must be a list of exception entries")
    now = datetime.now(UTC)
    try:
        parse_document(resolve(raw, now), now, max_days)
    except InvalidExceptions as error:
        raise InlineExceptionsError(str(error)) from None
    return tuple(raw)


@dataclass
class ExpiryTimer:
    """Fires the `exceptions_expiry` timer when the virtual clock passed an inline exception's expiry."""

    driver: Driver
    expiries: list[datetime]
    runs: int = 0
    loaded: int = 0
    _done: datetime | None = field(default=None)

    def due(self) -> None:
        now = self.driver.stack.clock.now()
        if any((self._done is None or self._done < e) and e <= now for e in self.expiries):
            self._fire(f"exceptions expired before +{self.driver.virtual_elapsed()}")

    def run_out(self) -> None:
        """At the end: move the clock to each expiry within END_GRACE_S, fire the timer, let the work finish."""
        horizon = self.driver.stack.clock.now() + timedelta(seconds=END_GRACE_S)
        for expiry in sorted(e for e in self.expiries if self.driver.stack.clock.now() < e <= horizon):
            self.driver.stack.clock.advance_to(expiry)
            self._fire(f"exception expiring at +{self.driver.virtual_elapsed()}")
            self.driver.settle("the orchestrations after the exceptions expiry timer")
        self.due()

    def _fire(self, what: str) -> None:
        self.driver.run_timer(EXCEPTIONS_EXPIRY_FUNCTION, what)
        self._done = self.driver.stack.clock.now()
        self.runs += 1

    def summary(self, stack: DemoStack) -> dict[str, Any]:
        """summary.json's `exceptions`: entries loaded, expiry timer runs, findings suppressed by exceptions and (for
        comparison) image results suppressed as duplicates, and per image the exception ids that applied.
        """
        counts = suppression_counts(stack.settings)
        table = clients_for(stack.settings).table(stack.settings.alerts_table)
        applied: dict[str, set[str]] = {}
        for row in table.query_entities(f"PartitionKey eq '{EXCEPTED_PARTITION}'"):
            view = json.loads(row.get("view") or "{}")
            applied.setdefault(str(row.get("image")), set()).update(view.get("exception_ids", []))
        return {
            "loaded": self.loaded,
            "expiry_runs": self.runs,
            "suppressed_findings": counts["by_exception"],
            "suppressed_duplicates": counts["duplicates"],
            "applied": {image: sorted(ids) for image, ids in sorted(applied.items())},
        }


def start_exceptions(stack: DemoStack, driver: Driver, entries: Sequence[dict[str, Any]]) -> ExpiryTimer:
    """Make the app read the virtual clock, store the inline exceptions, and return the expiry timer's driver."""
    wallclock.use(stack.clock.now)
    start = stack.clock.now()
    timer = ExpiryTimer(driver, [])
    if entries:
        try:
            document = ExceptionStore(stack.settings).put(resolve(entries, start), SCENARIO_ACTOR, start)
        except InvalidExceptions as error:
            raise InlineExceptionsError(str(error)) from None
        timer.expiries = sorted({e.expires for e in document.exceptions if e.expires > start})
        timer.loaded = len(document.exceptions)
    return timer
