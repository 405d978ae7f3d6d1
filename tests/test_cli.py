"""The `pendingtx` command line, run in-process on a temporary SQLite file."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from pendingtx import errors
from pendingtx.bootstrap import Runtime, build_runtime
from pendingtx.cli import main
from pendingtx.config import Settings
from pendingtx.domain.credentials import PRODUCT
from pendingtx.services import credentials
from pendingtx.storage import apps as app_repo


@pytest.fixture(autouse=True)
def no_settings_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test passes reaches the CLI, never a PENDINGTX_* variable of the caller's shell."""
    for name in list(os.environ):
        if name.startswith("PENDINGTX_"):
            monkeypatch.delenv(name)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def rt(db_url: str) -> Iterator[Runtime]:
    runtime = build_runtime(Settings(database_url=db_url))
    yield runtime
    runtime.close()


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def create_json(db_url: str, *extra: str, name: str = "ops-app") -> dict[str, Any]:
    created: dict[str, Any] = json.loads(
        ok("apps", "create", "--name", name, "--json", "--database-url", db_url, *extra)
    )
    return created


def listed(db_url: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok("apps", "list", "--json", "--database-url", db_url))
    return rows


def test_apps_create_json_prints_exactly_key_secret_and_organization(db_url: str, rt: Runtime) -> None:
    created = create_json(db_url)
    assert list(created) == ["appKey", "appSecret", "organization"]
    assert created["organization"] == "default"
    found = credentials.authenticate_client(
        rt.uow, rt.abuse.secret_checks, app_key=created["appKey"], app_secret=created["appSecret"]
    )
    assert (found.name, found.org_name, found.products) == ("ops-app", "default", (PRODUCT,))


def test_apps_create_text_shows_the_secret_once(db_url: str, rt: Runtime) -> None:
    out = ok("apps", "create", "--name", "text-app", "--org", "acme", "--database-url", db_url)
    fields = dict(
        line.split(":", 1) for line in out.splitlines() if line.startswith(("AppKey:", "AppSecret:"))
    )
    app_key, app_secret = fields["AppKey"].strip(), fields["AppSecret"].strip()
    assert "text-app (organization acme; products pending-transactions)" in out
    assert "cannot be shown again" in out
    credentials.authenticate_client(rt.uow, rt.abuse.secret_checks, app_key=app_key, app_secret=app_secret)


def test_org_is_created_on_first_use_and_reused(db_url: str, rt: Runtime) -> None:
    first = create_json(db_url, "--org", "acme", name="one")
    second = create_json(db_url, "--org", "acme", name="two")
    third = create_json(db_url, "--org", "globex", name="three")
    assert [first["organization"], second["organization"], third["organization"]] == [
        "acme",
        "acme",
        "globex",
    ]
    with rt.engine.connect() as conn:
        orgs = conn.exec_driver_sql("SELECT name FROM organizations ORDER BY id").scalars().all()
        app_orgs = conn.exec_driver_sql("SELECT name, org_id FROM apps ORDER BY id").all()
    assert orgs == ["acme", "globex"]
    assert app_orgs[0][1] == app_orgs[1][1] != app_orgs[2][1]


def test_product_option_may_be_repeated(db_url: str) -> None:
    create_json(db_url, "--product", PRODUCT, "--product", "other-product", name="two-products")
    create_json(db_url, "--product", "other-product", name="not-entitled")
    create_json(db_url, name="default-product")
    assert [(row["name"], row["products"]) for row in listed(db_url)] == [
        ("two-products", ["other-product", PRODUCT]),
        ("not-entitled", ["other-product"]),
        ("default-product", [PRODUCT]),
    ]


def test_apps_list_never_prints_secrets(db_url: str) -> None:
    apps = [create_json(db_url, name=f"app-{i}") for i in range(2)]
    text = ok("apps", "list", "--database-url", db_url)
    as_json = ok("apps", "list", "--json", "--database-url", db_url)
    for app in apps:
        assert app["appKey"] in text
        assert app["appKey"] in as_json
        assert app["appSecret"] not in text
        assert app["appSecret"] not in as_json
    assert "argon2" not in text + as_json  # nor the hashes
    assert set(json.loads(as_json)[0]) == {
        "appKey",
        "name",
        "organization",
        "products",
        "disabled",
        "allowedIps",
    }
    assert [line.split()[2] for line in text.splitlines()] == ["enabled", "enabled"]


def test_apps_list_of_an_empty_database_prints_nothing(db_url: str) -> None:
    assert ok("apps", "list", "--database-url", db_url) == ""
    assert listed(db_url) == []


def test_apps_disable_stops_the_credentials(db_url: str, rt: Runtime) -> None:
    app = create_json(db_url)
    credentials.authenticate_client(
        rt.uow, rt.abuse.secret_checks, app_key=app["appKey"], app_secret=app["appSecret"]
    )
    assert (
        ok("apps", "disable", app["appKey"], "--database-url", db_url).strip() == f"disabled {app['appKey']}"
    )
    with pytest.raises(errors.InvalidClient):
        credentials.authenticate_client(
            rt.uow, rt.abuse.secret_checks, app_key=app["appKey"], app_secret=app["appSecret"]
        )
    assert listed(db_url)[0]["disabled"] is True


def test_apps_disable_of_an_unknown_key_fails(db_url: str) -> None:
    result = cli("apps", "disable", "no-such-key", "--database-url", db_url)
    assert result.exit_code == 1
    assert "no application with AppKey no-such-key" in result.stderr
    assert result.stdout == ""


# --- IP allow-lists -------------------------------------------------------------------------------


def allowed_of(db_url: str, app_key: str) -> list[str]:
    (row,) = [r for r in listed(db_url) if r["appKey"] == app_key]
    return list(row["allowedIps"])


def test_apps_create_takes_allow_ips(db_url: str) -> None:
    app = create_json(
        db_url, "--allow-ip", "10.1.2.3/8", "--allow-ip", "192.0.2.7", "--allow-ip", "2001:db8::/32"
    )
    assert list(app) == ["appKey", "appSecret", "organization"]
    assert allowed_of(db_url, app["appKey"]) == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
    out = ok("apps", "create", "--name", "text-app", "--allow-ip", "10.0.0.0/8", "--database-url", db_url)
    assert "Allowed from: 10.0.0.0/8" in out


def test_without_allow_ips_an_app_accepts_any_address(db_url: str) -> None:
    app = create_json(db_url)
    assert allowed_of(db_url, app["appKey"]) == []
    out = ok("apps", "create", "--name", "text-app", "--database-url", db_url)
    assert "Allowed from: any address" in out
    assert ok("apps", "list", "--database-url", db_url).splitlines()[0].endswith("ips:any")


def test_apps_list_shows_allow_lists(db_url: str) -> None:
    listed_app = create_json(db_url, "--allow-ip", "10.0.0.0/8", "--allow-ip", "::1", name="listed")
    open_app = create_json(db_url, name="open")
    lines = ok("apps", "list", "--database-url", db_url).splitlines()
    assert lines[0].startswith(listed_app["appKey"])
    assert lines[0].endswith("ips:10.0.0.0/8,::1/128")
    assert lines[1].startswith(open_app["appKey"])
    assert lines[1].endswith("ips:any")


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "not-an-ip", "2001:db8::/200", ""])
def test_a_bad_allow_ip_is_a_usage_error(db_url: str, bad: str) -> None:
    result = cli("apps", "create", "--name", "x", "--allow-ip", bad, "--database-url", db_url)
    assert result.exit_code == 2
    assert "is not an IP address or CIDR network" in result.stderr
    result = cli("apps", "list", "--json", "--database-url", db_url)
    assert json.loads(result.stdout) == []


def test_apps_update_replaces_and_clears_the_allow_list(db_url: str, rt: Runtime) -> None:
    app = create_json(db_url, "--allow-ip", "10.0.0.0/8")
    key = app["appKey"]
    out = ok(
        "apps",
        "update",
        key,
        "--allow-ip",
        "192.0.2.0/24",
        "--allow-ip",
        "2001:db8::1",
        "--database-url",
        db_url,
    )
    assert out.strip() == f"updated {key}: allowed from 192.0.2.0/24, 2001:db8::1/128"
    assert allowed_of(db_url, key) == ["192.0.2.0/24", "2001:db8::1/128"]
    out = ok("apps", "update", key, "--clear-allow-ips", "--database-url", db_url)
    assert out.strip() == f"updated {key}: allowed from any address"
    assert allowed_of(db_url, key) == []
    with rt.uow.read() as conn:
        found = app_repo.find_app(conn, key)
    assert found is not None
    assert found.allowed_networks is None


def test_apps_update_needs_exactly_one_change(db_url: str) -> None:
    key = create_json(db_url)["appKey"]
    for args in ((), ("--allow-ip", "10.0.0.0/8", "--clear-allow-ips")):
        result = cli("apps", "update", key, *args, "--database-url", db_url)
        assert result.exit_code == 2
        assert "either --allow-ip" in result.stderr
    result = cli("apps", "update", key, "--allow-ip", "nonsense", "--database-url", db_url)
    assert result.exit_code == 2
    assert allowed_of(db_url, key) == []


def test_apps_update_of_an_unknown_key_fails(db_url: str) -> None:
    result = cli("apps", "update", "no-such-key", "--clear-allow-ips", "--database-url", db_url)
    assert result.exit_code == 1
    assert "no application with AppKey no-such-key" in result.stderr
    assert result.stdout == ""


def test_a_bad_trusted_proxy_setting_is_a_usage_error(db_url: str) -> None:
    result = cli("apps", "list", "--database-url", db_url, env={"PENDINGTX_TRUSTED_PROXIES": "10.0.0.0/8,x"})
    assert result.exit_code == 2
    assert result.stderr == "Error: PENDINGTX_TRUSTED_PROXIES: 'x' is not an IP address or CIDR network\n"


def test_db_upgrade_creates_the_schema_and_can_run_again(db_url: str) -> None:
    assert ok("db", "upgrade", "--database-url", db_url).strip() == "database is up to date"
    assert ok("db", "upgrade", "--database-url", db_url).strip() == "database is up to date"
    engine = sa.create_engine(db_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    expected = {"organizations", "apps", "entitlements", "tokens", "jobs", "job_problems", "transactions"}
    assert expected <= tables
    assert "alembic_version" in tables


def test_database_url_may_come_from_the_environment(db_url: str) -> None:
    result = cli("db", "upgrade", env={"PENDINGTX_DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    assert Path(db_url.removeprefix("sqlite:///")).exists()


def test_an_unusable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = cli("db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot use the database"), result.stderr
    assert "Traceback" not in result.output
    result = cli("db", "upgrade", "--database-url", "not a url")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: PENDINGTX_DATABASE_URL: unsupported database 'not a url'")


def test_an_invalid_setting_is_a_usage_error(db_url: str) -> None:
    result = cli("db", "upgrade", "--database-url", db_url, env={"PENDINGTX_WORKER_CHUNK_SIZE": "many"})
    assert result.exit_code == 2
    assert result.stderr == "Error: PENDINGTX_WORKER_CHUNK_SIZE: expected `int`, got `str`, not 'many'\n"


def test_serve_refuses_an_unknown_log_level_before_starting(db_url: str) -> None:
    result = cli("serve", "--database-url", db_url, env={"PENDINGTX_LOG_LEVEL": "loud"})
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: PENDINGTX_LOG_LEVEL: must be one of critical, error")


def test_serve_help_shows_the_options() -> None:
    out = ok("serve", "--help")
    for option in ("--host", "--port", "--database-url", "--no-worker"):
        assert option in out
    assert "127.0.0.1" in out
    assert "8000" in out


def test_serve_refuses_an_unknown_http_server(db_url: str) -> None:
    result = cli("serve", "--database-url", db_url, "--http-server", "hypercorn")
    assert result.exit_code == 2
    assert "'hypercorn' is not one of 'uvicorn', 'granian'" in result.stderr
    result = cli("serve", "--database-url", db_url, env={"PENDINGTX_HTTP_SERVER": "hypercorn"})
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: PENDINGTX_HTTP_SERVER: invalid enum value 'hypercorn'")


def test_serve_on_granian_without_granian_installed_says_how_to_install_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "granian" else real(name))
    result = cli("serve", "--database-url", db_url, "--http-server", "granian")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: PENDINGTX_HTTP_SERVER: granian is not installed; pip install 'pendingtx[granian]'\n"
    )


def test_worker_help() -> None:
    out = ok("worker", "--help")
    assert "--database-url" in out
    assert "SIGTERM" in out


def test_version() -> None:
    assert "0.1.0" in ok("--version")


def test_serve_sandbox_refuses_a_database_used_without_it_in_one_line(db_url: str) -> None:
    create_json(db_url)
    result = cli("serve", "--sandbox", "--database-url", db_url)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: this database has been used without sandbox mode")
    assert result.stderr.count("\n") == 1


def test_serve_refuses_a_sandbox_database_in_one_line(db_url: str) -> None:
    # The other commands follow the setting: this application is made in a sandbox.
    created = cli(
        "apps", "create", "--name", "demo", "--database-url", db_url, env={"PENDINGTX_SANDBOX": "true"}
    )
    assert created.exit_code == 0, created.output
    result = cli("serve", "--database-url", db_url)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: this database is a sandbox's")
    assert result.stderr.count("\n") == 1
    assert cli("apps", "list", "--database-url", db_url).exit_code == 2
