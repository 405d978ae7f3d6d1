"""The OAuth side of the document: the security schemes, the token and revocation endpoints, and
the authorization server's metadata."""

from __future__ import annotations

from typing import Any

from pendingtx.api.oauth_metadata import METADATA_PATH
from pendingtx.api.openapi.errors import errors_of, token_errors
from pendingtx.api.openapi.operations import REQUEST_TRACKING_ID
from pendingtx.api.openapi.shapes import FORM, TRACKING, json_answer, ref
from pendingtx.api.token_endpoint import OAUTH_PATH
from pendingtx.api.token_revocation import REVOKE_PATH

SECURITY_SCHEMES = {
    # Swagger UI's "Authorize" mints a token with these (client id: the AppKey; secret: the AppSecret).
    "oauth2": {
        "type": "oauth2",
        "description": "client credentials: the AppKey and AppSecret",
        "flows": {"clientCredentials": {"tokenUrl": OAUTH_PATH, "scopes": {}}},
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": f"an access_token from {OAUTH_PATH}"},
    "appKey": {"type": "apiKey", "in": "header", "name": "AppKey"},
    "basic": {"type": "http", "scheme": "basic", "description": "AppKey:AppSecret"},
}
# Client authentication: HTTP Basic, or the client_id/client_secret form fields.
_CLIENT_SECURITY: list[dict[str, list[str]]] = [{"basic": []}, {}]
_CLIENT_FIELDS = {
    "client_id": {"type": "string", "description": "the AppKey, when there is no Authorization header"},
    "client_secret": {"type": "string", "description": "the AppSecret, with client_id"},
}
_NO_STORE = {
    "Cache-Control": {"required": True, "schema": {"type": "string", "enum": ["no-store"]}},
    "Pragma": {"schema": {"type": "string", "enum": ["no-cache"]}},
}
_ONCE = "Each field at most once; others are ignored."

TOKEN: dict[str, Any] = {
    "operationId": "token",
    "summary": "Mint or revoke an access token",
    "description": "Client authentication with HTTP Basic (AppKey:AppSecret, with or without the "
    "`Basic ` prefix) or the client_id/client_secret form fields. `grant_type=client_credentials` "
    "mints; `grant_type=invalidate_token&token=...` revokes one of the caller's own tokens. Repeated "
    "failed authentications of an AppKey or an address are answered 429 for a while. Every error "
    "answer carries RFC 6749's `error` and `error_description`.",
    "security": _CLIENT_SECURITY,
    "parameters": [REQUEST_TRACKING_ID],
    "requestBody": {
        "required": True,
        "content": {
            FORM: {
                "schema": {
                    "type": "object",
                    "description": f"{_ONCE} `token` is required with `invalidate_token`.",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials", "invalidate_token"]},
                        "token": {"type": "string", "description": "the access token to revoke"},
                        **_CLIENT_FIELDS,
                    },
                    "if": {"properties": {"grant_type": {"enum": ["invalidate_token"]}}},
                    "then": {"required": ["token"], "properties": {"token": {"minLength": 1}}},
                }
            }
        },
    },
    "responses": {
        "200": json_answer(
            {"oneOf": [ref("Token"), ref("Revoked")]},
            "A new token (or the confirmation of a revocation).",
            **_NO_STORE,
        ),
        **token_errors(),
    },
}

REVOKE: dict[str, Any] = {
    "operationId": "revokeToken",
    "summary": "Revoke an access token (RFC 7009)",
    "description": "Client authentication as on the token endpoint (and under the same lockout). "
    "The answer is 200 whether or not the token was one of the caller's: another application's or an "
    "unknown token is left alone. `token_type_hint` is accepted and ignored (access tokens are the "
    "only kind).",
    "security": _CLIENT_SECURITY,
    "parameters": [REQUEST_TRACKING_ID],
    "requestBody": {
        "required": True,
        "content": {
            FORM: {
                "schema": {
                    "type": "object",
                    "description": _ONCE,
                    "required": ["token"],
                    "properties": {
                        "token": {
                            "type": "string",
                            "minLength": 1,
                            "description": "the access token to revoke",
                        },
                        "token_type_hint": {"type": "string"},
                        **_CLIENT_FIELDS,
                    },
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "Revoked, or not a token of the caller's; no body.",
            "headers": {**TRACKING, **_NO_STORE},
        },
        **token_errors(),
    },
}

METADATA: dict[str, Any] = {
    "operationId": "authorizationServerMetadata",
    "summary": "OAuth 2.0 authorization server metadata (RFC 8414)",
    "description": "Names the token and revocation endpoints under the URL the request was sent to.",
    "parameters": [REQUEST_TRACKING_ID],
    "responses": {
        "200": json_answer(ref("AuthorizationServerMetadata"), "The metadata."),
        **errors_of(400, 414, 500),
    },
}

PATHS = {OAUTH_PATH: {"post": TOKEN}, REVOKE_PATH: {"post": REVOKE}, METADATA_PATH: {"get": METADATA}}
