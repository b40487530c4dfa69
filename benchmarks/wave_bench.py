"""Scan-queue benchmark (issue 10): generated waves through `make demo` at default settings.

    .venv/bin/python -m benchmarks.wave_bench                      # 200 and 1,000 deployments, seed 1, burst
    .venv/bin/python -m benchmarks.wave_bench --deployments 200 --arrival spread --spread-s 900

For each size: writes the wave (benchmarks.waves), runs `python -m devhost.demo` on it in a fresh process, and prints
the image outcomes, the `scheduling` block of summary.json and the wall time. Not part of `make test` (minutes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.waves import Arrival, generate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (200, 1000)
SAFETY_LIMIT_S = 3600.0


def run_wave(
    deployments: int, seed: int, arrival: Arrival, spread_s: float, *, workdir: Path, limit_s: float
) -> dict[str, Any]:
    """One wave through the demo; the figures as a dict (`error` set when the demo did not finish)."""
    scenario = workdir / f"wave-{deployments}-{seed}-{arrival}.json"
    scenario.write_text(json.dumps(generate(deployments, seed, arrival=arrival, spread_s=spread_s)), encoding="utf-8")
    out = workdir / f"out-{deployments}-{seed}-{arrival}"
    command = [sys.executable, "-m", "devhost.demo", "--scenario", str(scenario), "--out", str(out)]
    started = time.monotonic()
    completed = subprocess.run(
        [*command, "--timeout", str(limit_s)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    wall_s = time.monotonic() - started
    figures: dict[str, Any] = {"deployments": deployments, "seed": seed, "arrival": arrival, "wall_s": round(wall_s, 1)}
    summary_path = out / "summary.json"
    if completed.returncode != 0 or not summary_path.exists():
        figures["error"] = f"demo exit {completed.returncode}: {completed.stderr[-500:]}"
        return figures
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    figures["distinct_images"] = len(summary["images"])
    figures["statuses"] = dict(sorted(Counter(entry["status"] for entry in summary["images"]).items()))
    figures["orchestrations"] = summary["orchestrations"]
    figures["scanner_groups"] = summary["scanner_groups"]
    figures["scheduling"] = summary["scheduling"]
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wave_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, action="append", help="wave size (repeatable; default 200, 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arrival", choices=("burst", "spread"), default="burst")
    parser.add_argument("--spread-s", type=float, default=600.0)
    parser.add_argument("--timeout", type=float, default=SAFETY_LIMIT_S, help="wall-clock limit per run, seconds")
    parser.add_argument("--workdir", type=Path, default=None, help="keep scenarios and outputs here")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wave-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    failed = False
    for size in args.deployments or DEFAULT_SIZES:
        figures = run_wave(size, args.seed, args.arrival, args.spread_s, workdir=workdir, limit_s=args.timeout)
        print(json.dumps(figures, indent=1), flush=True)
        failed = failed or "error" in figures
    print(f"outputs: {workdir}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
