"""Both clients through one test body: `open_client("sync" | "async", ...)`.

An `AsyncClient` is wrapped in `Blocking`, which runs each awaited call to its end on a private
event loop, so that a test written against `Client` checks `AsyncClient` unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, cast

from pendingtx_client import AsyncClient, Client

FLAVOURS = ["sync", "async"]


def asynchronous(sleep: Callable[[float], None]) -> Callable[[float], Any]:
    """An awaitable sleep that does what `sleep` does (a fake one moves fake time)."""

    async def pause(seconds: float) -> None:
        sleep(seconds)

    return pause


class Blocking:
    """An `AsyncClient` with `Client`'s blocking interface: each call runs on this object's event loop."""

    def __init__(self, client: AsyncClient, runner: asyncio.Runner) -> None:
        self.client = client
        self.runner = runner

    def __repr__(self) -> str:
        return repr(self.client)

    def __enter__(self) -> Blocking:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.runner.run(self.client.aclose())
        finally:
            self.runner.close()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.client, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            result = found(*args, **kwargs)
            if inspect.iscoroutine(result):
                return self.runner.run(result)
            if isinstance(result, AsyncIterator):
                return iter(self.runner.run(_collect(result)))
            return result

        return call


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


def open_client(flavour: str, base_url: str, app_key: str, app_secret: str, **options: Any) -> Client:
    """A `Client`, or an `AsyncClient` behind `Blocking` (typed as `Client`: it answers the same calls)."""
    if flavour == "sync":
        return Client(base_url, app_key, app_secret, **options)
    if "sleep" in options:
        options["sleep"] = asynchronous(options["sleep"])
    runner = asyncio.Runner()
    # Built inside the loop that will use it, as an application would.
    client = runner.run(_build(base_url, app_key, app_secret, options))
    return cast(Client, Blocking(client, runner))


async def _build(base_url: str, app_key: str, app_secret: str, options: dict[str, Any]) -> AsyncClient:
    return AsyncClient(base_url, app_key, app_secret, **options)
