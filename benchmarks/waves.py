"""Generated waves of deployments for `make demo`: `python -m benchmarks.waves --deployments 200 --seed 1 --out PATH`.

Each deployment is one ACI container group with 1-3 images: its own application image, plus 0-2 popular base
images drawn (weighted) from a small shared pool, so popular images are asked for by many deployments at once.
Each image's scan takes a whole number of seconds drawn from 60-300. One Event Grid `ResourceWriteSuccess`
event per deployment. Arrivals: `burst` (every message at once, plain messages) or `spread` (`{"at_s": ...}`
envelopes, arrival times drawn uniformly over `--spread-s` and sorted). `--hang N` makes N application images hang
and `--fail N` makes N others exit with an error. Everything is drawn from `random.Random(seed)`: the same
arguments always write the same file.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

SUBSCRIPTION = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"  # the demo's subscription (devhost.demo_stack)
RESOURCE_GROUP = "wave-apps"
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.ContainerInstance/"
GROUP_ID += "containerGroups/"
POPULAR_IMAGES = (  # (reference, weight): a few very common bases, a tail of less common ones
    ("nginx:1.27", 12),
    ("redis:7.4", 9),
    ("busybox:1.36", 8),
    ("postgres:16", 6),
    ("python:3.12-slim", 6),
    ("node:22-alpine", 5),
    ("mcr.microsoft.com/dotnet/aspnet:8.0", 4),
    ("alpine:3.20", 4),
    ("envoyproxy/envoy:v1.31", 2),
    ("grafana/grafana:11.2", 2),
    ("memcached:1.6", 1),
    ("rabbitmq:3.13", 1),
)
MIN_SCAN_S = 60
MAX_SCAN_S = 300
MAX_DEPLOYMENTS = 10_000
EVENT_TIME = "2026-10-02T08:00:00Z"
Arrival = Literal["burst", "spread"]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _event(name: str, rng: random.Random) -> dict[str, Any]:
    """The Event Grid event of one successful container group write (the shape of scenarios/minimal.json)."""
    resource = GROUP_ID + name
    return {
        "id": _uuid(rng),
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": EVENT_TIME,
        "subject": resource,
        "data": {
            "operationName": "Microsoft.ContainerInstance/containerGroups/write",
            "status": "Succeeded",
            "correlationId": _uuid(rng),
            "resourceUri": resource,
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{SUBSCRIPTION}",
    }


def generate(
    deployments: int,
    seed: int,
    *,
    arrival: Arrival = "burst",
    spread_s: float = 600.0,
    hangs: int = 0,
    failures: int = 0,
    settings: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The scenario document of one wave (see the module docstring)."""
    if not 1 <= deployments <= MAX_DEPLOYMENTS:
        raise ValueError(f"deployments must be 1..{MAX_DEPLOYMENTS}")
    if hangs < 0 or failures < 0 or hangs + failures > deployments:
        raise ValueError("hangs and failures must be >= 0 and together at most the number of deployments")
    if spread_s < 0:
        raise ValueError("spread_s must be >= 0")
    rng = random.Random(seed)
    popular = [ref for ref, _ in POPULAR_IMAGES]
    weights = [weight for _, weight in POPULAR_IMAGES]
    resources: list[dict[str, Any]] = []
    scans: dict[str, dict[str, Any]] = {}
    for ref in popular:
        scans[ref] = {"result": "ok", "duration_s": rng.randint(MIN_SCAN_S, MAX_SCAN_S), "vulnerabilities": {"LOW": 1}}
    names = [f"app-{n:05d}" for n in range(deployments)]
    odd = rng.sample(range(deployments), hangs + failures)
    behaviour_of = {index: "hang" for index in odd[:hangs]} | {index: "error" for index in odd[hangs:]}
    for index, name in enumerate(names):
        own = f"acme.azurecr.io/wave/{name}:1.0.{seed}"
        extra = rng.choices([0, 1, 2], weights=[5, 4, 1])[0]
        bases: list[str] = []
        while len(bases) < extra:
            pick = rng.choices(popular, weights=weights)[0]
            if pick not in bases:
                bases.append(pick)
        result = behaviour_of.get(index, "ok")
        scans[own] = {"result": result, "duration_s": rng.randint(MIN_SCAN_S, MAX_SCAN_S)}
        if result == "error":
            scans[own]["exit_code"] = 9
        resources.append({"id": GROUP_ID + name, "images": [own, *bases]})
    events = [_event(name, rng) for name in names]
    if arrival == "spread":
        times = sorted(rng.randint(0, int(spread_s)) for _ in names)
        messages: list[Any] = [{"at_s": at, "body": event} for at, event in zip(times, events, strict=True)]
    else:
        messages = list(events)
    described = f"{arrival} over {spread_s:.0f} s" if arrival == "spread" else "burst (all at once)"
    return {
        "description": f"generated wave: {deployments} deployments, seed {seed}, {described}, "
        f"{hangs} hanging and {failures} failing application image(s)",
        "settings": dict(settings or {}),
        "resources": resources,
        "scans": scans,
        "messages": messages,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.waves", description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arrival", choices=("burst", "spread"), default="burst")
    parser.add_argument("--spread-s", type=float, default=600.0, help="arrivals spread over this many seconds")
    parser.add_argument("--hang", type=int, default=0, help="application images whose scan hangs")
    parser.add_argument("--fail", type=int, default=0, help="application images whose scanner exits with an error")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        document = generate(
            args.deployments,
            args.seed,
            arrival=args.arrival,
            spread_s=args.spread_s,
            hangs=args.hang,
            failures=args.fail,
        )
    except ValueError as error:
        print(f"waves: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    distinct = len({image for resource in document["resources"] for image in resource["images"]})
    print(f"{args.out}: {args.deployments} deployments, {distinct} distinct images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
