"""The demo's rescans: the `rescan_timer` fired on the virtual clock as the default hourly RESCAN_SCHEDULE would, and
summary.json's `rescans` block.

Devhost runs no timer on its own. The demo fires `rescan_timer` at the points where it moves the run on (before each
message and after each sweep has applied its pages) whenever the virtual clock has passed one or more hourly ticks
(`start + k * 3600 s`) since the timer last ran: once however many ticks passed, as the Functions host runs a timer
that missed occurrences once, past due. At the end it fires once more (unless it just ran), so whatever is due when
the scenario's timeline ends is rescanned, as the next hourly run would; the rescans it starts run to their end.
Between those points nothing is lost that a scenario can see: a rescan is started by the first firing after its
image became due (RESCAN_INTERVAL_HOURS after its latest result), and a run that finds nothing due starts nothing.
The rescans then run like any scan (low priority in the scan queue); the timer's own orchestration
(`rescan-inventory`) is left out of the counts like the sweep's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.rescan import RESCAN_INSTANCE_ID, SCHEDULED_RESCAN_PREFIX
from starters.rescan import RESCAN_TIMER_FUNCTION

if TYPE_CHECKING:
    from devhost.demo_run import Driver

TIMER_PERIOD_S = 3600
"""The default RESCAN_SCHEDULE (`0 45 * * * *`) fires hourly."""


@dataclass
class RescanTimer:
    """Fires `rescan_timer` when an hourly tick passed since its last run (see the module docstring)."""

    driver: Driver
    runs: int = 0
    _tick: int = 0
    _fired_at: datetime | None = None

    def _current_tick(self) -> int:
        elapsed = (self.driver.stack.clock.now() - self.driver.started).total_seconds()
        return int(elapsed // TIMER_PERIOD_S)

    def due(self) -> None:
        """Fire the timer once if the clock passed a tick since it last ran."""
        if self._current_tick() > self._tick:
            self._fire("past due")

    def _fire(self, why: str) -> None:
        """Run the work already due now first (a sweep started at this moment applies its pages before the timer
        looks at the inventory), then the timer function.
        """
        now = self.driver.stack.clock.now()
        self.driver.run_until(
            now, f"running the orchestrations up to the rescan timer at +{self.driver.virtual_elapsed()}"
        )
        self._tick, self._fired_at = self._current_tick(), now
        self.runs += 1
        self.driver.run_timer(RESCAN_TIMER_FUNCTION, f"{why} at +{self.driver.virtual_elapsed()}", "rescan timer")

    def run_out(self) -> None:
        """At the end: one more firing (unless it just ran), and the rescans it starts run to their end."""
        if self._fired_at != self.driver.stack.clock.now():
            self._fire("at the end")
            self.driver.finish()


def chain(*hooks: Callable[[], None] | None) -> Callable[[], None]:
    """One `before_delivery` hook that runs each given hook in order."""

    def run() -> None:
        for hook in hooks:
            if hook is not None:
                hook()

    return run


def is_rescan_run(instance: dict[str, Any]) -> bool:
    """The rescan timer's own orchestration (not a scan)."""
    return str(instance.get("instanceId")) == RESCAN_INSTANCE_ID


def rescans_started(instances: list[dict[str, Any]]) -> int:
    """summary.json's `rescans.started`: the scheduled rescans started in the run (their instance id prefix)."""
    return sum(1 for i in instances if str(i.get("instanceId", "")).startswith(SCHEDULED_RESCAN_PREFIX))
