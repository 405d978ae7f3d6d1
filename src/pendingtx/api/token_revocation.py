"""`POST /v2/oauthtoken/revoke`: RFC 7009 token revocation, beside SEI's `grant_type=invalidate_token`.

The client authenticates as at the token endpoint (and under the same lockout and secret-check
slots); it may revoke only its own tokens. As RFC 7009 says, the answer is 200 whether or not the
token was one (an unknown, foreign or already revoked token is left alone), so that the answer
reveals nothing about tokens.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from pendingtx.api.token_endpoint import NO_STORE, OAUTH_PATH, TokenEndpoint, read_form

REVOKE_PATH = OAUTH_PATH + "/revoke"
# token_type_hint is read and ignored: access tokens are the only kind there is (RFC 7009, 2.1).
REVOKE_FIELDS = frozenset({"token", "token_type_hint", "client_id", "client_secret"})


class RevocationEndpoint:
    """Revokes a token of the authenticated client."""

    def __init__(self, tokens: TokenEndpoint) -> None:
        self.tokens = tokens

    async def handle(self, request: Request) -> Response:
        """Answer one revocation request."""
        form = await read_form(request, REVOKE_FIELDS)
        app = await self.tokens.authenticate_request(request, form)
        await self.tokens.revoke(app, form.get("token", ""))
        return Response(status_code=200, headers=NO_STORE)
