"""Names of the durable entities and their operations, shared by the entities and the orchestrations."""

IMAGE_LEASE_ENTITY = "image_lease"
ACI_QUOTA_ENTITY = "aci_quota"

ACQUIRE_OPERATION = "acquire"
RELEASE_OPERATION = "release"
GET_OPERATION = "get"
