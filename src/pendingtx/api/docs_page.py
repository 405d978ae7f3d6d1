"""`GET /docs`: the OpenAPI document rendered by Swagger UI, served from this process.

Swagger UI's files come from the `swagger-ui-bundle-v2` package (Swagger UI 5, which renders OpenAPI
3.1), so the page works offline and loads nothing from another host.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pendingtx.api.assets import PackagedFiles

DOCS_PATH = "/docs"
ASSETS_TEMPLATE = "/docs/assets/{name}"
# The only files the page uses: nothing else of the package is served.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"})
CACHE = "public, max-age=86400"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pendingtx API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>
SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", validatorUrl: null, deepLinking: true});
</script>
<noscript>The machine-readable description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>
"""


def _bundle() -> Traversable:
    """Swagger UI's directory inside the package (named after its version)."""
    vendor = files("swagger_ui_bundle") / "vendor"
    return next(entry for entry in vendor.iterdir() if entry.name.startswith("swagger-ui-"))


async def page(_: Request) -> Response:
    """The page."""
    return HTMLResponse(PAGE)


def docs_routes() -> list[Route]:
    """The page's routes: the page and its files (neither is part of the API's description)."""
    return [
        Route(DOCS_PATH, page, methods=["GET"], include_in_schema=False),
        Route(
            ASSETS_TEMPLATE,
            PackagedFiles(_bundle, ASSETS, CACHE).serve,
            methods=["GET"],
            include_in_schema=False,
        ),
    ]
