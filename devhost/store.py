"""SQLite persistence for devhost: instances, history, queued messages, activities in flight, timers, entities."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from devhost.history import Event

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY, name TEXT NOT NULL, execution_id TEXT NOT NULL, status TEXT NOT NULL,
    input TEXT, output TEXT, custom_status TEXT, created TEXT NOT NULL, updated TEXT NOT NULL, parent TEXT);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (instance_id, seq));
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS activities (
    instance_id TEXT NOT NULL, execution_id TEXT NOT NULL, task_id INTEGER NOT NULL, name TEXT NOT NULL, input TEXT,
    PRIMARY KEY (instance_id, execution_id, task_id));
CREATE TABLE IF NOT EXISTS timers (
    instance_id TEXT NOT NULL, execution_id TEXT NOT NULL, timer_id INTEGER NOT NULL, fire_at TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, timer_id));
CREATE TABLE IF NOT EXISTS entity_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entity_id TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    entity_id TEXT PRIMARY KEY, state TEXT, present INTEGER NOT NULL);
"""


@dataclass
class InstanceRow:
    """The persisted summary of one orchestration instance."""

    instance_id: str
    name: str
    execution_id: str
    status: str
    input: str | None
    output: str | None
    custom_status: str | None
    created: str
    updated: str
    parent: dict[str, Any] | None


@dataclass
class Snapshot:
    """Everything needed to resume after a restart."""

    instances: list[InstanceRow]
    history: dict[str, list[Event]]
    inbox: list[tuple[int, str, str | None, Event]]
    activities: list[tuple[str, str, int, str, str | None]]
    timers: list[tuple[str, str, int, str]]
    entity_queue: list[tuple[int, str, dict[str, Any]]]
    entities: dict[str, tuple[str | None, bool]]


def _instance_row(row: tuple[Any, ...]) -> InstanceRow:
    iid, name, execution_id, status, input_json, output, custom_status, created, updated, parent = row
    parent_ref = json.loads(parent) if parent else None
    return InstanceRow(iid, name, execution_id, status, input_json, output, custom_status, created, updated, parent_ref)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Store:
    """A single SQLite connection; callers serialize access (the engine holds its lock) and group writes."""

    def __init__(self, path: str | None = None) -> None:
        self._owned_path: str | None = None
        if path is None:
            handle, path = tempfile.mkstemp(prefix="devhost-", suffix=".sqlite")
            os.close(handle)
            self._owned_path = path
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic commit (nestable)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._depth = 0

    def close(self) -> None:
        self._conn.close()
        if self._owned_path:
            for suffix in ("", "-wal", "-shm"):
                with suppress(FileNotFoundError):
                    os.remove(self._owned_path + suffix)

    # ---- instances and history ------------------------------------------------------------------------------------
    def save_instance(self, row: InstanceRow) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                row.instance_id, row.name, row.execution_id, row.status, row.input, row.output, row.custom_status,
                row.created, row.updated, _dumps(row.parent) if row.parent else None,
            ),
        )  # fmt: skip

    def append_history(self, instance_id: str, first_seq: int, events: Iterable[Event]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO history VALUES (?,?,?)",
            [(instance_id, first_seq + offset, _dumps(event)) for offset, event in enumerate(events)],
        )

    def reset_history(self, instance_id: str) -> None:
        self._conn.execute("DELETE FROM history WHERE instance_id=?", (instance_id,))

    def delete_instance(self, instance_id: str) -> None:
        for table in ("instances", "history", "inbox", "activities", "timers"):
            self._conn.execute(f"DELETE FROM {table} WHERE instance_id=?", (instance_id,))  # noqa: S608

    # ---- messages -------------------------------------------------------------------------------------------------
    def add_inbox(self, instance_id: str, execution_id: str | None, event: Event) -> int:
        cursor = self._conn.execute(
            "INSERT INTO inbox (instance_id, execution_id, event) VALUES (?,?,?)",
            (instance_id, execution_id, _dumps(event)),
        )
        return int(cursor.lastrowid or 0)

    def delete_inbox(self, row_ids: Iterable[int]) -> None:
        self._conn.executemany("DELETE FROM inbox WHERE id=?", [(row_id,) for row_id in row_ids])

    def add_activity(
        self, instance_id: str, execution_id: str, task_id: int, name: str, input_json: str | None
    ) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO activities VALUES (?,?,?,?,?)",
            (instance_id, execution_id, task_id, name, input_json),
        )

    def delete_activity(self, instance_id: str, execution_id: str, task_id: int) -> None:
        self._conn.execute(
            "DELETE FROM activities WHERE instance_id=? AND execution_id=? AND task_id=?",
            (instance_id, execution_id, task_id),
        )

    def add_timer(self, instance_id: str, execution_id: str, timer_id: int, fire_at: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO timers VALUES (?,?,?,?)", (instance_id, execution_id, timer_id, fire_at)
        )

    def delete_timer(self, instance_id: str, execution_id: str, timer_id: int) -> None:
        self._conn.execute(
            "DELETE FROM timers WHERE instance_id=? AND execution_id=? AND timer_id=?",
            (instance_id, execution_id, timer_id),
        )

    def delete_execution_work(self, instance_id: str) -> None:
        """Forget activities and timers of an instance that finished or started a new execution."""
        self._conn.execute("DELETE FROM activities WHERE instance_id=?", (instance_id,))
        self._conn.execute("DELETE FROM timers WHERE instance_id=?", (instance_id,))

    # ---- entities -------------------------------------------------------------------------------------------------
    def add_entity_message(self, entity_id: str, message: dict[str, Any]) -> int:
        cursor = self._conn.execute(
            "INSERT INTO entity_queue (entity_id, message) VALUES (?,?)", (entity_id, _dumps(message))
        )
        return int(cursor.lastrowid or 0)

    def delete_entity_messages(self, row_ids: Iterable[int]) -> None:
        self._conn.executemany("DELETE FROM entity_queue WHERE id=?", [(row_id,) for row_id in row_ids])

    def save_entity(self, entity_id: str, state: str | None, present: bool) -> None:
        self._conn.execute("INSERT OR REPLACE INTO entities VALUES (?,?,?)", (entity_id, state, int(present)))

    # ---- restart --------------------------------------------------------------------------------------------------
    def load(self) -> Snapshot:
        conn = self._conn
        instances = [_instance_row(row) for row in conn.execute("SELECT * FROM instances ORDER BY created")]
        history: dict[str, list[Event]] = {}
        for instance_id, _, event in conn.execute("SELECT * FROM history ORDER BY instance_id, seq"):
            history.setdefault(instance_id, []).append(json.loads(event))
        inbox = [
            (row_id, instance_id, execution_id, json.loads(event))
            for row_id, instance_id, execution_id, event in conn.execute("SELECT * FROM inbox ORDER BY id")
        ]
        activities = [tuple(row) for row in conn.execute("SELECT * FROM activities")]
        timers = [tuple(row) for row in conn.execute("SELECT * FROM timers")]
        queue = [
            (row_id, entity_id, json.loads(message))
            for row_id, entity_id, message in conn.execute("SELECT * FROM entity_queue ORDER BY id")
        ]
        entities = {row[0]: (row[1], bool(row[2])) for row in conn.execute("SELECT * FROM entities")}
        return Snapshot(instances, history, inbox, activities, timers, queue, entities)  # type: ignore[arg-type]
