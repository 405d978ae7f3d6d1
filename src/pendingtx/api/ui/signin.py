"""Signing in to the dashboard with an AppKey and AppSecret, and signing out.

The credentials are checked exactly as the token endpoint checks them (the same lockout and
secret-check slots), and the session is a token minted the same way; signing out revokes it.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pendingtx import errors
from pendingtx.api.client_address import client_address
from pendingtx.api.dependencies import ApiServices
from pendingtx.api.requests import given_once, media_type, read_body
from pendingtx.api.token_endpoint import FORM, MAX_FORM_BYTES, TokenEndpoint
from pendingtx.api.ui import csrf
from pendingtx.api.ui.pages import JOBS_PATH
from pendingtx.api.ui.rendering import SIGNIN_PATH, render
from pendingtx.api.ui.session import SESSION_COOKIE, Session, Sessions, clear_cookie, set_cookie
from pendingtx.services import credentials

# How long a sign-in form may wait before it is posted.
SIGNIN_FORM_SECONDS = 3600
# One message for every wrong AppKey, AppSecret or disabled application: it names no part.
FAILED = "Sign-in failed: the AppKey and AppSecret do not match an application that may sign in."
MAX_FIELD_LENGTH = 256


async def read_form(request: Request) -> dict[str, str]:
    """A posted form's fields: none for another kind of body (so no CSRF token: 403), 413 past the
    token endpoint's bound, 400 for a field given twice."""
    if media_type(request) != FORM:
        return {}
    body = await read_body(request, limit=MAX_FORM_BYTES)
    return given_once(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True), location="body")


class SignIn:
    """GET and POST /ui/signin, POST /ui/signout."""

    def __init__(self, services: ApiServices) -> None:
        self.services = services
        self.calls = services.calls
        self.tokens = TokenEndpoint(services)
        self.sessions = Sessions(services)

    async def _key(self) -> bytes:
        return await self.calls(self.services.keys.dashboard_key)

    async def handle(self, request: Request) -> Response:
        """GET shows the form, POST signs in (one route, so that a 405 names both)."""
        if request.method == "POST":
            return await self.sign_in(request)
        return await self.form(request)

    async def form(self, request: Request, *, error: str = "", status: int = 200) -> Response:
        """The sign-in form, with a fresh nonce cookie that its CSRF token is derived from."""
        nonce = secrets.token_urlsafe(24)
        token = csrf.token_for(await self._key(), csrf.SIGNIN, nonce)
        response = render("signin.html", {"signed_in": False, "csrf": token, "error": error}, status)
        set_cookie(
            response,
            csrf.SIGNIN_COOKIE,
            nonce,
            max_age=SIGNIN_FORM_SECONDS,
            secure=self.sessions.secure(request),
        )
        return response

    async def sign_in(self, request: Request) -> Response:
        """Check the credentials; on success a session cookie and the jobs page, else the form again
        with one message that says nothing of which part was wrong, and no session."""
        form = await read_form(request)
        csrf.check(
            await self._key(), csrf.SIGNIN, request.cookies.get(csrf.SIGNIN_COOKIE), form.get(csrf.FIELD)
        )
        key, secret = form.get("appKey", "").strip(), form.get("appSecret", "").strip()
        if not key or not secret or len(key) > MAX_FIELD_LENGTH or len(secret) > MAX_FIELD_LENGTH:
            return await self.form(request, error=FAILED, status=401)
        address = client_address(request.scope, self.services.trusted_proxies)
        try:
            app = await self.tokens.authenticate(key, secret, address)
        except errors.InvalidClient:
            return await self.form(request, error=FAILED, status=401)
        except errors.RateLimited as exc:
            response = await self.form(request, error="Too many attempts: try again later.", status=429)
            response.headers.update({k: v for k, v in exc.headers.items() if k.lower() == "retry-after"})
            return response
        minted = await self.tokens.mint(app)
        response = RedirectResponse(JOBS_PATH, status_code=303)
        session = Session(app.app_key, minted.access_token)
        secure = self.sessions.secure(request)
        set_cookie(response, SESSION_COOKIE, session.cookie_value(), max_age=minted.expires_in, secure=secure)
        clear_cookie(response, csrf.SIGNIN_COOKIE, secure=secure)
        return response

    async def sign_out(self, request: Request) -> Response:
        """Revoke the session's token and forget the cookie (403 without the form's CSRF token)."""
        form = await read_form(request)
        session = Session.of(request)
        csrf.check(await self._key(), csrf.SESSION, session.token, form.get(csrf.FIELD))
        caller = await self.sessions.caller(request, session)
        await self.calls(
            credentials.revoke_app_token,
            self.services.uow,
            caller.app_id,
            session.token,
            clock=self.services.clock,
        )
        response = RedirectResponse(SIGNIN_PATH, status_code=303)
        clear_cookie(response, SESSION_COOKIE, secure=self.sessions.secure(request))
        return response
