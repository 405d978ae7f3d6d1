"""CSRF tokens of the dashboard's forms: derived with a server key from what the browser holds in an
HttpOnly cookie (the session's token, or before sign-in a random nonce), so that a page of another
site can neither read nor forge them."""

from __future__ import annotations

import hashlib
import hmac

FIELD = "csrf"
SIGNIN_COOKIE = "pendingtx_signin"
# What a token is for: the forms of a session, or the sign-in form (keyed by its nonce cookie).
SESSION = "session"
SIGNIN = "signin"


class CsrfRefused(Exception):
    """A form came without its CSRF token, or with another's: answered 403."""


def token_for(key: bytes, purpose: str, held: str) -> str:
    """The token of forms posted with `held` (the session's token or the sign-in nonce)."""
    message = purpose.encode() + b"\x00" + held.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check(key: bytes, purpose: str, held: str | None, given: str | None) -> None:
    """CsrfRefused unless `given` is the token for `held`."""
    if (
        not held
        or not given
        or not hmac.compare_digest(token_for(key, purpose, held).encode(), given.encode())
    ):
        raise CsrfRefused
