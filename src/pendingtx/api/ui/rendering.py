"""The dashboard's HTML: Jinja2 templates shipped in the package, the headers of every /ui answer,
and the error pages that take the place of the API's JSON error bodies under /ui."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from functools import cache, wraps
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pendingtx import __version__, errors
from pendingtx.api.client_address import over_https
from pendingtx.api.context import DATABASE_UNAVAILABLE
from pendingtx.api.ui.csrf import CsrfRefused
from pendingtx.api.ui.session import SESSION_COOKIE, SignedOut, clear_cookie
from pendingtx.domain.networks import Network
from pendingtx.domain.times import eastern

SIGNIN_PATH = "/ui/signin"
# No inline script or style, nothing from another host, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Pages show an organization's data: never kept by a browser or proxy.
NO_STORE = "no-store"

log = logging.getLogger("pendingtx.api")

Handler = Callable[[Request], Awaitable[Response]]


def _moment(value: datetime | str | None) -> datetime | None:
    # The API's services hand some times over already in the contract's text (Eastern ISO 8601).
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def eastern_iso(value: datetime | str | None) -> str:
    """The moment as ISO 8601 in US Eastern time (the `datetime` of a <time>); "" for none."""
    moment = _moment(value)
    return moment.astimezone(eastern()).isoformat(timespec="seconds") if moment else ""


def eastern_text(value: datetime | str | None) -> str:
    """The moment as people read it in US Eastern time, `2026-01-15 09:30:00 EST`; "" for none."""
    moment = _moment(value)
    return moment.astimezone(eastern()).strftime("%Y-%m-%d %H:%M:%S %Z") if moment else ""


def slug(text: str) -> str:
    """`Partially Completed` -> `partially-completed` (a status's CSS class)."""
    return text.strip().lower().replace(" ", "-")


@cache
def environment() -> jinja2.Environment:
    """The templates' environment (autoescaped; an undefined name is an error, not an empty string)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pendingtx.api.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(eastern_iso=eastern_iso, eastern_text=eastern_text, slug=slug)
    env.globals["version"] = __version__
    return env


def render(name: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
    """The template `name` rendered with `context`."""
    return HTMLResponse(environment().get_template(name).render(context), status_code=status)


def error_page(status: int, title: str, message: str, details: list[str] | None = None) -> HTMLResponse:
    """An error as a page of its own."""
    context = {"signed_in": False, "title": title, "message": message, "details": details or []}
    return render("error.html", context, status)


def _answer_for(exc: Exception, request: Request, trusted: Sequence[Network]) -> Response:
    if isinstance(exc, SignedOut):
        response: Response = RedirectResponse(SIGNIN_PATH, status_code=303)
        clear_cookie(response, SESSION_COOKIE, secure=over_https(request.scope, trusted))
        return response
    if isinstance(exc, CsrfRefused):
        return error_page(
            403,
            "Form refused",
            "This form did not come from this dashboard, or has expired. Go back, reload the page and "
            "try again.",
        )
    if isinstance(exc, errors.ApiError):
        titles = {404: "Not found", 410: "Gone", 429: "Too many requests", 503: "Try again shortly"}
        details = [f"{detail.field}: {detail.reason}" for detail in exc.errors]
        response = error_page(exc.status, titles.get(exc.status, "Request refused"), exc.message, details)
        response.headers.update({k: v for k, v in exc.headers.items() if k.lower() == "retry-after"})
        return response
    log.warning(
        "database unavailable serving %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    response = error_page(503, "Try again shortly", "The database cannot be reached just now.")
    response.headers["Retry-After"] = "1"
    return response


def page(handler: Handler, trusted: Sequence[Network]) -> Handler:
    """A /ui endpoint: its failures as HTML pages (sign-in for a missing or expired session), and the
    dashboard's security headers on every answer (`trusted`: the proxies that may say the client
    used https)."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            response = await handler(request)
        except (SignedOut, CsrfRefused, errors.ApiError, *DATABASE_UNAVAILABLE) as exc:
            response = _answer_for(exc, request, trusted)
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", NO_STORE)
        return response

    return endpoint
