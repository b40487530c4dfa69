"""Running a held-out scenario through the demo (with API probes, tests/heldout/demo_probe.py) and reading its files."""

from __future__ import annotations

import email
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).parent / "scenarios"
SAFETY_LIMIT_S = 150
OWN = "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a"
LISTED = "5c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
UNLISTED = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"


@dataclass
class Run:
    out: Path
    returncode: int
    stdout: str
    stderr: str

    def json(self, name: str) -> Any:
        return json.loads((self.out / name).read_text())

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.json("summary.json"))

    @property
    def inventory(self) -> dict[str, dict[str, Any]]:
        """inventory.json's workloads by name."""
        return {item["name"]: item for item in self.json("inventory.json")["items"]}

    @property
    def probes(self) -> dict[str, Any]:
        return dict(self.json("probes.json"))

    @property
    def log(self) -> str:
        return (self.out / "demo.log").read_text()

    def mails(self) -> list[tuple[str, str]]:
        found = []
        for path in sorted((self.out / "mail").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes())
            part = message.get_payload(0) if message.is_multipart() else message
            found.append((str(message["Subject"]), part.get_payload(decode=True).decode()))  # type: ignore[union-attr]
        return found

    def posts(self, channel: str) -> list[dict[str, Any]]:
        """What the webhook (`webhooks`), Teams (`teams`) or Slack (`slack`) receiver accepted, in order."""
        return [json.loads(path.read_text()) for path in sorted((self.out / channel).glob("*.json"))]


def run_scenario(name: str | Path, out: Path, probes: list[dict[str, Any]] | None = None) -> Run:
    """The scenario tests/heldout/scenarios/<name>.json (or a path) through the demo, probes made at its end."""
    path = name if isinstance(name, Path) else SCENARIOS / f"{name}.json"
    name = path.stem
    command = [sys.executable, "-m", "tests.heldout.demo_probe", "--scenario", str(path)]
    command += ["--out", str(out), "--timeout", str(SAFETY_LIMIT_S - 20)]
    if probes is not None:
        probes_file = out.parent / f"{name}.probes.json"
        probes_file.write_text(json.dumps(probes))
        command += ["--probes", str(probes_file)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=SAFETY_LIMIT_S, check=False)
    return Run(out, done.returncode, done.stdout, done.stderr)


def run_settings(settings: dict[str, str], out: Path) -> Run:
    """A one-message scenario with these settings (for start-up errors)."""
    scenario = out.parent / "settings-scenario.json"
    scenario.write_text(json.dumps({"settings": settings, "messages": []}))
    command = [sys.executable, "-m", "devhost.demo", "--scenario", str(scenario), "--out", str(out)]
    done = subprocess.run(
        [*command, "--timeout", "60"], cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )
    return Run(out, done.returncode, done.stdout, done.stderr)


def resource_id(subscription: str, group: str, provider: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{provider}/{name}"
