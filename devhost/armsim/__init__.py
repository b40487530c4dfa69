"""ARM simulator for dev and tests: container groups, container apps and jobs as the real SDK clients see them."""

from devhost.armsim.scenario import ScanBehaviour, Scenario, load_scenario
from devhost.armsim.server import ArmSimulator

__all__ = ["ArmSimulator", "ScanBehaviour", "Scenario", "load_scenario"]
