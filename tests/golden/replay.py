"""Replay a golden history against the current orchestrator code, episode by episode, as devhost and the extension do.

A history is a sequence of episodes, each `OrchestratorStarted, <new events>, <decisions>, [ExecutionCompleted],
OrchestratorCompleted`. For every episode the orchestrator is run through the SDK (devhost.orchestration.run_episode:
the same trigger payload and the same action replay as the Durable extension's out-of-process shim) over the
history before it plus the episode's new events, and what it decides is compared with what was recorded:

- structure (kind, task id, activity/entity name, entity target, completion status): a difference here is
  non-determinism, the failure an in-flight instance would hit after an upgrade;
- content (inputs, timer times, output, custom status): a difference here replays fine but changes behaviour on a
  recorded path; re-record deliberately if intended (see tests/golden/README.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from devhost import history as h
from devhost.functions import FunctionEntry, load_app
from devhost.orchestration import FAILED, RUNNING, EpisodeResult, Instance, run_episode

GOLDEN_ROOT = Path(__file__).parent
APP_SPEC = "function_app"
FORMAT_VERSION = 1
DECISION_TYPES = frozenset({h.EventType.TASK_SCHEDULED, h.EventType.TIMER_CREATED, h.EventType.EVENT_SENT,
                            h.EventType.SUB_ORCHESTRATION_CREATED})  # fmt: skip
OWN_TYPES = DECISION_TYPES | {h.EventType.ORCHESTRATOR_STARTED, h.EventType.ORCHESTRATOR_COMPLETED,
                              h.EventType.EXECUTION_COMPLETED, h.EventType.CONTINUE_AS_NEW}  # fmt: skip
CONTENT_FIELDS = (h.INPUT, h.FIRE_AT)


@dataclass(frozen=True)
class Episode:
    """One recorded episode: its position in the history and its events."""

    number: int
    start: int
    events: list[h.Event]

    @property
    def now(self) -> str:
        return str(self.events[0][h.TIMESTAMP])

    @property
    def inbox(self) -> list[h.Event]:
        """The events that arrived for this episode (ExecutionStarted, completions, timers, entity replies)."""
        return [e for e in self.events if e[h.EVENT_TYPE] not in OWN_TYPES]

    @property
    def decisions(self) -> list[h.Event]:
        return [e for e in self.events if e[h.EVENT_TYPE] in DECISION_TYPES]

    @property
    def completion(self) -> h.Event | None:
        return next((e for e in self.events if e[h.EVENT_TYPE] == h.EventType.EXECUTION_COMPLETED), None)


def split_episodes(history: list[h.Event]) -> list[Episode]:
    """The history cut at each OrchestratorStarted."""
    starts = [i for i, e in enumerate(history) if e[h.EVENT_TYPE] == h.EventType.ORCHESTRATOR_STARTED]
    bounds = [*starts, len(history)]
    return [Episode(n, s, history[s : bounds[n + 1]]) for n, s in enumerate(starts)]


def describe(event: h.Event | None) -> str:
    """A decision event as the extension names it in a non-determinism error."""
    if event is None:
        return "nothing"
    kind = h.EventType(event[h.EVENT_TYPE])
    if kind is h.EventType.TASK_SCHEDULED:
        return f"CallActivity '{event.get(h.NAME)}'"
    if kind is h.EventType.TIMER_CREATED:
        return "CreateTimer"
    if kind is h.EventType.EVENT_SENT:
        verb = "SignalEntity" if json.loads(event.get(h.INPUT) or "{}").get("signal") else "CallEntity"
        return f"{verb} {event.get(h.INSTANCE_ID)} '{event.get(h.NAME)}'"
    if kind is h.EventType.EXECUTION_COMPLETED:
        return f"ExecutionCompleted ({event.get('OrchestrationStatus')})"
    return f"{kind.name} '{event.get(h.NAME)}'"


def structure(event: h.Event) -> tuple[Any, ...]:
    """What the extension compares on replay: kind, task id, name and target (never inputs or timer times)."""
    kind = event[h.EVENT_TYPE]
    signal = json.loads(event.get(h.INPUT) or "{}").get("signal") if kind == h.EventType.EVENT_SENT else None
    return kind, event[h.EVENT_ID], event.get(h.NAME), event.get(h.INSTANCE_ID), signal


@dataclass
class Problems:
    """What replaying one golden file found, split by kind."""

    nondeterminism: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    final: EpisodeResult | None = None


@cache
def orchestrator(name: str) -> FunctionEntry:
    """The orchestrator function `name` of the app, loaded once per process."""
    entry = load_app(APP_SPEC).orchestrator(name)
    if entry is None:
        raise LookupError(f"the app registers no orchestrator named {name!r}")
    return entry


def replay_episode(golden: dict[str, Any], past: list[h.Event], episode: Episode) -> EpisodeResult:
    """Run the orchestrator over `past` (as played) plus the episode's new events, as devhost's engine would."""
    started = next(e for e in [*past, *episode.events] if e[h.EVENT_TYPE] == h.EventType.EXECUTION_STARTED)
    ids = started["OrchestrationInstance"]
    when = h.parse_timestamp(episode.now)
    inst = Instance(ids["InstanceId"], golden["orchestrator"], ids["ExecutionId"], RUNNING, started.get(h.INPUT),
                    when, when)  # fmt: skip
    inst.history.commit([dict(e) for e in past])
    return run_episode(orchestrator(golden["orchestrator"]), inst, [dict(e) for e in episode.inbox], when)


def compare_episode(where: str, episode: Episode, result: EpisodeResult, problems: Problems) -> None:
    """Compare one replayed episode with the recorded one; append what differs to `problems`."""
    if result.status == FAILED and result.failure_details and "Non-deterministic" in result.failure_details:
        problems.nondeterminism.append(f"{where}: {result.failure_details}")
        return
    if result.status == FAILED and episode.completion is None:
        problems.nondeterminism.append(f"{where}: the replay failed the orchestration: {result.failure_reason}")
        return
    index_of = {d.task_id: d.action_index for d in result.decisions}
    actual = [e for e in result.events if e[h.EVENT_TYPE] in DECISION_TYPES]
    expected = episode.decisions
    for position in range(max(len(actual), len(expected))):
        want = expected[position] if position < len(expected) else None
        got = actual[position] if position < len(actual) else None
        task_id = int((want or got or {})[h.EVENT_ID])
        action = index_of.get(task_id, "?") if got is not None else "?"
        if want is None or got is None or structure(want) != structure(got):
            problems.nondeterminism.append(
                f"{where}: action index {action} (task id {task_id}): recorded {describe(want)}, "
                f"replay scheduled {describe(got)}"
            )
            return
        for name in CONTENT_FIELDS:
            if want.get(name) != got.get(name):
                problems.content.append(
                    f"{where}: action index {action} (task id {task_id}, {describe(want)}): {name} differs:\n"
                    f"  recorded: {want.get(name)}\n  replay:   {got.get(name)}"
                )
    recorded_end, replay_end = episode.completion, _completion(result)
    if (recorded_end is None) != (replay_end is None) or (
        recorded_end and replay_end and recorded_end["OrchestrationStatus"] != replay_end["OrchestrationStatus"]
    ):
        problems.nondeterminism.append(f"{where}: recorded {describe(recorded_end)}, replay ended with "
                                       f"{describe(replay_end)}")  # fmt: skip


def _completion(result: EpisodeResult) -> h.Event | None:
    return next((e for e in result.events if e[h.EVENT_TYPE] == h.EventType.EXECUTION_COMPLETED), None)


def replay_golden(golden: dict[str, Any], label: str) -> Problems:
    """Replay every episode of the golden history (and, for a cut history, the recorded next episode)."""
    problems = Problems()
    history: list[h.Event] = golden["history"]
    episodes = split_episodes(history)
    if golden.get("next_episode"):
        episodes.append(Episode(len(episodes), len(history), golden["next_episode"]))
    for episode in episodes:
        kind = "next episode after the cut" if episode.start == len(history) else "episode"
        where = f"{label}: {kind} {episode.number} (history events {episode.start}-"
        where += f"{episode.start + len(episode.events) - 1}, at {episode.now})"
        result = replay_episode(golden, history[: episode.start], episode)
        compare_episode(where, episode, result, problems)
        if problems.nondeterminism:
            return problems
        if episode.start + len(episode.events) == len(history):
            problems.final = result
    final = problems.final
    if final is None:
        problems.nondeterminism.append(f"{label}: the history has no episodes")
        return problems
    if final.status != golden["runtime_status"]:
        problems.nondeterminism.append(
            f"{label}: recorded runtime status {golden['runtime_status']}, replay {final.status}"
        )
    output = json.loads(final.output_json) if final.output_json else None
    if output != golden["output"]:
        problems.content.append(f"{label}: output differs:\n  recorded: {golden['output']}\n  replay:   {output}")
    custom = json.loads(final.custom_status_json) if final.custom_status_set and final.custom_status_json else None
    if final.custom_status_set and custom != golden["custom_status"]:
        problems.content.append(
            f"{label}: custom status differs:\n  recorded: {golden['custom_status']}\n  replay:   {custom}"
        )
    return problems


def golden_files(orchestrator_name: str | None = None) -> list[Path]:
    """Every golden file, sorted (under tests/golden/<orchestrator>/)."""
    pattern = f"{orchestrator_name}/*.json" if orchestrator_name else "*/*.json"
    return sorted(GOLDEN_ROOT.glob(pattern))


def load_golden(path: Path) -> dict[str, Any]:
    golden: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if golden.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: golden format {golden.get('format')!r}, expected {FORMAT_VERSION}")
    return golden
