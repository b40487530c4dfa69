"""Shared pytest fixtures: the Azurite storage emulator for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost import azurite as azurite_mod


@pytest.fixture(scope="session")
def azurite() -> Iterator[azurite_mod.Azurite]:
    """A real Azurite on free loopback ports, torn down after the session."""
    running = azurite_mod.start()
    try:
        yield running
    finally:
        running.stop()
