"""The dashboard's session: an access token minted at sign-in, carried in an HttpOnly cookie.

The token is an API client's like any other: every page is admitted by the same Authenticator as
a /v1 call (revocation, idle and absolute lifetimes, the allow-list, the request budget).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from pendingtx import errors
from pendingtx.api.client_address import client_address, over_https
from pendingtx.api.dependencies import ApiServices
from pendingtx.services.authentication import Caller, Credentials

UI_PATH = "/ui"
SESSION_COOKIE = "pendingtx_session"
# Longer values are no session of ours (an AppKey is 32 characters, a token 43).
MAX_COOKIE_LENGTH = 256


class SignedOut(Exception):
    """The request has no usable session: it is sent to the sign-in page."""


@dataclass(frozen=True, slots=True)
class Session:
    """What the cookie holds: the AppKey (not a secret) and the access token."""

    app_key: str
    token: str

    @classmethod
    def of(cls, request: Request) -> Session:
        """The request's session, or SignedOut when it carries none that could be one."""
        value = request.cookies.get(SESSION_COOKIE, "")
        app_key, sep, token = value.partition(":")
        if not sep or not app_key or not token or len(value) > MAX_COOKIE_LENGTH:
            raise SignedOut
        return cls(app_key, token)

    def cookie_value(self) -> str:
        """The cookie's value."""
        return f"{self.app_key}:{self.token}"


def set_cookie(response: Response, name: str, value: str, *, max_age: int, secure: bool) -> None:
    """Set one of the dashboard's cookies: HttpOnly, SameSite=Strict, only for /ui, Secure under https."""
    response.set_cookie(
        name, value, max_age=max_age, path=UI_PATH, secure=secure, httponly=True, samesite="strict"
    )


def clear_cookie(response: Response, name: str, *, secure: bool) -> None:
    """Remove one of the dashboard's cookies."""
    response.delete_cookie(name, path=UI_PATH, secure=secure, httponly=True, samesite="strict")


class Sessions:
    """Admits a dashboard request by its session cookie, as a /v1 request is admitted by its headers."""

    def __init__(self, services: ApiServices) -> None:
        self.services = services

    def secure(self, request: Request) -> bool:
        """Whether the client uses https (directly, or through a trusted proxy that terminates TLS):
        the cookies are then Secure."""
        return over_https(request.scope, self.services.trusted_proxies)

    async def caller(self, request: Request, session: Session | None = None) -> Caller:
        """The signed-in caller (charged to its application's request budget); SignedOut when the
        token is unknown, revoked or expired."""
        session = session or Session.of(request)
        services = self.services
        presented = Credentials(
            f"Bearer {session.token}",
            session.app_key,
            client_address(request.scope, services.trusted_proxies),
        )
        try:
            return await services.calls(
                services.authenticator.authenticate, presented, services.abuse.requests
            )
        except errors.AuthenticationFailed:
            raise SignedOut from None
