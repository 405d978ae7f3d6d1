"""Settings from the environment: every variable known, errors that name it, database passwords masked."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pendingtx.cli import main
from pendingtx.config import OTHER_VARIABLES, Settings, SettingsError, setting_variables, settings_markdown
from pendingtx.observability.logs import redact

README = Path(__file__).parents[2] / "README.md"
SECRET = "S3cretPassw0rd"


@pytest.fixture(autouse=True)
def no_settings_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PENDINGTX_"):
            monkeypatch.delenv(name)


def test_an_unknown_variable_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"PENDINGTX_WORKER_LEASE_SECS": "5", "PENDINGTX_TOKEN_TTL_SECONDS": "60"})
    message = str(refused.value)
    assert "PENDINGTX_WORKER_LEASE_SECS (did you mean PENDINGTX_WORKER_LEASE_SECONDS?)" in message
    for name in [*setting_variables(), *OTHER_VARIABLES]:
        assert name in message


def test_client_and_test_variables_are_known() -> None:
    environ = dict.fromkeys(OTHER_VARIABLES, "x")
    assert Settings.from_env({**environ, "PENDINGTX_TOKEN_TTL_SECONDS": "60"}).token_ttl_seconds == 60


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PENDINGTX_TOKEN_TTL_SECONDS", "an hour"),
        ("PENDINGTX_TOKEN_TTL_SECONDS", "0"),
        ("PENDINGTX_WORKER_LEASE_SECONDS", "-1"),
        ("PENDINGTX_SQLITE_SYNCHRONOUS", "OFF"),
        ("PENDINGTX_LOG_LEVEL", "loud"),
        ("PENDINGTX_TRUSTED_PROXIES", "nonsense"),
        ("PENDINGTX_DATABASE_URL", "mysql://app:pw@db/x"),
    ],
)
def test_an_error_names_the_variable_not_the_field(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({variable: value})
    message = str(refused.value)
    assert message.startswith(f"{variable}: ")
    assert variable.removeprefix("PENDINGTX_").lower() not in message
    assert "$." not in message


def test_a_url_password_is_masked_in_a_settings_error() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"PENDINGTX_DATABASE_URL": f"mysql://app:{SECRET}@db.internal/x"})
    assert SECRET not in str(refused.value)
    assert "'mysql://app:***@db.internal/x'" in str(refused.value)


def test_an_unsupported_database_is_one_line_and_exit_status_2() -> None:
    url = f"mysql://app:{SECRET}@127.0.0.1/x"
    result = CliRunner().invoke(main, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1, result.output
    assert "PENDINGTX_DATABASE_URL: unsupported database 'mysql://app:***@127.0.0.1/x'" in result.output
    assert SECRET not in result.output


def test_a_database_that_cannot_be_reached_is_named_without_its_password() -> None:
    # Port 1 refuses at once: the connection fails without waiting.
    url = f"postgresql://app:{SECRET}@127.0.0.1:1/pendingtx"
    result = CliRunner().invoke(main, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 1
    assert "cannot use the database 'postgresql://app:***@127.0.0.1:1/pendingtx'" in result.output
    assert SECRET not in result.output


def test_an_unknown_variable_stops_a_server_command() -> None:
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"PENDINGTX_DATABSE_URL": "sqlite:///x.db"})
    assert result.exit_code == 2
    assert "PENDINGTX_DATABSE_URL (did you mean PENDINGTX_DATABASE_URL?)" in result.output


def test_logs_mask_url_passwords() -> None:
    line = redact(f"cannot connect: postgresql://app:{SECRET}@db:5432/x")
    assert line == "cannot connect: postgresql://app:***@db:5432/x"


def test_the_settings_command_shows_values_masked() -> None:
    env = {"PENDINGTX_DATABASE_URL": f"postgresql://app:{SECRET}@db/x", "PENDINGTX_WORKER_CHUNK_SIZE": "7"}
    result = CliRunner().invoke(main, ["settings"], env=env)
    assert result.exit_code == 0, result.output
    assert "PENDINGTX_DATABASE_URL=postgresql://app:***@db/x" in result.output.splitlines()
    assert "PENDINGTX_WORKER_CHUNK_SIZE=7" in result.output.splitlines()
    assert SECRET not in result.output


def test_every_setting_has_a_description() -> None:
    table = settings_markdown()
    rows = [line for line in table.splitlines() if line.startswith("| `PENDINGTX_")]
    assert len(rows) == len(setting_variables())
    for row in rows:
        assert re.fullmatch(r"\| `PENDINGTX_[A-Z_]+` \| .+ \| .{10,} \|", row), row


def test_the_readme_table_is_the_one_generated_from_the_settings() -> None:
    """README.md's table is `pendingtx settings --markdown`: regenerate it when a setting changes."""
    readme = README.read_text()
    start = readme.index("<!-- settings:start -->\n") + len("<!-- settings:start -->\n")
    end = readme.index("<!-- settings:end -->")
    assert readme[start:end] == settings_markdown()
    result = CliRunner().invoke(main, ["settings", "--markdown"])
    assert result.output == settings_markdown()
