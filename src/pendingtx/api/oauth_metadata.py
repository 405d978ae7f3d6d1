"""`GET /.well-known/oauth-authorization-server`: RFC 8414 metadata, for OAuth clients to discover
the token and revocation endpoints and how to authenticate to them."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pendingtx.api.responses import json_response
from pendingtx.api.token_endpoint import OAUTH_PATH
from pendingtx.api.token_revocation import REVOKE_PATH

METADATA_PATH = "/.well-known/oauth-authorization-server"
# Basic credentials in the Authorization header, or client_id/client_secret form fields.
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    """The metadata of the server whose root URL is `issuer`."""
    return {
        "issuer": issuer,
        "token_endpoint": issuer + OAUTH_PATH,
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "grant_types_supported": ["client_credentials"],
        # No authorization endpoint: client credentials is the only grant, so no response type.
        "response_types_supported": [],
        "revocation_endpoint": issuer + REVOKE_PATH,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
    }


async def metadata_endpoint(request: Request) -> Response:
    """The metadata, naming the endpoints under the URL the request was sent to."""
    issuer = str(request.base_url).rstrip("/")
    return json_response(authorization_server_metadata(issuer))
