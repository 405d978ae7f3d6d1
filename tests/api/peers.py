"""Serving the app to callers at chosen IP addresses, and to several "processes" over one database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime, build_app
from pendingtx.config import Settings
from pendingtx.storage.driver.engine import make_engine
from tests.support import FakeClock, basic


class Site:
    """One running instance of the service (a process), whose clients connect from any address asked for."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.app = build_app(runtime)
        self._clients: dict[str, TestClient] = {}

    def at(self, host: str) -> TestClient:
        """A client whose connections come from `host` (the ASGI peer address)."""
        if host not in self._clients:
            client = TestClient(self.app, base_url="http://127.0.0.1", client=(host, 50123))
            client.__enter__()
            self._clients[host] = client
        return self._clients[host]

    def close(self) -> None:
        for client in self._clients.values():
            client.__exit__(None, None, None)


def serving(runtime: Runtime) -> Iterator[Site]:
    """The test's runtime, served (the body of a fixture)."""
    served = Site(runtime)
    yield served
    served.close()


def serving_with(settings: Settings, clock: FakeClock) -> Iterator[Callable[..., Site]]:
    """More instances over the test's database and clock, with some settings changed (a fixture's body)."""
    opened: list[Site] = []

    def serve(**changes: Any) -> Site:
        tuned = settings.replace(**changes)
        opened.append(Site(Runtime(settings=tuned, engine=make_engine(tuned), clock=clock)))
        return opened[-1]

    yield serve
    for served in reversed(opened):
        served.close()
        served.runtime.close()


def token_request(client: TestClient, app_key: str, app_secret: str, **form: str) -> Any:
    """POST /v2/oauthtoken with Basic client credentials (a client_credentials grant unless told)."""
    return client.post(
        "/v2/oauthtoken",
        data={"grant_type": "client_credentials", **form},
        headers={"Authorization": basic(app_key, app_secret)},
    )
