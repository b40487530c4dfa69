"""`python -m tests.heldout.demo_probe --scenario PATH --out DIR --probes PROBES.json`: the demo, plus API calls.

The demo answers only through its files (summary.json, inventory.json, ...). The held-out checks of the API (inventory
filters and pages, one workload, the exceptions document and its audit) need the app while it still runs, so this
runs `devhost.demo` unchanged and, at the moment the demo exports the inventory (every orchestration has finished,
the stack is still up), makes the requests of the probes file in order and writes their answers to `OUT/probes.json`
(and the exceptions audit rows to `OUT/audit.json`).

A probe is `{"name", "method", "path", "params"?, "json"?, "headers"?, "pages"?}`; `pages: true` follows
`continuationToken` and records every page. A string `"{{now+400d}}"` (d, h or s) anywhere in `json` becomes that
virtual time (ISO 8601), for expiries relative to the run's clock.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

from devhost import clock as clock_mod
from devhost import demo, demo_inventory

PROBES_FILE = "probes.json"
AUDIT_FILE = "audit.json"
MAX_PAGES = 100
_NOW = re.compile(r"^\{\{now([+-]\d+)([dhs])\}\}$")
_UNITS = {"d": "days", "h": "hours", "s": "seconds"}


def _expand(value: Any) -> Any:
    if isinstance(value, str) and (match := _NOW.match(value)):
        delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return (clock_mod.current().now() + delta).isoformat().replace("+00:00", "Z")
    if isinstance(value, list):
        return [_expand(item) for item in value]
    if isinstance(value, dict):
        return {key: _expand(item) for key, item in value.items()}
    return value


def _answer(response: requests.Response) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}


def run_probes(base_url: str, session: requests.Session, probes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for probe in probes:
        url = base_url + probe["path"]
        params = dict(probe.get("params") or {})
        kwargs: dict[str, Any] = {"headers": probe.get("headers") or {}, "timeout": 30}
        if "json" in probe:
            kwargs["json"] = _expand(probe["json"])
        if not probe.get("pages"):
            answers[probe["name"]] = _answer(session.request(probe["method"], url, params=params, **kwargs))
            continue
        pages = []
        for _ in range(MAX_PAGES):
            answer = _answer(session.request(probe["method"], url, params=params, **kwargs))
            pages.append(answer)
            token = answer["body"].get("continuationToken") if isinstance(answer["body"], dict) else None
            if answer["status"] != 200 or not token:
                break
            params["continuationToken"] = token
        answers[probe["name"]] = pages
    return answers


def _audit_rows() -> list[dict[str, Any]]:
    from activities.exceptions_store import ExceptionStore
    from core.settings import get_settings

    rows = ExceptionStore(get_settings()).audit.query_entities("PartitionKey eq 'audit'")
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()} for row in rows]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.heldout.demo_probe", description=__doc__)
    parser.add_argument("--scenario", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--probes", type=Path)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    probes = json.loads(args.probes.read_text()) if args.probes else []
    export = demo_inventory.export_inventory

    def export_and_probe(base_url: str, session: requests.Session, out: Path) -> int:
        count = export(base_url, session, out)
        (out / PROBES_FILE).write_text(json.dumps(run_probes(base_url, session, probes), indent=1) + "\n")
        (out / AUDIT_FILE).write_text(json.dumps(_audit_rows(), indent=1) + "\n")
        return count

    vars(demo)["export_inventory"] = export_and_probe  # what devhost.demo._report calls, with the stack up
    return demo.run_demo(args.scenario, args.out, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
