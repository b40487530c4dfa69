"""A fake Durable backend for millisecond orchestrator tests: synthetic histories, no Azurite, no ARM, no threads.

Model: the Durable SDK's own tests (tests/test_utils/ContextBuilder.py) and durabletask-python's orchestrator tests
build a history by hand and run the orchestrator over it. Here the history is built by a script of answers instead of
by hand, and each episode goes through devhost.orchestration.run_episode, so the real orchestrator function runs
through the SDK with the extension's action replay (retries become durable timers, task ids, entity request ids
and non-determinism checks are the real ones):

    run = ScriptedRun(ORCHESTRATOR_SCAN_DEPLOYMENT, scan_input, instance_id="scan-1")
    run.on_activity("resolve_images", {"found": True, "images": [...]})      # a value,
    run.on_activity("get_scanner_state", lambda payload: {...})               # a function of the input,
    run.on_activity("delete_scanner_group", Fail("ArmRetryableError: 500"))  # or a failure (every attempt)
    run.on_entity("aci_quota", "acquire", {"granted": False, ...})            # else the app's real entity runs
    result = run.run()                       # to completion: timers fire in time order on a virtual clock
    result.output, result.custom_status, result.calls("get_scanner_state"), result.timers, result.history

`run.step()` runs one episode and returns its new actions, for tests that look at a history in the middle.
Entities the test does not script run as the app's own entity functions (pure reducers) with state kept here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost import history as h
from devhost.actions import Decision, DecisionKind
from devhost.entities import EntityOperation, EntityState, run_batch, scheduler_id
from devhost.functions import FunctionIndex, load_app
from devhost.orchestration import CONTINUED_AS_NEW, RUNNING, TERMINAL_STATUSES, Instance, entity_request, run_episode

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
APP_SPEC = "function_app"
MAX_EPISODES = 500
_APP: list[FunctionIndex] = []


def app_index() -> FunctionIndex:
    """The app's functions, imported once per test process."""
    if not _APP:
        _APP.append(load_app(APP_SPEC))
    return _APP[0]


@dataclass(frozen=True)
class Fail:
    """An activity answer that fails the attempt (as an activity raising `message` would)."""

    message: str


Answer = Any  # a JSON value, a Fail, or a callable(input) -> either


@dataclass
class Call:
    """One thing the orchestration did: an activity attempt, an entity call or signal, a timer."""

    kind: str  # "activity", "entity", "signal", "timer"
    name: str
    input: Any
    at: datetime
    target: str | None = None


@dataclass
class Result:
    """Where a run ended (for ContinuedAsNew, `output` is the input of the next execution)."""

    status: str
    output: Any
    custom_status: Any
    history: list[h.Event]
    log: list[Call]
    failure: str = ""

    def calls(self, name: str, kind: str = "activity") -> list[Any]:
        """Inputs of every `kind` call named `name`, in order (activity attempts include retries)."""
        return [c.input for c in self.log if c.kind == kind and c.name == name]

    @property
    def timers(self) -> list[datetime]:
        return [c.at for c in self.log if c.kind == "timer"]

    def sequence(self) -> list[str]:
        """The durable actions in order, as names ("activity:x", "entity:@name@key:op", "signal:...", "timer")."""
        return [c.kind if c.kind == "timer" else f"{c.kind}:{c.target + ':' if c.target else ''}{c.name}"
                for c in self.log]  # fmt: skip


@dataclass
class ScriptedRun:
    """One orchestration instance on the fake backend."""

    orchestrator: str
    input: Any
    instance_id: str = "scan-test"
    start: datetime = START
    execution_id: str = "0" * 32
    activities: dict[str, Answer] = field(default_factory=dict)
    entity_answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    entities: dict[str, EntityState] = field(default_factory=dict)
    log: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        entry = app_index().orchestrator(self.orchestrator)
        assert entry is not None, f"no orchestrator {self.orchestrator!r}"
        self.entry = entry
        self.now = self.start
        input_json = json.dumps(self.input)
        self.inst = Instance(self.instance_id, self.orchestrator, self.execution_id, RUNNING, input_json,
                             self.start, self.start)  # fmt: skip
        started = h.execution_started(self.start, self.orchestrator, input_json, self.instance_id,
                                      self.execution_id, None)  # fmt: skip
        self.inbox: list[h.Event] = [started]
        self.timers: list[tuple[datetime, int, str]] = []
        self.events: list[tuple[datetime, int, str, str]] = []  # external events to raise at their time
        self.result: Result | None = None

    # ---- the script -------------------------------------------------------------------------------------------
    def on_activity(self, name: str, answer: Answer) -> ScriptedRun:
        self.activities[name] = answer
        return self

    def on_entity(self, entity: str, operation: str, answer: Answer) -> ScriptedRun:
        """Answer calls of `operation` on every key of `entity` (the app's entity function otherwise)."""
        self.entity_answers[(entity.lower(), operation)] = answer
        return self

    def entity_state(self, entity: str, key: str) -> Any:
        state = self.entities.get(scheduler_id(entity, key))
        return json.loads(state.state_json) if state and state.exists and state.state_json else None

    def entity_operation(self, entity: str, key: str, operation: str, payload: Any) -> Any:
        """Run one operation on the app's real entity (e.g. to fill the quota gate before the run); its result."""
        return self._real_entity(scheduler_id(entity, key), operation, payload)

    def raise_event(self, at: datetime, name: str, data: Any) -> ScriptedRun:
        """Raise external event `name` at virtual time `at` (as a client's raise_event would)."""
        self.events.append((at, len(self.events), name, json.dumps(data)))
        return self

    # ---- driving ----------------------------------------------------------------------------------------------
    def step(self) -> list[Decision]:
        """Run one episode over the inbox; answer its new work into the inbox (timers are queued)."""
        result = run_episode(self.entry, self.inst, self.inbox, self.now)
        self.inbox = []
        self.inst.history.commit(result.events)
        if result.custom_status_set:
            self.inst.custom_status_json = result.custom_status_json
        if result.status in TERMINAL_STATUSES or result.status == CONTINUED_AS_NEW:
            self.inst.status = result.status
            output = result.output_json if result.status != CONTINUED_AS_NEW else result.continue_input
            self.result = Result(result.status, json.loads(output or "null"), self._custom(),
                                 self.inst.history.events, self.log, result.failure_reason)  # fmt: skip
        for decision in result.decisions:
            self._answer(decision)
        return result.decisions

    def run(self) -> Result:
        """Episodes until the orchestration ends; when only timers are left, the clock jumps to the earliest."""
        for _ in range(MAX_EPISODES):
            if self.result is not None:
                return self.result
            if not self.inbox:
                assert self.timers or self.events, "the orchestration waits for something the script never answers"
                self.timers.sort()
                self.events.sort()
                if self.events and (not self.timers or self.events[0][0] <= self.timers[0][0]):
                    at, _, name, data = self.events.pop(0)
                    self.now = max(self.now, at)
                    self.inbox.append(h.event_raised(self.now, name, data))
                else:
                    fire_at, timer_id, text = self.timers.pop(0)
                    self.now = max(self.now, fire_at)
                    self.inbox.append(h.timer_fired(self.now, timer_id, text))
            self.step()
        raise AssertionError(f"no end after {MAX_EPISODES} episodes")

    def _custom(self) -> Any:
        return json.loads(self.inst.custom_status_json) if self.inst.custom_status_json else None

    def _answer(self, decision: Decision) -> None:
        if decision.kind is DecisionKind.TIMER:
            assert decision.fire_at is not None
            self.log.append(Call("timer", "", None, decision.fire_at))
            self.timers.append((decision.fire_at, decision.task_id, h.format_timestamp(decision.fire_at)))
        elif decision.kind is DecisionKind.ACTIVITY:
            # decoded as the worker decodes an activity's input (the SDK sends it JSON-encoded twice)
            payload = ActivityTriggerConverter.decode(meta.Datum(decision.input, "json"), trigger_metadata=None)
            self.log.append(Call("activity", decision.name, payload, self.now))
            self.inbox.append(self._activity_event(decision, payload))
        elif decision.kind is DecisionKind.SEND_EVENT:
            self._entity(decision)
        else:
            raise AssertionError(f"the fake backend does not run {decision.describe()}")

    def _activity_event(self, decision: Decision, payload: Any) -> h.Event:
        if decision.name not in self.activities:
            raise AssertionError(f"the script has no answer for activity {decision.name!r} (input {payload!r})")
        answer = self.activities[decision.name]
        value = answer(payload) if callable(answer) else answer
        if isinstance(value, Fail):
            # the extension's shape (devhost.invoke): a one-line reason, the traceback in the details
            reason = f"Activity function '{decision.name}' failed: {value.message}"
            details = f'Traceback (most recent call last):\n  File "<fake activity>", line 1\n{value.message}\n'
            return h.task_failed(self.now, decision.task_id, reason, details)
        encoded = ActivityTriggerConverter.encode(value, expected_type=None)
        return h.task_completed(self.now, decision.task_id, str(encoded.value))

    def _entity(self, decision: Decision) -> None:
        request = entity_request(decision, self.instance_id, self.execution_id)
        operation_input = json.loads(request["input"]) if request["input"] is not None else None
        target = decision.target or ""
        self.log.append(Call("signal" if decision.signal else "entity", decision.name, operation_input, self.now,
                             target))  # fmt: skip
        name = target[1:].partition("@")[0]
        scripted = self.entity_answers.get((name, decision.name))
        if scripted is not None and not decision.signal:
            value = scripted(operation_input) if callable(scripted) else scripted
            reply = json.dumps({"result": json.dumps(value)})
            self.inbox.append(h.event_raised(self.now, request["id"], reply))
            return
        value = self._real_entity(target, decision.name, operation_input)
        if not decision.signal:
            self.inbox.append(h.event_raised(self.now, request["id"], json.dumps({"result": json.dumps(value)})))

    def _real_entity(self, target: str, operation: str, payload: Any) -> Any:
        entry = app_index().entity(target[1:].partition("@")[0])
        state = self.entities.setdefault(target, EntityState())
        message = {"id": "fake", "op": operation, "signal": False, "input": json.dumps(payload), "parent": "fake"}
        replies = run_batch(entry, target, state, [EntityOperation(0, message)], self.now)
        reply = json.loads(replies[0].event[h.INPUT])
        assert "exceptionType" not in reply, f"entity {target} {operation} failed: {reply}"
        return json.loads(reply["result"])
