"""The shared devhost clock: virtual time only moves forward when told."""

from datetime import UTC, datetime, timedelta

from devhost.clock import VirtualClock


def test_virtual_clock_moves_only_forward() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = VirtualClock(start)
    clock.advance_to(start + timedelta(minutes=45))
    clock.advance_to(start)
    assert clock.now() == start + timedelta(minutes=45)
    clock.advance(timedelta(seconds=1))
    assert clock.now() == start + timedelta(minutes=45, seconds=1)
