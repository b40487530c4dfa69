"""The scenario model the ARM simulator runs: deployed resources, per-image scan behaviour and Event Hub messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ScanResult = Literal["ok", "deny", "audit", "error", "hang"]
DEFAULT_SCAN_KEY = "default"
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


class ScanBehaviour(BaseModel):
    """How the fake scanner treats one image: ok/deny/audit write a report; error exits `exit_code`; hang never ends."""

    model_config = ConfigDict(extra="forbid")

    result: ScanResult = "ok"
    duration_s: float = Field(default=150.0, ge=0)
    exit_code: int = Field(default=1, description="exit code of an `error` scan")
    vulnerabilities: dict[str, int] = Field(default_factory=dict)
    digest: str | None = Field(default=None, description="image digest to report; a fake one derived from the ref")


class DeployedResource(BaseModel):
    """A container group, container app or job that exists in the simulated subscription."""

    model_config = ConfigDict(extra="forbid")

    id: str
    images: list[str] = Field(default_factory=list)
    init_images: list[str] = Field(default_factory=list)


class SimSettings(BaseModel):
    """Simulator knobs (virtual seconds); read from the scenario's `settings` under the `ARMSIM_` prefix."""

    model_config = ConfigDict(extra="ignore")

    provisioning_delay_s: float = Field(default=20.0, ge=0)
    log_lines_per_image: int = Field(default=4, ge=0)
    max_container_groups: int = Field(default=100, ge=0)


class Scenario(BaseModel):
    """A whole scenario file; `settings` holds app settings (strings) and optional `ARMSIM_*` simulator knobs."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, str] = Field(default_factory=dict)
    resources: list[DeployedResource] = Field(default_factory=list)
    scans: dict[str, ScanBehaviour] = Field(default_factory=dict)
    messages: list[Any] = Field(default_factory=list)

    def sim_settings(self) -> SimSettings:
        """The `ARMSIM_*` entries of `settings`, lower-cased without the prefix, as simulator knobs."""
        prefix = "ARMSIM_"
        picked = {k[len(prefix) :].lower(): v for k, v in self.settings.items() if k.upper().startswith(prefix)}
        return SimSettings.model_validate(picked)

    def app_settings(self) -> dict[str, str]:
        """The settings meant for the app (everything but the simulator knobs)."""
        return {k: v for k, v in self.settings.items() if not k.upper().startswith("ARMSIM_")}


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario JSON file."""
    return Scenario.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
