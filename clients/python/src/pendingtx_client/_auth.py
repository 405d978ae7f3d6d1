"""Bearer tokens as an httpx auth flow: mint on first use, cache, renew before expiry and once on a 401."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import msgspec

from pendingtx_client._errors import unexpected

log = logging.getLogger("pendingtx_client")

# A token is renewed this long before the server would let it expire (at most a tenth of its life).
RENEW_BEFORE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    renew_at: float | None  # on the monotonic clock; None when the server did not say


class _TokenBody(msgspec.Struct):
    access_token: str
    expires_in: float | None = None


def basic_credentials(app_key: str, app_secret: str) -> str:
    """The HTTP Basic header value; both parts form-encoded first, as RFC 6749 2.3.1 asks."""
    pair = f"{quote(app_key, safe='')}:{quote(app_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


class TokenAuth(httpx.Auth):
    """Adds `Authorization: Bearer ...` and `AppKey` to every request; tokens never reach a log.

    When minting fails, the token endpoint's error answer is handed back as the answer to the
    request, so the client's ordinary error handling (and retrying, when transient) applies.
    """

    requires_response_body = True

    def __init__(self, *, token_url: str, app_key: str, app_secret: str, clock: Callable[[], float]) -> None:
        self._token_url = token_url
        self._app_key = app_key
        self._basic = basic_credentials(app_key, app_secret)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def __repr__(self) -> str:
        return f"TokenAuth(app_key={self._app_key!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["AppKey"] = self._app_key
        token = self._cached()
        if token is None:
            token = self._store((yield self._mint_request(request)))
            if token is None:
                return
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        log.info(
            "%s %s answered 401; minting a new token and retrying once", request.method, request.url.path
        )
        token = self._newer_than(token)
        if token is None:
            token = self._store((yield self._mint_request(request)))
            if token is None:
                return
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    def _cached(self) -> str | None:
        with self._lock:
            token = self._token
        if token is None or (token.renew_at is not None and self._clock() >= token.renew_at):
            return None
        return token.value

    def _newer_than(self, rejected: str) -> str | None:
        """A token another request minted since `rejected` was sent; otherwise forget `rejected`."""
        with self._lock:
            if self._token is not None and self._token.value != rejected:
                return self._token.value
            self._token = None
            return None

    def _mint_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._token_url,
            headers={"Authorization": self._basic, "Accept": "application/json"},
            data={"grant_type": "client_credentials"},
            extensions=request.extensions,
        )

    def _store(self, response: httpx.Response) -> str | None:
        """Cache the token of a successful mint and return it; None when minting failed."""
        if response.status_code != 200:
            return None
        try:
            body = msgspec.json.decode(response.content, type=_TokenBody)
        except msgspec.DecodeError as exc:
            raise unexpected(response, "a token", exc) from None
        renew_at = None
        if body.expires_in is not None:
            renew_at = self._clock() + body.expires_in - min(RENEW_BEFORE_SECONDS, body.expires_in / 10)
        with self._lock:
            self._token = _Token(body.access_token, renew_at)
        log.debug("minted an access token (expires in %s s)", body.expires_in)
        return body.access_token
