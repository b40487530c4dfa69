"""Command line: `python -m devhost run ...` runs one orchestration to its end; `serve` hosts the app over HTTP."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence

from devhost.clock import Clock, RealClock, VirtualClock
from devhost.errors import EngineError
from devhost.functions import AppLoadError, load_app
from devhost.orchestration import ACTIVE_STATUSES, COMPLETED

CLOCK_REAL = "real"
CLOCK_VIRTUAL = "virtual"
EXIT_OK = 0
EXIT_NOT_COMPLETED = 1
EXIT_USAGE = 2
DEFAULT_TIMEOUT_SECONDS = 3600.0
APP_HELP = "module (function_app), file (path/to/function_app.py) or app folder (holding function_app.py)"
STATUS_FIELDS = (
    "name",
    "instanceId",
    "runtimeStatus",
    "input",
    "customStatus",
    "output",
    "createdTime",
    "lastUpdatedTime",
)


def make_clock(mode: str) -> Clock:
    """The clock for `--clock real|virtual`."""
    return VirtualClock() if mode == CLOCK_VIRTUAL else RealClock()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devhost", description="Local Durable Functions host.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one orchestration to completion and print its status")
    run.add_argument("--app", required=True, help=APP_HELP)
    run.add_argument("--orchestrator", required=True, help="orchestrator function name")
    run.add_argument("--input", help="orchestration input, as JSON")
    run.add_argument("--instance-id", help="instance id (an in-flight instance with this id is resumed)")
    run.add_argument("--clock", choices=(CLOCK_REAL, CLOCK_VIRTUAL), default=CLOCK_VIRTUAL)
    run.add_argument("--store", help="SQLite file for durable state (default: a temporary file)")
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds to wait at most")
    serve = commands.add_parser("serve", help="serve the app's HTTP triggers and the durable HTTP API")
    serve.add_argument("--app", required=True, help=APP_HELP)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    serve.add_argument("--clock", choices=(CLOCK_REAL, CLOCK_VIRTUAL), default=CLOCK_REAL)
    serve.add_argument("--store", help="SQLite file for durable state (default: a temporary file)")
    serve.add_argument(
        "--event-grace",
        type=float,
        default=None,
        help="virtual clock: wall seconds to wait for an awaited external event before jumping to a timer (default 5)",
    )
    return parser


def _usage_error(exc: Exception) -> int:
    """Report a bad app or argument on stderr (with the app's own traceback when its import failed)."""
    if isinstance(exc, AppLoadError) and exc.__cause__ is not None:
        traceback.print_exception(exc.__cause__, file=sys.stderr)
    print(f"devhost: {exc}", file=sys.stderr)
    return EXIT_USAGE


def run_command(args: argparse.Namespace) -> int:
    """Start (or resume) the orchestration, drive it to a terminal state, print the status JSON."""
    from devhost.engine import DurableEngine

    try:
        index = load_app(args.app)
        input_value = None if args.input is None else json.loads(args.input)
    except (AppLoadError, ValueError) as exc:
        return _usage_error(exc)
    with DurableEngine(index, store_path=args.store, clock=make_clock(args.clock)) as engine:
        try:
            existing = engine.get_status(args.instance_id) if args.instance_id else None
            if existing is not None and existing["runtimeStatus"] in ACTIVE_STATUSES:
                instance_id = args.instance_id
            else:
                instance_id = engine.start_new(args.orchestrator, args.instance_id, input_value)
            status = engine.wait_for_completion(instance_id, timeout=args.timeout)
        except EngineError as exc:
            print(f"devhost: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except TimeoutError as exc:
            print(f"devhost: {exc}", file=sys.stderr)
            status = engine.get_status(instance_id) or {}
    print(json.dumps({field: status.get(field) for field in STATUS_FIELDS}, indent=2))
    return EXIT_OK if status.get("runtimeStatus") == COMPLETED else EXIT_NOT_COMPLETED


def serve_command(args: argparse.Namespace) -> int:
    """Hand over to the HTTP server (devhost.server.serve)."""
    try:
        from devhost.server import serve
    except ImportError as exc:
        print(f"devhost: the HTTP server is not available: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        grace = {} if args.event_grace is None else {"event_grace": args.event_grace}
        serve(args.app, args.host, args.port, args.clock, args.store, **grace)
    except AppLoadError as exc:
        return _usage_error(exc)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return run_command(args)
    return serve_command(args)


if __name__ == "__main__":
    sys.exit(main())
