"""`transactions get`, `patch` and `cancel` against the real app in-process; shell completion."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from pendingtx.cli import main as server_main
from pendingtx_client import Client
from pendingtx_client.cli.commands import main as client_main
from tests.client.bridge import Recording
from tests.client.conftest import Run
from tests.support import record

pytestmark = pytest.mark.usefixtures("worker_on_sleep")


@pytest.fixture
def flavour() -> str:
    """The commands use `Client`; the SDK that sets up and reads back need not vary."""
    return "sync"


@pytest.fixture
def stored(sdk: Client, worker_on_sleep: None) -> None:
    batch = [record("T-1", amount="1234.56", comments="first"), record("T-2", investorExternalId="INV-9")]
    assert sdk.wait(sdk.submit(batch).key, timeout=30).status.value == "Completed"


@pytest.mark.usefixtures("stored")
def test_get_shows_every_member_as_a_table(run: Run) -> None:
    result = run("transactions", "get", "T-1")
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.stdout.splitlines()
        if "│" in line
    }
    assert rows["externalId"] == "T-1"
    assert rows["amount"] == "1234.56"
    assert rows["comments"] == "first"
    assert "createDate" in rows


@pytest.mark.usefixtures("stored")
def test_get_as_json_and_csv_keeps_every_digit(run: Run) -> None:
    as_json = run("transactions", "get", "T-1", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout, parse_float=Decimal)
    assert (body["externalId"], body["amount"]) == ("T-1", Decimal("1234.56"))
    assert '"amount":1234.56' in as_json.stdout
    as_csv = run("transactions", "get", "T-2", "--format", "csv")
    [row] = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert (row["externalId"], row["investorExternalId"]) == ("T-2", "INV-9")


def test_get_of_an_unknown_transaction_exits_1(run: Run) -> None:
    result = run("transactions", "get", "NOPE-1")
    assert result.exit_code == 1
    assert "404 resource.not.found" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("stored")
def test_patch_with_a_merge_patch_and_wait(run: Run, sdk: Client, transport: Recording) -> None:
    result = run(
        "transactions", "patch", "T-1", "--merge", '{"amount": 99.99, "comments": "checked"}', "--wait"
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.splitlines()[0]
    assert len(key) == 24
    assert "Status:   Completed" in result.stdout
    [sent] = [r for r in transport.requests if r.method == "PATCH"]
    assert sent.headers["content-type"] == "application/merge-patch+json"
    assert b"99.99" in sent.content  # the number's digits as written, never through a float
    found = sdk.get_transaction("T-1")
    assert (found.amount, found.comments) == (Decimal("99.99"), "checked")


@pytest.mark.usefixtures("stored")
def test_patch_with_a_json_patch_without_wait_prints_the_key(run: Run, sdk: Client) -> None:
    operations = '[{"op": "add", "path": "/contactExternalId", "value": "C-7"}]'
    result = run("transactions", "patch", "T-2", "--json-patch", operations)
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert sdk.wait(key, timeout=30).status.value == "Completed"
    assert sdk.get_transaction("T-2").contact_external_id == "C-7"


@pytest.mark.usefixtures("stored")
def test_a_rejected_patch_exits_1_with_the_reason(run: Run) -> None:
    result = run("transactions", "patch", "T-1", "--merge", '{"amount": -1}', "--wait")
    assert result.exit_code == 1
    assert "Status:   Failed" in result.stdout
    assert "must be greater than 0" in result.stdout


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "exactly one of --merge JSON and --json-patch JSON"),
        (["--merge", "{}", "--json-patch", "[]"], "exactly one of"),
        (["--merge", "{"], "not valid JSON"),
        (["--merge", "[]"], "must be an object"),
        (["--json-patch", '{"op": "add"}'], "must be an array of operations"),
    ],
)
def test_a_malformed_patch_is_a_usage_error(
    run: Run, transport: Recording, args: list[str], problem: str
) -> None:
    result = run("transactions", "patch", "T-1", *args)
    assert result.exit_code == 2
    assert problem in result.stderr
    assert transport.requests == []  # refused before anything is sent


@pytest.mark.usefixtures("stored")
def test_cancel_then_cancel_again(run: Run, sdk: Client, transport: Recording) -> None:
    first = run("transactions", "cancel", "T-1", "--wait")
    assert first.exit_code == 0, first.output
    assert sdk.get_transaction("T-1").status == "Cancel"
    [sent] = [r for r in transport.requests if r.method == "PATCH"]
    assert json.loads(sent.content) == {"status": "Cancel"}

    again = run("transactions", "cancel", "T-1", "--wait")
    assert again.exit_code == 1
    assert "cancelled and cannot be modified" in again.stdout


def test_cancel_of_an_unknown_transaction_exits_1(run: Run) -> None:
    result = run("transactions", "cancel", "NOPE-1")
    assert result.exit_code == 1
    assert "404 resource.not.found" in result.stderr


@pytest.mark.parametrize(
    ("program", "name", "variable"),
    [
        (server_main, "pendingtx", "_PENDINGTX_COMPLETE"),
        (client_main, "pendingtx-client", "_PENDINGTX_CLIENT_COMPLETE"),
    ],
)
def test_shell_completion_as_the_readme_shows(program: object, name: str, variable: str) -> None:
    runner = CliRunner()
    script = runner.invoke(program, [], prog_name=name, env={variable: "bash_source"})  # type: ignore[arg-type]
    assert script.exit_code == 0
    assert "complete -o nosort -F" in script.output
    words = runner.invoke(
        program,  # type: ignore[arg-type]
        [],
        prog_name=name,
        env={variable: "bash_complete", "COMP_WORDS": f"{name} transactions ", "COMP_CWORD": "2"},
    )
    offered = {line.split(",")[1] for line in words.output.splitlines()}
    assert offered == {"list", "get", "patch", "cancel"}
