"""Fixtures for the devhost engine tests: load a sample app and run a DurableEngine on a virtual clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devhost.clock import RealClock, VirtualClock, install
from devhost.engine import DurableEngine
from devhost.functions import FunctionIndex, load_app

APPS = Path(__file__).parent / "apps"


def app_path(name: str) -> str:
    return str(APPS / f"{name}.py")


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., DurableEngine]]:
    """Build engines over a sample app (virtual clock, store in tmp_path); all are closed at the end."""
    engines: list[DurableEngine] = []

    def build(app: str, *, clock: object | None = None, store: str | None = None) -> DurableEngine:
        index: FunctionIndex = load_app(app_path(app))
        engine = DurableEngine(
            index,
            store_path=store or str(tmp_path / "devhost.sqlite"),
            clock=clock if clock is not None else VirtualClock(),  # type: ignore[arg-type]
        )
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.close()
    install(RealClock())
