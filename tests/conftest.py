"""Shared pytest setup: the hypothesis profile every test runs with, and the Azurite emulator for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from devhost import azurite as azurite_mod

HYPOTHESIS_PROFILE = "ci"
"""Every test runs with it (`make test`, CI, a plain pytest): no deadline and no too-slow health check, since a slow
example on a loaded machine (two cores, several suites at once) is not a failure, a wrong answer is; derandomized
(the same examples every run: same code, same outcome) and no example database. It replaces hypothesis' own `ci`
profile, which says the same but is only loaded when a CI variable is set. `HYPOTHESIS_PROFILE=default` runs with
hypothesis' defaults (random examples, 200 ms deadline) to explore locally."""

settings.register_profile(
    HYPOTHESIS_PROFILE,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", HYPOTHESIS_PROFILE))


@pytest.fixture(scope="session")
def azurite() -> Iterator[azurite_mod.Azurite]:
    """A real Azurite on free loopback ports, torn down after the session."""
    running = azurite_mod.start()
    try:
        yield running
    finally:
        running.stop()
