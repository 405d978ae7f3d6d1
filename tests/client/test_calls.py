"""Per-call timeouts, `from_env`, and what only `AsyncClient` can do, against a scripted server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pendingtx_client import AsyncClient, Client, ConfigurationError
from tests.client.conftest import FakeTime
from tests.client.flavours import asynchronous
from tests.client.scripted import APP_KEY, APP_SECRET, ScriptedServer, accepted, job, token_value

STATUS = "GET /v1/jobs/insight/status/KEY"
TRANSACTION = {
    "externalId": "PT-1",
    "type": "New Subscription",
    "status": "Active",
    "productExternalId": "FUND-A",
    "investorExternalId": "INV-1",
    "amount": 2500.1,
    "currency": "USD",
    "tradeDate": "2026-11-27",
    "createDate": "2026-11-29T08:28:08.393-05:00",
    "changeDate": "2026-11-29T08:28:08.393-05:00",
}


@pytest.fixture
def server(flavour: str) -> ScriptedServer:
    server = ScriptedServer(flavour=flavour)
    server.on("POST /v1/transactions", accepted())
    server.on("POST /v1/transfers", accepted())
    server.on("PATCH /v1/transactions/PT-1", accepted())
    server.on(STATUS, job("Completed"))
    exact = json.dumps(TRANSACTION).replace("2500.1", "2500.10").encode()  # digits a float would lose
    server.on("GET /v1/transactions/PT-1", httpx.Response(200, content=exact))
    server.on("GET /v1/transactions", httpx.Response(200, json={"data": {"results": [TRANSACTION]}}))
    return server


def read_timeout(request: httpx.Request) -> float | None:
    timeouts: dict[str, float | None] = request.extensions["timeout"]
    return timeouts["read"]


def test_each_call_takes_its_own_timeout_and_defaults_to_the_clients(
    server: ScriptedServer, fake_time: FakeTime
) -> None:
    with server.client(fake_time, timeout=30.0) as client:
        client.submit([{"externalId": "PT-1"}], timeout=1.5)
        client.transfer([{"externalId": "PT-1"}], timeout=2.5)
        client.patch("PT-1", {"comments": "x"}, merge=True, timeout=3.5)
        client.cancel_transaction("PT-1", timeout=httpx.Timeout(4.5))
        client.status("KEY", timeout=5.5)
        client.wait("KEY", timeout=60, request_timeout=6.5)
        client.get_transaction("PT-1", timeout=7.5)
        list(client.transactions(timeout=8.5, status="Active"))
        client.status("KEY")
    calls = [r for r in server.requests if r.url.path != "/v2/oauthtoken"]
    # wait's read is held by the server (long-poll) for up to 50 s more than its request_timeout
    assert [read_timeout(r) for r in calls] == [1.5, 2.5, 3.5, 4.5, 5.5, 56.5, 7.5, 8.5, 30.0]


def test_a_transaction_is_read_with_exact_decimals(server: ScriptedServer, fake_time: FakeTime) -> None:
    with server.client(fake_time) as client:
        found = client.get_transaction("PT-1")
    assert str(found.amount) == "2500.10"
    assert found.create_date is not None
    assert found.create_date.utcoffset() is not None


def profile(tmp_path: Path, **values: str) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text("".join(f'{name} = "{value}"\n' for name, value in values.items()))
    return path


def build(kind: type[Client | AsyncClient], environ: dict[str, str], **options: Any) -> Client | AsyncClient:
    """`kind.from_env(...)`, closed at once: these tests only look at what it was built with."""
    built = kind.from_env(environ=environ, **options)
    if isinstance(built, AsyncClient):
        asyncio.run(built.aclose())
    else:
        built.close()
    return built


@pytest.mark.parametrize("kind", [Client, AsyncClient])
def test_from_env_reads_the_variables_first_then_the_profile(kind: type[Any], tmp_path: Path) -> None:
    path = profile(tmp_path, url="http://from-profile.test", app_key="profile-key", app_secret="s")
    environ = {"PENDINGTX_PROFILE": str(path), "PENDINGTX_URL": "http://from-env.test/"}

    built = build(kind, environ, timeout=5.0)

    assert isinstance(built, kind)
    assert (built.base_url, built.app_key) == ("http://from-env.test", "profile-key")


@pytest.mark.parametrize("kind", [Client, AsyncClient])
def test_from_env_finds_the_default_profile_file(kind: type[Any], tmp_path: Path) -> None:
    config = tmp_path / "config" / "pendingtx"
    config.mkdir(parents=True)
    profile(config, url="http://default.test", app_key="k", app_secret="s")
    built = build(kind, {"XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert built.base_url == "http://default.test"


@pytest.mark.parametrize("kind", [Client, AsyncClient])
def test_from_env_names_what_is_missing_and_where_to_put_it(kind: type[Any], tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path), "PENDINGTX_URL": "http://x.test"}
    with pytest.raises(ConfigurationError) as caught:
        kind.from_env(environ=environ)
    assert caught.value.missing == ("app_key", "app_secret")
    message = str(caught.value)
    for way in ("PENDINGTX_APP_KEY", "PENDINGTX_APP_SECRET", str(tmp_path / "pendingtx" / "profile.toml")):
        assert way in message


def test_from_env_refuses_a_named_profile_that_is_absent_or_broken(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Client.from_env(environ={"PENDINGTX_PROFILE": str(tmp_path / "nope.toml")})
    broken = tmp_path / "broken.toml"
    broken.write_text("app_secret = [")
    with pytest.raises(ConfigurationError, match="cannot read the profile file"):
        Client.from_env(environ={"PENDINGTX_PROFILE": str(broken)})


def test_from_env_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENDINGTX_URL", "http://process.test")
    monkeypatch.setenv("PENDINGTX_APP_KEY", APP_KEY)
    monkeypatch.setenv("PENDINGTX_APP_SECRET", APP_SECRET)
    with Client.from_env() as client:
        assert client.base_url == "http://process.test"


def test_concurrent_calls_share_one_async_client(fake_time: FakeTime) -> None:
    server = ScriptedServer(flavour="async")
    server.on(STATUS, job("Completed"))

    async def main() -> list[str]:
        async with AsyncClient(
            "http://api.test",
            APP_KEY,
            APP_SECRET,
            transport=httpx.MockTransport(server),
            sleep=asynchronous(fake_time.sleep),
            clock=fake_time.clock,
        ) as client:
            await client.status("KEY")  # one token first, then shared by every task
            statuses = await asyncio.gather(*(client.status("KEY") for _ in range(5)))
            return [s.status.value for s in statuses]

    assert asyncio.run(main()) == ["Completed"] * 5
    assert server.mints == 1
    assert {r.headers["authorization"] for r in server.sent(STATUS)} == {f"Bearer {token_value(1)}"}


def test_async_listing_fetches_a_page_only_when_it_is_reached(fake_time: FakeTime) -> None:
    server = ScriptedServer(flavour="async")
    first = {"data": {"results": [TRANSACTION]}, "paging": {"next": "/v1/transactions?after=X"}}
    server.on("GET /v1/transactions", httpx.Response(200, json=first), httpx.Response(200, json=first))

    async def main() -> None:
        async with AsyncClient(
            "http://api.test", APP_KEY, APP_SECRET, transport=httpx.MockTransport(server)
        ) as client:
            pages = client.transactions(status="Active")
            assert server.sent("GET /v1/transactions") == []  # nothing until iterated
            async for found in pages:
                assert found.external_id == "PT-1"
                break
            assert len(server.sent("GET /v1/transactions")) == 1

    asyncio.run(main())
    [request] = server.sent("GET /v1/transactions")
    assert request.url.params["status"] == "Active"
