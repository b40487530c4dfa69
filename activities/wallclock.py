"""The time the app's exception evaluation uses: the wall clock, or the clock devhost installs (its virtual clock).

devhost (dev/test only) calls `use` with its clock's `now`; the app itself never does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _wall() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _wall


def now() -> datetime:
    """The current UTC time."""
    return _source()


def use(source: Callable[[], datetime] | None) -> None:
    """Take the time from `source` (None: the wall clock again)."""
    global _source
    _source = source or _wall
