"""The App Service managed identity endpoint the simulator serves (what DefaultAzureCredential uses in Functions)."""

from __future__ import annotations

import secrets
import time

from devhost.armsim.faults import SimResponse

MSI_PATH = "/msi/token"
MSI_API_VERSION = "2019-08-01"
TOKEN_LIFETIME_S = 24 * 3600  # compared by MSAL with real time, so issued in real time


def token_answer(
    query: dict[str, str], headers: dict[str, str], identity_header: str
) -> tuple[SimResponse, str | None]:
    """GET ?api-version=2019-08-01&resource=...; X-IDENTITY-HEADER must match. The answer and the token issued."""
    if headers.get("x-identity-header") != identity_header:
        return SimResponse(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER missing or wrong"}), None
    resource = query.get("resource")
    if query.get("api-version") != MSI_API_VERSION or not resource:
        message = "api-version 2019-08-01 and resource are required"
        return SimResponse(400, {"statusCode": 400, "message": message}), None
    token = "sim." + secrets.token_urlsafe(24)
    body = {
        "access_token": token,
        "expires_on": str(int(time.time()) + TOKEN_LIFETIME_S),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": query.get("client_id") or "00000000-0000-0000-0000-000000000000",
    }
    return SimResponse(200, body), token
