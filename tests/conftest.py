"""Shared pytest setup: the hypothesis profile every test runs with, and the Azurite emulator for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from devhost import azurite as azurite_mod

HYPOTHESIS_PROFILE = "ci"
"""No deadline: a slow example on a loaded machine (two cores, several suites at once) is not a failure; a wrong
answer is. `HYPOTHESIS_PROFILE=default` runs with hypothesis' own settings (200 ms deadline) for a local check."""

settings.register_profile(HYPOTHESIS_PROFILE, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", HYPOTHESIS_PROFILE))


@pytest.fixture(scope="session")
def azurite() -> Iterator[azurite_mod.Azurite]:
    """A real Azurite on free loopback ports, torn down after the session."""
    running = azurite_mod.start()
    try:
        yield running
    finally:
        running.stop()
