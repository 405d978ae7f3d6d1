"""`POST /v2/oauthtoken`: client-credentials tokens and their revocation (RFC 6749 / 7009 shapes)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from pendingtx import errors
from pendingtx.api.client_address import client_address
from pendingtx.api.context import OAUTH_SCOPE_KEY
from pendingtx.api.dependencies import ApiServices
from pendingtx.api.requests import given_once, read_body, require_media_type
from pendingtx.api.responses import json_response
from pendingtx.domain.networks import Address
from pendingtx.services import credentials

OAUTH_PATH = "/v2/oauthtoken"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
# The form fields this endpoint reads.
FORM_FIELDS = frozenset({"grant_type", "client_id", "client_secret", "token"})
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _from_basic(header: str) -> tuple[str, str]:
    scheme, _, rest = header.strip().partition(" ")
    # SEI clients also send the bare base64 value without the "Basic " prefix.
    encoded = rest.strip() if scheme.lower() == "basic" else header.strip()
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.InvalidClient("Malformed Basic client credentials") from None
    key, sep, secret = decoded.partition(":")
    if not sep:
        raise errors.InvalidClient("Malformed Basic client credentials")
    # RFC 6749 2.3.1: both parts are form-urlencoded before being joined.
    return unquote(key), unquote(secret)


def client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    """The AppKey and AppSecret, from the Authorization header or the form."""
    if authorization:
        return _from_basic(authorization)
    if form.get("client_id") and form.get("client_secret"):
        return form["client_id"], form["client_secret"]
    raise errors.InvalidClient(
        "Client authentication required", headers={"WWW-Authenticate": 'Basic realm="pendingtx"'}
    )


async def read_form(request: Request, names: frozenset[str]) -> dict[str, str]:
    """The request's form, for an endpoint answering with RFC 6749's error members; 400 when one of
    `names` is given more than once (RFC 6749, 3.2), other fields ignored."""
    request.scope[OAUTH_SCOPE_KEY] = True
    require_media_type(request, FORM)
    body = await read_body(request, limit=MAX_FORM_BYTES)
    fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return given_once(fields, location="body", names=names)


class TokenEndpoint:
    """Mints and revokes tokens for authenticated applications."""

    def __init__(self, services: ApiServices) -> None:
        self.services = services
        self.calls = services.calls

    async def authenticate(self, key: str, secret: str, address: Address | None) -> credentials.Application:
        """The enabled application of these client credentials, checked under the lockout and in a
        secret-check slot (the dashboard's sign-in uses it too); InvalidClient otherwise."""
        # The attempt counts before its secret is checked: a locked-out AppKey or address gets 429
        # before the secret is even looked at, and a burst cannot check more secrets than the limit.
        failures = self.services.abuse.auth_failures
        attempt = await self.calls(failures.reserve, key, address)
        checks = self.services.abuse.secret_checks
        try:
            # Argon2 takes a few hundred milliseconds: off the event loop, in one of a few slots.
            app = await run_in_threadpool(
                credentials.authenticate_client,
                self.services.uow,
                checks,
                app_key=key,
                app_secret=secret,
                deadline=checks.deadline(),
            )
        except errors.InvalidClient:
            await self.calls(failures.finish, attempt, failed=True)
            raise
        except Exception:
            await self.calls(failures.finish, attempt, failed=False)  # never judged (no slot, the database)
            raise
        await self.calls(failures.finish, attempt, failed=False)
        return app

    async def authenticate_request(self, request: Request, form: dict[str, str]) -> credentials.Application:
        """The application whose client credentials the request carries (Basic header or form),
        checked under the lockout and in a secret-check slot."""
        key, secret = client_credentials(request.headers.get("authorization"), form)
        return await self.authenticate(
            key, secret, client_address(request.scope, self.services.trusted_proxies)
        )

    async def mint(self, app: credentials.Application) -> credentials.MintedToken:
        """A new access token for an authenticated application."""
        rt = self.services
        return await self.calls(credentials.mint_token, rt.uow, app, lifetimes=rt.lifetimes, clock=rt.clock)

    async def revoke(self, app: credentials.Application, token: str) -> None:
        """Revoke one of the application's own tokens; another's or an unknown one is left alone."""
        if not token:
            raise errors.ValidationFailed(
                "token is required", errors=[errors.ErrorDetail("token", "body", "is required")]
            )
        await self.calls(credentials.revoke_token, self.services.uow, app, token, clock=self.services.clock)

    async def handle(self, request: Request) -> Response:
        """Answer one token request."""
        form = await read_form(request, FORM_FIELDS)
        app = await self.authenticate_request(request, form)
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            minted = await self.mint(app)
            return json_response(
                {
                    "access_token": minted.access_token,
                    "token_type": "Bearer",
                    "expires_in": minted.expires_in,
                    "issued_at": str(int(minted.issued_at.timestamp() * 1000)),
                    "application_name": minted.application_name,
                    "status": "approved",
                },
                headers=NO_STORE,
            )
        if grant == "invalidate_token":
            await self.revoke(app, form.get("token", ""))
            return json_response({"status": "revoked"}, headers=NO_STORE)
        reason = "is required" if not grant else "must be client_credentials or invalidate_token"
        raise errors.UnsupportedGrantType(
            f"Unsupported grant_type {grant!r}" if grant else "grant_type is required",
            errors=[errors.ErrorDetail("grant_type", "body", reason)],
        )
