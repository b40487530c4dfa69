"""The durable client binding string and management URLs, shaped as the Durable extension builds them."""

from __future__ import annotations

import json
from urllib.parse import quote

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
# The extension serves the out-of-process SDK on a separate loopback listener at `/durabletask/`;
# devhost serves the same handler under this path on its one port.
RPC_PATH = "/durabletask/"
INSTANCE_ID_PLACEHOLDER = "INSTANCEID"
DEFAULT_CONNECTION_NAME = "Storage"
TASK_HUB_PARAM = "taskHub"
CONNECTION_PARAM = "connection"


def webhook_base_url(origin: str) -> str:
    """`http://host:port/runtime/webhooks/durabletask` for a server origin such as `http://127.0.0.1:7071`."""
    return origin.rstrip("/") + WEBHOOK_PATH


def rpc_base_url(origin: str) -> str:
    """The `rpcBaseUrl` the SDK appends `orchestrators/...`, `instances/...` and `entities/...` to."""
    return origin.rstrip("/") + RPC_PATH


def creation_urls(origin: str, required_query: str = "") -> dict[str, str]:
    """`creationUrls` of the binding: templates with `{functionName}[/{instanceId}]`."""
    prefix = webhook_base_url(origin) + "/orchestrators/{functionName}[/{instanceId}]"
    return {
        "createNewInstancePostUri": f"{prefix}?{required_query}",
        "createAndWaitOnNewInstancePostUri": (
            f"{prefix}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{required_query}"
        ),
    }


def management_urls(
    origin: str,
    instance_id: str,
    task_hub: str,
    connection: str = DEFAULT_CONNECTION_NAME,
    required_query: str = "",
) -> dict[str, str]:
    """The check-status payload (`id`, `statusQueryGetUri`, ...) for one instance, as the extension builds it."""
    instance = webhook_base_url(origin) + "/instances/" + quote(instance_id, safe="")
    suffix = f"{TASK_HUB_PARAM}={quote(task_hub, safe='')}&{CONNECTION_PARAM}={quote(connection, safe='')}"
    if required_query:
        suffix += "&" + required_query
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{instance}?{suffix}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{suffix}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{suffix}",
        "rewindPostUri": f"{instance}/rewind?reason={{text}}&{suffix}",
        "purgeHistoryDeleteUri": f"{instance}?{suffix}",
        "restartPostUri": f"{instance}/restart?{suffix}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{suffix}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{suffix}",
    }


def check_status_payload(origin: str, instance_id: str, task_hub: str) -> dict[str, str]:
    """The body of the 202 response to a start request (the management URLs without `rewindPostUri`)."""
    payload = management_urls(origin, instance_id, task_hub)
    del payload["rewindPostUri"]
    return payload


def client_binding(origin: str, task_hub: str, connection_name: str | None = None) -> str:
    """The JSON string the host passes to a `durableClient` input binding (Durable extension 2.x, HTTP RPC).

    The SDK's `DurableOrchestrationClient` reads `taskHubName`, `creationUrls`, `managementUrls` (with the
    `INSTANCEID` placeholder) and `rpcBaseUrl`; the other fields are kept for fidelity. devhost enforces no
    keys, so `requiredQueryStringParameters` is empty (the real host puts `code=<system key>` there).
    """
    payload = {
        "taskHubName": task_hub,
        "connectionName": connection_name,
        "creationUrls": creation_urls(origin),
        "managementUrls": management_urls(
            origin, INSTANCE_ID_PLACEHOLDER, task_hub, connection_name or DEFAULT_CONNECTION_NAME
        ),
        "baseUrl": webhook_base_url(origin),
        "requiredQueryStringParameters": "",
        "rpcBaseUrl": rpc_base_url(origin),
    }
    return json.dumps(payload)
