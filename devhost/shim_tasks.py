"""Stand-ins for the .NET tasks DurableTask.Core awaits while it replays an out-of-process action list."""

from __future__ import annotations

from collections.abc import Callable


class ShimTask:
    """A .NET Task stand-in: completes once, then runs its continuations in order.

    `external_event` marks a WaitForExternalEvent task and `children` are a WhenAll/WhenAny's tasks, so the replay can
    tell whether the orchestration is blocked on an event from outside.
    """

    __slots__ = ("children", "done", "external_event", "failed", "waiters")

    def __init__(self, external_event: bool = False) -> None:
        self.done = False
        self.failed = False
        self.external_event = external_event
        self.children: list[ShimTask] = []
        self.waiters: list[Callable[[ShimTask], None]] = []

    def finish(self, failed: bool = False) -> None:
        if self.done:
            return
        self.done, self.failed = True, failed
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter(self)

    def then(self, waiter: Callable[[ShimTask], None]) -> None:
        if self.done:
            waiter(self)
        else:
            self.waiters.append(waiter)

    def awaits_external_event(self) -> bool:
        """Whether this pending task is, or waits on, a pending WaitForExternalEvent."""
        if self.done:
            return False
        return self.external_event or any(child.awaits_external_event() for child in self.children)


def completed() -> ShimTask:
    """A task that has already completed."""
    task = ShimTask()
    task.finish()
    return task


def when(children: list[ShimTask], any_: bool) -> ShimTask:
    """Task.WhenAll / Task.WhenAny: WhenAll waits for every child, even after one has failed."""
    result = ShimTask()
    result.children = children
    if not children:
        result.finish()
        return result
    remaining = [len(children)]

    def child_done(child: ShimTask) -> None:
        remaining[0] -= 1
        if any_ or remaining[0] == 0:
            result.finish(failed=child.failed if any_ else any(c.failed for c in children))

    for child in children:
        child.then(child_done)
    return result
