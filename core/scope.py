"""What the app watches and scans: MONITORED_SUBSCRIPTIONS and SCAN_EXCLUDE applied to deployment targets (pure).

`monitored_subscriptions(settings)` is the one place that says which subscriptions are watched (the starter, the
inventory sweep); `exclusions_of(settings)` the parsed SCAN_EXCLUDE (`core.exclusions`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.exclusions import ExclusionRules, parse_exclusions
from core.resource_ids import clip

if TYPE_CHECKING:
    from core.events import DeploymentEvent
    from core.settings import Settings

logger = logging.getLogger(__name__)


def monitored_subscriptions(settings: Settings) -> tuple[str, ...]:
    """The subscriptions to watch (lower-case GUIDs): MONITORED_SUBSCRIPTIONS, else AZURE_SUBSCRIPTION_ID."""
    return settings.monitored_subscriptions or (str(settings.azure_subscription_id).lower(),)


@functools.cache
def _rules(entries: tuple[str, ...]) -> ExclusionRules:
    return parse_exclusions(entries)


def exclusions_of(settings: Settings) -> ExclusionRules:
    """The parsed SCAN_EXCLUDE (validated when the settings were loaded)."""
    return _rules(settings.scan_exclude)


@dataclass(slots=True)
class ScopedTargets:
    """Targets of a batch split by scope: the ones to scan, and how many were left out and why."""

    kept: list[DeploymentEvent] = field(default_factory=list)
    unmonitored: int = 0
    excluded: int = 0


def scoped_targets(
    targets: Iterable[DeploymentEvent], monitored: Iterable[str], rules: ExclusionRules, *, log: bool = True
) -> ScopedTargets:
    """Keep the targets in a monitored subscription that no `rg:`/`resource:` entry excludes; log each left out."""
    watched = {sub.lower() for sub in monitored}
    scoped = ScopedTargets()
    for target in targets:
        if target.subscription_id.lower() not in watched:
            scoped.unmonitored += 1
            if log:
                logger.info(
                    "skipped %s: subscription %s is not in MONITORED_SUBSCRIPTIONS",
                    clip(target.resource_id),
                    target.subscription_id,
                )
            continue
        reason = rules.reason(resource_id=target.resource_id)
        if reason is not None:
            scoped.excluded += 1
            if log:
                logger.info("skipped %s: %s", clip(target.resource_id), clip(reason))
            continue
        scoped.kept.append(target)
    return scoped
