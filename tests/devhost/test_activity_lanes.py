"""devhost/ordering.py `ActivityLanes`: named activities run one at a time in scheduling order, the others alongside."""

from __future__ import annotations

import threading

from devhost.ordering import ActivityLanes


def test_a_serial_activity_waits_for_the_one_before_it_and_others_do_not() -> None:
    lanes = ActivityLanes(4, serial=("send_notifications",))
    release_first = threading.Event()
    second_started = threading.Event()
    other_ran = threading.Event()
    order: list[str] = []

    def first() -> None:
        release_first.wait(30)
        order.append("first")

    def second() -> None:
        second_started.set()
        order.append("second")

    try:
        lanes.submit("send_notifications", first)
        lanes.submit("send_notifications", second)
        lanes.submit("store_results", other_ran.set)
        assert other_ran.wait(30)  # another activity is not held behind the lane
        assert not second_started.is_set()  # the lane's second waits for its first
        release_first.set()
        assert second_started.wait(30)
    finally:
        release_first.set()
        lanes.shutdown(wait=True, cancel_futures=False)
    assert order == ["first", "second"]


def test_without_serial_names_every_activity_shares_the_pool() -> None:
    lanes = ActivityLanes(2)
    done = threading.Event()
    try:
        lanes.submit("send_notifications", done.set)
        assert done.wait(30)
    finally:
        lanes.shutdown(wait=True, cancel_futures=False)
