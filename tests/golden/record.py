"""Re-record the golden histories: `python -m tests.golden.record [--case NAME ...] [--out DIR]`.

Runs every case of tests/golden/cases.py on devhost with a real Azurite and the ARM simulator (virtual clock),
scrubs what is machine-specific, replays each file against the current code as a self-check, and writes
tests/golden/<orchestrator>/<name>.json (completed) and <name>.cut_<label>.json (cut in flight).
Re-recording is deliberate: see tests/golden/README.md for when it is allowed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devhost import azurite as azurite_mod
from devhost import history as h
from devhost.armsim.testing import BASE_APP_SETTINGS
from devhost.azurite import Azurite
from orchestrators.names import ORCHESTRATOR_SCAN_DEPLOYMENT
from tests.golden import scrub
from tests.golden.cases import CASES, Case
from tests.golden.recording import Recording, recording
from tests.golden.replay import FORMAT_VERSION, GOLDEN_ROOT, load_golden, replay_golden, split_episodes
from tests.orchestration.pipeline_support import START


def pending_work(history: list[h.Event]) -> list[str]:
    """What a cut history waits for: scheduled activities, timers and entity calls with no answer yet."""
    answered = {e.get(h.TASK_SCHEDULED_ID) for e in history if e[h.EVENT_TYPE] in (5, 6)}
    answered |= {e.get(h.TIMER_ID) for e in history if e[h.EVENT_TYPE] == h.EventType.TIMER_FIRED}
    replies = {e.get(h.NAME) for e in history if e[h.EVENT_TYPE] == h.EventType.EVENT_RAISED}
    pending = []
    for event in history:
        kind, task_id = event[h.EVENT_TYPE], event[h.EVENT_ID]
        if kind == h.EventType.TASK_SCHEDULED and task_id not in answered:
            pending.append(f"activity {event[h.NAME]} (task {task_id})")
        elif kind == h.EventType.TIMER_CREATED and task_id not in answered:
            pending.append(f"timer (task {task_id}) due {event[h.FIRE_AT]}")
        elif kind == h.EventType.EVENT_SENT:
            request = json.loads(event[h.INPUT])
            if not request.get("signal") and request["id"] not in replies:
                pending.append(f"entity call {event[h.INSTANCE_ID]} {event[h.NAME]} (task {task_id})")
    return pending


def golden_files_of(case: Case, run: Recording, name: str, instance_id: str) -> dict[str, dict[str, Any]]:
    """The completed golden of one instance and its cuts, before scrubbing."""
    status = run.engine.get_status(instance_id)
    assert status is not None and status["runtimeStatus"] in ("Completed", "Failed"), status
    history = run.engine.history(instance_id)
    snapshots = run.snapshots(instance_id)
    episodes = split_episodes(history)
    assert [s.history_length for s in snapshots] == [e.start + len(e.events) for e in episodes]
    base = {
        "format": FORMAT_VERSION,
        "orchestrator": ORCHESTRATOR_SCAN_DEPLOYMENT,
        "case": case.name,
        "description": case.description,
        "recorded_with": {
            "scenario": case.scenario,
            "settings": case.settings,
            "faults": case.faults,
            "virtual_clock_start": h.format_timestamp(START),
        },
        "instance_id": instance_id,
    }
    files = {
        name: base
        | {
            "cut": None,
            "runtime_status": status["runtimeStatus"],
            "output": status["output"],
            "custom_status": status["customStatus"],
            "history": history,
            "next_episode": None,
        }
    }
    for label, select in case.cuts.get(name, {}).items():
        index = select(episodes, snapshots)
        if index is None:
            raise RuntimeError(f"{case.name}: no episode of {name} matches the cut {label!r}")
        prefix = history[: snapshots[index].history_length]
        files[f"{name}.cut_{label}"] = base | {
            "cut": {"label": label, "after_episode": index, "pending": pending_work(prefix)},
            "runtime_status": snapshots[index].status,
            "output": None,
            "custom_status": snapshots[index].custom_status,
            "history": prefix,
            "next_episode": episodes[index + 1].events,
        }
    return files


def record_case(azurite: Azurite, case: Case, workdir: Path) -> dict[str, dict[str, Any]]:
    """Run one case and return its golden files (scrubbed), by file name."""
    with recording(azurite, case.name, case.scenario, workdir, **case.settings) as run:
        for fault in case.faults:
            run.sim.inject(fault["method"], fault["path"], fault["status"], times=fault["times"],
                           code=fault.get("code"))  # fmt: skip
        instances = case.drive(run)
        raw = {
            file: golden
            for name, instance_id in instances.items()
            for file, golden in golden_files_of(case, run, name, instance_id).items()
        }
        arm_port = int(run.sim.base_url.rsplit(":", 1)[1].split("/")[0])
    ports = scrub.port_replacements((azurite.blob_port, azurite.queue_port, azurite.table_port), arm_port)
    paths = scrub.path_replacements((str(workdir), "<workdir>"))
    scrubbed = {}
    for file, golden in raw.items():
        replacements = scrub.execution_replacements(golden["history"] + (golden["next_episode"] or [])) | ports | paths
        scrubbed[file] = scrub.scrub(golden, replacements)
    return scrubbed


def dump(golden: dict[str, Any]) -> str:
    """Indented JSON with one history event per line (readable diffs when a golden is re-recorded)."""
    lines = ["{"]
    items = list(golden.items())
    for position, (key, value) in enumerate(items):
        comma = "," if position < len(items) - 1 else ""
        if key in ("history", "next_episode") and value:
            events = ",\n".join(f"    {json.dumps(event, ensure_ascii=False)}" for event in value)
            lines.append(f'  "{key}": [\n{events}\n  ]{comma}')
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            lines.append(f'  "{key}": {text}{comma}')
    return "\n".join([*lines, "}"]) + "\n"


def check(path: Path, text: str) -> None:
    """The self-check: nothing machine-specific left, and the file replays cleanly against the current code."""
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    leaks = [marker for marker in (today, str(scrub.ROOT), tempfile.gettempdir() + "/") if marker in text]
    leaks += [value for value in BASE_APP_SETTINGS.values() if "token" in value and value in text]
    if leaks:
        raise RuntimeError(f"{path.name}: machine-specific or secret text left after scrubbing: {leaks}")
    problems = replay_golden(load_golden(path), path.name)
    if problems.nondeterminism or problems.content:
        raise RuntimeError(f"{path.name} does not replay: {problems.nondeterminism + problems.content}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES], help="record only these")
    parser.add_argument("--out", type=Path, default=GOLDEN_ROOT, help="root folder (default tests/golden)")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.case or c.name in args.case]
    azurite = azurite_mod.start()
    try:
        with tempfile.TemporaryDirectory(prefix="golden-") as workdir:
            for case in cases:
                for file, golden in record_case(azurite, case, Path(workdir)).items():
                    path = args.out / golden["orchestrator"] / f"{file}.json"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    text = dump(golden)
                    path.write_text(text, encoding="utf-8")
                    check(path, text)
                    events = len(golden["history"])
                    print(f"{path}: {golden['runtime_status']}, {events} history events")
    finally:
        azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
