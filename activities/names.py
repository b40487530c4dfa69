"""Activity function names: the orchestrator calls activities by these, the blueprints register them under these."""

# Results (activities/results_store.py)
LOOKUP_CACHE = "lookup_cache"
COLLECT_RESULTS = "collect_results"
STORE_RESULTS = "store_results"
READ_LATEST_RESULTS = "read_latest_results"
# Registry (activities/registry.py)
RESOLVE_DIGESTS = "resolve_digests"
# Notifications (activities/notifications.py)
SEND_NOTIFICATIONS = "send_notifications"
