"""`/ui`: the operator dashboard (contract 7.7), server-rendered HTML over the same services as /v1.

Templates (`templates/`) and the one stylesheet and script (`static/`) ship inside this package.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from starlette.routing import Route

from pendingtx.api.assets import PackagedFiles
from pendingtx.api.dependencies import ApiServices
from pendingtx.api.ui.pages import JOB_PATH, JOBS_PATH, TRANSACTIONS_PATH, Dashboard
from pendingtx.api.ui.rendering import SIGNIN_PATH, page
from pendingtx.api.ui.signin import SignIn

STATIC_FILES = frozenset({"app.css", "app.js"})
# Pages ask for the files with the package's version in the query: a release is fetched anew.
STATIC_CACHE = "public, max-age=86400"


def _static() -> Traversable:
    return files("pendingtx.api.ui") / "static"


def ui_routes(services: ApiServices) -> list[Route]:
    """The dashboard's routes (none of them part of the API's description)."""
    dashboard = Dashboard(services)
    signin = SignIn(services)
    static = PackagedFiles(_static, STATIC_FILES, STATIC_CACHE)
    served = [
        (JOBS_PATH, dashboard.jobs, ["GET"]),
        (JOB_PATH, dashboard.job, ["GET"]),
        (JOB_PATH + "/row", dashboard.job_row, ["GET"]),
        (JOB_PATH + "/results.csv", dashboard.results_csv, ["GET"]),
        (TRANSACTIONS_PATH, dashboard.transactions, ["GET"]),
        ("/ui/webhooks", dashboard.webhooks, ["GET"]),
        ("/ui/events", dashboard.events, ["GET"]),
        (SIGNIN_PATH, signin.handle, ["GET", "POST"]),
        ("/ui/signout", signin.sign_out, ["POST"]),
        ("/ui/static/{name}", static.serve, ["GET"]),
        # Last: what no route above matches.
        ("/ui/{path:path}", dashboard.not_found, None),
    ]
    return [
        Route(path, page(handler, services.trusted_proxies), methods=methods, include_in_schema=False)
        for path, handler, methods in served
    ]
