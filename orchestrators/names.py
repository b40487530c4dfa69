"""Orchestrator function names: starters start orchestrations by these, the blueprints register them under these."""

ORCHESTRATOR_SCAN_DEPLOYMENT = "scan_deployment"
ORCHESTRATOR_INVENTORY_SWEEP = "inventory_sweep"
ORCHESTRATOR_INVENTORY_EVENTS = "inventory_events"
