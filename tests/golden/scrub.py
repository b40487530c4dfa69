"""Make a recorded history stable: fixed execution ids (and the entity request ids derived from them), fixed
loopback ports, and no machine paths. The virtual clock already makes every timestamp the same on each run.
"""

from __future__ import annotations

import sysconfig
import uuid
from pathlib import Path
from typing import Any

from devhost import history as h
from devhost.orchestration import entity_request_id

ROOT = Path(__file__).resolve().parents[2]
AZURITE_DEFAULT_PORTS = (10000, 10001, 10002)
"""Azurite's own defaults (blob, queue, table), shown instead of the free ports a recording ran on."""
ARM_SIMULATOR_PORT = 8443


def golden_execution_id(instance_id: str) -> str:
    """The execution id a golden history shows for `instance_id` (devhost draws a random one)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"golden:{instance_id}").hex


def execution_replacements(history: list[h.Event]) -> dict[str, str]:
    """Old to new text for the execution id and every entity request id derived from it."""
    started = next(e for e in history if e[h.EVENT_TYPE] == h.EventType.EXECUTION_STARTED)
    instance_id = started["OrchestrationInstance"]["InstanceId"]
    old, new = started["OrchestrationInstance"]["ExecutionId"], golden_execution_id(instance_id)
    replacements = {old: new}
    for event in history:
        if event[h.EVENT_TYPE] == h.EventType.EVENT_SENT:
            task_id = event[h.EVENT_ID]
            replacements[entity_request_id(instance_id, old, task_id)] = entity_request_id(instance_id, new, task_id)
    return replacements


def port_replacements(azurite_ports: tuple[int, int, int], arm_port: int) -> dict[str, str]:
    """Loopback endpoints of this run to the fixed ones a golden file shows."""
    pairs = [*zip(azurite_ports, AZURITE_DEFAULT_PORTS, strict=True), (arm_port, ARM_SIMULATOR_PORT)]
    return {f"{host}:{real}": f"{host}:{fixed}" for real, fixed in pairs for host in ("127.0.0.1", "localhost")}


def path_replacements(*extra: tuple[str, str]) -> dict[str, str]:
    """Installation and checkout paths (they show in activity tracebacks) to placeholders."""
    found: dict[str, str] = dict(extra)
    for key, label in (("purelib", "<site-packages>"), ("platlib", "<site-packages>"), ("stdlib", "<python>")):
        path = sysconfig.get_paths()[key]
        found[str(Path(path).resolve())] = label
        found[path] = label
    found[str(ROOT)] = "<repo>"
    return found


def scrub(value: Any, replacements: dict[str, str]) -> Any:
    """`value` (JSON data) with every replacement applied to every string in it, longest first."""
    ordered = sorted(replacements.items(), key=lambda pair: len(pair[0]), reverse=True)

    def text(s: str) -> str:
        for old, new in ordered:
            if old in s:
                s = s.replace(old, new)
        return s

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, list):
            return [walk(i) for i in item]
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        return item

    return walk(value)
