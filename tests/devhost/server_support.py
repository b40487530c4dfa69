"""Shared helpers for the devhost server tests: the sample app indexed once, a server over the real engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import requests

from devhost import clock as clock_mod
from devhost.engine import DurableEngine
from devhost.functions import FunctionIndex, index_app
from devhost.server import DevHostServer
from devhost.triggers import FunctionSpec, specs_from_index
from tests.devhost.apps import server_sample_app

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
SAMPLE_APP_PATH = Path(server_sample_app.__file__).resolve()
TIMEOUT = 10


@cache
def sample_index() -> FunctionIndex:
    return index_app(server_sample_app.app, server_sample_app)


def sample_specs() -> list[FunctionSpec]:
    return specs_from_index(sample_index())


@contextmanager
def running_server(task_hub: str = "TestHub") -> Iterator[tuple[DevHostServer, clock_mod.VirtualClock]]:
    """The sample app on a free port over the real engine with a virtual clock; the process clock is restored."""
    previous = clock_mod.current()
    virtual = clock_mod.VirtualClock(START)
    engine = DurableEngine(sample_index(), clock=virtual, task_hub=task_hub)
    try:
        with DevHostServer(sample_specs(), engine, task_hub=task_hub) as server:
            yield server, virtual
    finally:
        clock_mod.install(previous)


def idle(server: DevHostServer) -> dict[str, Any]:
    """Wait through the devhost-only idle endpoint, as an out-of-process test would."""
    response = requests.post(f"{server.base_url}/admin/devhost/idle", params={"timeout": TIMEOUT}, timeout=TIMEOUT + 5)
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload
