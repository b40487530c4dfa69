"""Names of the durable entities and their operations, shared by the entities and the orchestrations."""

IMAGE_LEASE_ENTITY = "image_lease"
ACI_QUOTA_ENTITY = "aci_quota"

ACQUIRE_OPERATION = "acquire"
RELEASE_OPERATION = "release"
GET_OPERATION = "get"
SCAN_QUEUE_ENTITY = "scan_queue"

ENQUEUE_OPERATION = "enqueue"
FINISH_IMAGE_OPERATION = "finish_image"
QUEUE_RELEASE_OPERATION = "release"
TICK_OPERATION = "tick"
STATUS_OPERATION = "status"
WITHDRAW_OPERATION = "withdraw"
