"""`python -m devhost.armsim --scenario FILE`: serve the ARM simulator (real clock) until interrupted.

Prints one JSON line with the environment the app needs (`env`) and the admin base URL (`admin`: GET
/_sim/stats, GET|POST|DELETE /_sim/faults), so that another process can point an app at it and drive it.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading

from devhost.armsim.scenario import load_scenario
from devhost.armsim.server import ArmSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.armsim", description=__doc__)
    parser.add_argument("--scenario", required=True, help="scenario JSON file (see docs/demo.md)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ArmSimulator(load_scenario(args.scenario)) as sim:
        print(json.dumps({"env": sim.env(), "admin": sim.admin_url}), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
