"""The client commands (`submit`, `status`, `transactions list`) against the real app, in-process."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from pendingtx_client import Client
from tests.client.bridge import Recording
from tests.client.conftest import BASE_URL, FakeTime, Run
from tests.conftest import AppCreds
from tests.support import record

pytestmark = pytest.mark.usefixtures("worker_on_sleep")


@pytest.fixture
def flavour() -> str:
    """The commands use `Client`; the SDK that reads back what they did need not vary."""
    return "sync"


@pytest.fixture
def sdk_listing(sdk: Client) -> Callable[[], dict[str, Any]]:
    return lambda: {t.external_id: t for t in sdk.transactions()}


def write_json(tmp_path: Path, records: Any, name: str = "batch.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return path


CSV_TEXT = """externalId,type,productExternalId,investorExternalId,amount,units,tradeDate,comments
CSV-1,New Subscription,FUND-A,INV-1,2500.00,,2026-11-27,first one
CSV-2,Partial Redemption,FUND-A,INV-2,,12.5,2026-11-27,
"""


def test_submit_json_and_wait_exits_0_when_all_completed(
    run: Run, tmp_path: Path, sdk_listing: Callable[[], dict[str, Any]]
) -> None:
    path = write_json(tmp_path, [record("J-1"), record("J-2", amount=7.25)])
    result = run("submit", str(path), "--wait")
    assert result.exit_code == 0, result.output
    key = result.stdout.splitlines()[0]
    assert len(key) == 24
    assert "Completed: 2 of 2" in result.stdout
    assert "1 job(s), 2 record(s), 0 rejected" in result.stdout
    assert "processed" in result.stderr  # the progress bar
    assert sdk_listing()["J-2"].amount == Decimal("7.25")


def test_submit_csv_leaves_empty_cells_out(
    run: Run, tmp_path: Path, sdk_listing: Callable[[], dict[str, Any]]
) -> None:
    path = tmp_path / "batch.csv"
    path.write_text(CSV_TEXT)
    result = run("submit", str(path), "--wait")
    assert result.exit_code == 0, result.output
    found = sdk_listing()
    assert found["CSV-1"].amount == Decimal("2500.00")
    assert found["CSV-1"].comments == "first one"
    assert (found["CSV-2"].amount, found["CSV-2"].units, found["CSV-2"].comments) == (
        None,
        Decimal("12.5"),
        None,
    )


def test_a_single_json_object_is_one_record(run: Run, tmp_path: Path) -> None:
    result = run("submit", str(write_json(tmp_path, record("ONE-1"))), "--wait")
    assert result.exit_code == 0, result.output
    assert "1 record(s)" in result.stdout


def test_without_wait_each_job_key_is_printed_and_a_large_file_is_split(
    run: Run, tmp_path: Path, transport: Recording
) -> None:
    path = write_json(tmp_path, [record(f"S-{i}") for i in range(5)])
    result = run("submit", str(path), "--batch-size", "2")
    assert result.exit_code == 0, result.output
    keys = result.stdout.split()
    assert len(keys) == 3
    assert len(set(keys)) == 3
    posts = [r for r in transport.requests if r.method == "POST" and r.url.path == "/v1/transactions"]
    assert [len(json.loads(r.content)) for r in posts] == [2, 2, 1]


def test_a_partially_completed_file_exits_1_and_shows_every_message(run: Run, tmp_path: Path) -> None:
    records = [
        record("P-0"),
        record("P-1"),
        record("P-2"),
        record("P-3", amount=-5),
        record("P-4", type="Nope"),
    ]
    result = run("submit", str(write_json(tmp_path, records)), "--wait", "--batch-size", "2")
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert len([line for line in out.splitlines() if line.startswith("batch ")]) == 3
    assert "Partially Completed: 1 of 2" in out
    assert "Failed" in out
    assert "3 job(s), 5 record(s), 2 rejected" in out
    rows = {
        line.split("│")[3].strip(): line for line in out.splitlines() if line.count("│") >= 5 and "P-" in line
    }
    assert set(rows) == {"P-3", "P-4"}
    assert "must be greater than 0" in rows["P-3"]
    assert rows["P-3"].split("│")[2].strip() == "3"  # its position in the file, not in its batch
    assert rows["P-4"].split("│")[2].strip() == "4"


def test_transfers_go_to_the_transfers_endpoint(run: Run, tmp_path: Path, transport: Recording) -> None:
    transfer = record("T-1", type="Full Transfer", amount=None, toInvestorExternalId="INV-2")
    result = run("submit", str(write_json(tmp_path, [transfer])), "--transfers", "--wait")
    assert result.exit_code == 0, result.output
    assert "POST /v1/transfers" in transport.paths()


def test_missing_credentials_exit_2_naming_the_three_ways(run: Run, tmp_path: Path) -> None:
    path = write_json(tmp_path, [record("M-1")])
    result = run("submit", str(path), env={"PENDINGTX_APP_KEY": "", "PENDINGTX_APP_SECRET": ""})
    assert result.exit_code == 2
    message = result.stderr
    assert "missing credentials: app_key, app_secret" in message
    for way in ("--app-key", "--app-secret", "PENDINGTX_APP_KEY", "PENDINGTX_APP_SECRET", "profile.toml"):
        assert way in message
    assert "Traceback" not in result.output


def test_credentials_from_a_profile_file(run: Run, tmp_path: Path, app_creds: AppCreds) -> None:
    profile = tmp_path / "profile.toml"
    profile.write_text(
        f'url = "{BASE_URL}"\napp_key = "{app_creds.app_key}"\napp_secret = "{app_creds.app_secret}"\n'
    )
    no_env = {"PENDINGTX_URL": "", "PENDINGTX_APP_KEY": "", "PENDINGTX_APP_SECRET": ""}
    result = run(
        "submit",
        str(write_json(tmp_path, [record("PR-1")])),
        env={**no_env, "PENDINGTX_PROFILE": str(profile)},
    )
    assert result.exit_code == 0, result.output


def test_the_default_profile_location(run: Run, tmp_path: Path, app_creds: AppCreds) -> None:
    profile = tmp_path / "config" / "pendingtx" / "profile.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text(f'app_secret = "{app_creds.app_secret}"\n')
    result = run("submit", str(write_json(tmp_path, [record("PR-2")])), env={"PENDINGTX_APP_SECRET": ""})
    assert result.exit_code == 0, result.output


def test_a_profile_named_but_absent_or_broken_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    path = str(write_json(tmp_path, [record("PR-3")]))
    no_secret = {"PENDINGTX_APP_SECRET": ""}
    absent = run("submit", path, env={**no_secret, "PENDINGTX_PROFILE": str(tmp_path / "nope.toml")})
    assert absent.exit_code == 2
    assert "does not exist" in absent.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("app_secret = [unterminated")
    result = run("submit", path, env={**no_secret, "PENDINGTX_PROFILE": str(broken)})
    assert result.exit_code == 2
    assert "cannot read the profile file" in result.stderr


def test_flags_win_over_the_environment(run: Run, tmp_path: Path, app_creds: AppCreds) -> None:
    path = str(write_json(tmp_path, [record("F-1")]))
    env = {"PENDINGTX_APP_SECRET": "wrong-secret-from-env"}
    result = run("submit", path, "--app-secret", app_creds.app_secret, env=env)
    assert result.exit_code == 0, result.output


def test_a_wrong_secret_exits_2_and_is_never_echoed(run: Run, tmp_path: Path) -> None:
    secret = "very-wrong-secret-1234567890"
    result = run("submit", str(write_json(tmp_path, [record("W-1")])), env={"PENDINGTX_APP_SECRET": secret})
    assert result.exit_code == 2
    assert "refused the credentials" in result.stderr
    assert "401" in result.stderr
    assert secret not in result.output


def test_an_unreachable_server_exits_2(run: Run, tmp_path: Path, fake_time: FakeTime) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    result = run("submit", str(write_json(tmp_path, [record("U-1")])), transport_=httpx.MockTransport(refuse))
    assert result.exit_code == 2
    assert f"cannot reach {BASE_URL}" in result.stderr
    assert len(fake_time.sleeps) == 4  # retried, without really waiting


@pytest.mark.parametrize(
    ("content", "problem"),
    [("[1, 2]", "not a JSON object"), ("[", "not valid JSON"), ("[]", "holds no records")],
)
def test_a_bad_file_is_a_usage_error(run: Run, tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = run("submit", str(path))
    assert result.exit_code == 2
    assert problem in result.stderr


def test_a_csv_with_a_repeated_column_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("externalId,externalId\nA,B\n")
    result = run("submit", str(path))
    assert result.exit_code == 2
    assert "repeats externalId" in result.stderr


def test_status_reports_and_judges_a_job(run: Run, tmp_path: Path) -> None:
    submitted = run("submit", str(write_json(tmp_path, [record("ST-1"), record("ST-2", amount=0)])))
    key = submitted.stdout.strip()

    pending = run("status", key)
    assert pending.exit_code == 0, pending.output
    assert "Status:   Submitted" in pending.stdout

    done = run("status", key, "--wait")
    assert done.exit_code == 1
    assert "Status:   Partially Completed" in done.stdout
    assert "Records:  2 of 2 processed, 1 rejected" in done.stdout
    assert "ST-2" in done.stdout
    assert "must be greater than 0" in done.stdout


def test_status_of_an_unknown_key_exits_1(run: Run) -> None:
    result = run("status", "AAAAAAAAAAAAAAAAAAAAAA==")
    assert result.exit_code == 1
    assert "404 resource.not.found" in result.stderr


def test_status_wait_timeout_exits_1(run: Run, tmp_path: Path, fake_time: FakeTime) -> None:
    key = run("submit", str(write_json(tmp_path, [record("TO-1")]))).stdout.strip()
    fake_time.on_sleep.clear()  # no worker: the job never finishes
    result = run("status", key, "--wait", "--timeout", "5")
    assert result.exit_code == 1
    assert "still Submitted after 5 s" in result.stderr
    assert sum(fake_time.sleeps) == 5


@pytest.fixture
def listed_data(run: Run, tmp_path: Path, worker_on_sleep: None) -> None:
    records = [
        record("L-1", amount="0.25"),
        record("L-2", investorExternalId="INV-7", amount="123456.78"),
        record("L-3", type="Partial Redemption", amount=None, units="1.000001"),
    ]
    done = run("submit", str(write_json(tmp_path, records)), "--wait")
    assert done.exit_code == 0, done.output


@pytest.mark.usefixtures("listed_data")
def test_transactions_list_as_a_table(run: Run) -> None:
    result = run("transactions", "list")
    assert result.exit_code == 0, result.output
    for text in ("L-1", "L-2", "L-3", "0.25", "123456.78", "1.000001", "New Subscription"):
        assert text in result.stdout


@pytest.mark.usefixtures("listed_data")
def test_transactions_list_as_json_keeps_every_digit(run: Run) -> None:
    result = run("transactions", "list", "--format", "json", "--investor", "INV-7")
    assert result.exit_code == 0, result.output
    [only] = json.loads(result.stdout, parse_float=Decimal)
    assert only["externalId"] == "L-2"
    assert only["amount"] == Decimal("123456.78")
    assert '"amount":123456.78' in result.stdout


@pytest.mark.usefixtures("listed_data")
def test_transactions_list_as_csv(run: Run) -> None:
    result = run("transactions", "list", "--format", "csv", "--type", "Partial Redemption")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["externalId"], r["units"], r["amount"]) for r in rows] == [("L-3", "1.000001", "")]
    assert list(rows[0])[:3] == ["externalId", "type", "status"]


@pytest.mark.usefixtures("listed_data")
def test_transactions_list_since_maps_to_create_start_date(run: Run, transport: Recording) -> None:
    # The server's fake clock stands at 2026-01-15 09:30 US Eastern.
    assert (
        len(json.loads(run("transactions", "list", "--format", "json", "--since", "2026-01-15").stdout)) == 3
    )
    assert json.loads(run("transactions", "list", "--format", "json", "--since", "2026-01-16").stdout) == []
    assert transport.requests[-1].url.params["createStartDate"] == "2026-01-16"
    result = run("transactions", "list", "--status", "Cancel", "--format", "json")
    assert json.loads(result.stdout) == []


def test_transactions_list_rejects_a_bad_date(run: Run) -> None:
    result = run("transactions", "list", "--since", "yesterday")
    assert result.exit_code == 2
    assert "not a date" in result.stderr
