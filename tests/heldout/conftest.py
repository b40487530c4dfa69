"""The scan.sh harness fixtures of tests/scanner, reused by the held-out checks."""

from tests.scanner.conftest import download_server, harness

__all__ = ["download_server", "harness"]
