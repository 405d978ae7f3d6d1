"""`pendingtx demo`: the whole flow against a throw-away service on a temporary database."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from pendingtx.api.server import server_config
from pendingtx.bootstrap import build_app, build_runtime
from pendingtx.config import Settings
from pendingtx.domain.credentials import PRODUCT
from pendingtx.services import credentials

BATCH = [
    {
        "externalId": "DEMO-1",
        "type": "New Subscription",
        "productExternalId": "FUND-A",
        "investorExternalId": "INV-1",
        "amount": "2500.00",
        "tradeDate": "2026-11-27",
    },
    {
        "externalId": "DEMO-2",
        "type": "Partial Redemption",
        "productExternalId": "FUND-A",
        "investorExternalId": "INV-2",
        "units": "12.5",
        "tradeDate": "2026-11-27",
    },
    {
        "externalId": "DEMO-3",
        "type": "Dividend",
        "productExternalId": "FUND-B",
        "investorExternalId": "INV-3",
        "amount": -5,
        "tradeDate": "2026-11-27",
    },
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _show(echo: Callable[[str], None], response: httpx.Response, *, secret: str = "") -> Any:
    request = response.request
    query = f"?{request.url.query.decode()}" if request.url.query else ""
    echo(f"\n> {request.method} {request.url.path}{query}")
    body = response.json()
    shown = json.dumps(body, indent=2).replace(secret, "<redacted>") if secret else json.dumps(body, indent=2)
    echo(f"< {response.status_code}\n{shown}")
    return body


def run_demo(echo: Callable[[str], None], *, timeout: float = 30.0) -> int:
    """Start a service, register an app, submit a batch with one invalid record, wait; 0 on success."""
    with tempfile.TemporaryDirectory(prefix="pendingtx-demo-") as tmp:
        settings = Settings(database_url=f"sqlite:///{Path(tmp) / 'demo.db'}", log_level="warning")
        runtime = build_runtime(settings)
        app = credentials.create_app(
            runtime.uow, name="demo-app", organization="demo", products=[PRODUCT], clock=runtime.clock
        )
        echo(f"registered application demo-app: AppKey {app.app_key}")
        port = _free_port()
        server = uvicorn.Server(
            server_config(
                build_app(runtime, workers=runtime.worker_pool()),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + timeout
            while not server.started:
                # A server that cannot start (say, the port was taken meanwhile) ends its thread.
                if not thread.is_alive() or time.monotonic() > deadline:
                    echo("the service did not start")
                    return 1
                time.sleep(0.01)
            return _flow(echo, f"http://127.0.0.1:{port}", app, deadline)
        finally:
            server.should_exit = True
            thread.join(10)
            runtime.close()


def _flow(echo: Callable[[str], None], base: str, app: credentials.NewApp, deadline: float) -> int:
    with httpx.Client(base_url=base, timeout=10) as http:
        token = _show(
            echo,
            http.post(
                "/v2/oauthtoken",
                data={"grant_type": "client_credentials"},
                auth=(app.app_key, app.app_secret),
            ),
            secret=app.app_secret,
        )["access_token"]
        headers = {"Authorization": f"Bearer {token}", "AppKey": app.app_key}
        accepted = _show(echo, http.post("/v1/transactions", json=BATCH, headers=headers))
        status_url = f"/v1/jobs/insight/status/{accepted['jobStatusQueryKey']}"
        while time.monotonic() < deadline:
            response = http.get(status_url, headers=headers)
            if "Retry-After" not in response.headers:
                body = _show(echo, response)
                return 0 if body["status"] == "Partially Completed" else 1
            time.sleep(0.05)
    echo("the job did not finish in time")
    return 1
