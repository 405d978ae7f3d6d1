"""The SDK and the client commands against a real `pendingtx serve` process (worker in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pendingtx.cli import main
from pendingtx_client import JobState, NotFound
from tests.client.flavours import open_client
from tests.e2e.conftest import BASE_SETTINGS
from tests.e2e.server import Server, create_app_via_cli
from tests.support import record

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A real server on a fresh SQLite file, and an application registered with `pendingtx apps create`."""
    database_url = f"sqlite:///{tmp_path / 'client-e2e.db'}"
    server = Server(database_url, tmp_path / "server.log", BASE_SETTINGS)
    try:
        server.wait_healthy()
        yield server, create_app_via_cli(database_url, name="sdk-e2e", org="sdk")
    finally:
        server.stop()


def test_sdk_against_a_real_server(served: tuple[Server, dict[str, Any]], flavour: str) -> None:
    server, app = served
    with open_client(flavour, server.base_url, app["appKey"], app["appSecret"], timeout=10) as client:
        job = client.submit([record("E-1", amount="10.05"), record("E-2", amount=-1)])
        done = client.wait(job.key, timeout=30)
        assert done.status is JobState.PARTIALLY_COMPLETED
        assert done.validation_messages == ("[1] externalId=E-2: amount: must be greater than 0",)

        patched = client.wait(client.patch("E-1", {"amount": "20.10"}, merge=True).key, timeout=30)
        assert patched.status is JobState.COMPLETED
        assert [(t.external_id, t.amount) for t in client.transactions()] == [("E-1", Decimal("20.10"))]

        cancelled = client.wait(client.cancel_transaction("E-1", timeout=5).key, timeout=30)
        assert cancelled.status is JobState.COMPLETED
        assert client.get_transaction("E-1", timeout=5).status == "Cancel"
        with pytest.raises(NotFound):
            client.get_transaction("E-2")  # rejected, so never created


def test_cli_submits_a_csv_to_a_real_server(
    served: tuple[Server, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, app = served
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "batch.csv"
    path.write_text(
        "externalId,type,productExternalId,investorExternalId,amount,units,tradeDate\n"
        "C-1,New Subscription,FUND-A,INV-1,2500.00,,2026-11-27\n"
        "C-2,Partial Redemption,FUND-A,INV-2,,12.5,2026-11-27\n"
        "C-3,Dividend,FUND-B,INV-3,-5,,2026-11-27\n"
    )
    env = {
        "PENDINGTX_URL": server.base_url,
        "PENDINGTX_APP_KEY": app["appKey"],
        "PENDINGTX_APP_SECRET": app["appSecret"],
    }
    result = CliRunner().invoke(main, ["submit", str(path), "--wait", "--batch-size", "2"], env=env)
    assert result.exit_code == 1, result.output
    assert "C-3" in result.stdout
    assert "2 job(s), 3 record(s), 1 rejected" in result.stdout
    assert app["appSecret"] not in result.output

    listed = CliRunner().invoke(main, ["transactions", "list", "--format", "csv"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [line.split(",")[0] for line in listed.stdout.splitlines()] == ["externalId", "C-1", "C-2"]
