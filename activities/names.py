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
# ARM (activities/arm_resources.py, activities/aci_scanner.py)
RESOLVE_IMAGES = "resolve_images"
CREATE_SCANNER_GROUP = "create_scanner_group"
GET_SCANNER_STATE = "get_scanner_state"
GET_SCANNER_LOGS = "get_scanner_logs"
DELETE_SCANNER_GROUP = "delete_scanner_group"
LIST_SCANNER_GROUPS = "list_scanner_groups"
# Inventory sweep (activities/sweep_activities.py)
SWEEP_BEGIN = "sweep_begin"
SWEEP_PAGE = "sweep_page"
SWEEP_FINISH = "sweep_finish"
SWEEP_RECORD = "sweep_record"
APPLY_INVENTORY_EVENTS = "apply_inventory_events"
# Rescans of deployed images (activities/rescan_activities.py)
RESCAN_SELECT = "rescan_select"
START_RESCANS = "start_rescans"

ACI_QUOTA_ERROR_MARKER = "aci-quota-reached"
"""Starts the message of a create that ACI refused for quota (code ContainerGroupQuotaReached, status 400 or 409):
the orchestration waits and retries on it."""
NON_RETRYABLE_ERROR_KEY = "non_retryable_error"
"""The only key of an ARM activity's answer when its request failed in a way that retrying cannot fix (401/403,
404 that is not an answer, 400 that is not quota): {"status", "code", "message"} (activities.clients.failing_fast)."""
# Durable client (activities/orchestration_client.py)
WAKE_ORCHESTRATIONS = "wake_orchestrations"
