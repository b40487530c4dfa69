"""Orchestrator function names: starters start orchestrations by these, the blueprints register them under these."""

ORCHESTRATOR_SCAN_DEPLOYMENT = "scan_deployment"
ORCHESTRATOR_INVENTORY_SWEEP = "inventory_sweep"
ORCHESTRATOR_INVENTORY_EVENTS = "inventory_events"
ORCHESTRATOR_INVENTORY_RESCAN = "inventory_rescan"
ORCHESTRATOR_SCAN_DEPLOYMENT_V2 = "scan_deployment_v2"
"""Orchestration `scan_deployment_v2`: the same scan through the app's scan queue (`scan_batch` runs the groups).
Starters start only this one; `scan_deployment` stays registered until its instances have drained."""
