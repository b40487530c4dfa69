"""Starts and stops the Azurite storage emulator (npm, pinned in package.json) on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# The well-known, public Azurite development key (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Azurite:
    """A running Azurite process and the endpoints it serves."""

    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen[bytes]
    workdir: str

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def table_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.table_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    def stop(self) -> None:
        # Azurite keeps idle keep-alive sockets open for ~10 s on SIGTERM; it holds nothing on disk
        # (in-memory persistence), so a short grace period then SIGKILL loses nothing.
        self.process.terminate()
        try:
            self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _wait_for(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"Azurite did not open port {port}")


def start(timeout: float = 30.0) -> Azurite:
    """Start Azurite in memory on free ports; raises if it is not installed (run `make setup`)."""
    binary = ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: run `make setup` (npm ci) first")
    blob, queue, table = free_port(), free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="azurite-")
    cmd = [
        str(binary),
        "--silent",
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        "--disableProductStyleUrl",
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(blob),
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(queue),
        "--tableHost",
        "127.0.0.1",
        "--tablePort",
        str(table),
    ]
    log = open(os.path.join(workdir, "azurite.log"), "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=dict(os.environ))
    deadline = time.monotonic() + timeout
    try:
        for port in (blob, queue, table):
            _wait_for(port, deadline)
    except RuntimeError as exc:
        proc.kill()
        detail = Path(workdir, "azurite.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{exc}; azurite said: {detail}") from exc
    return Azurite(blob, queue, table, proc, workdir)
