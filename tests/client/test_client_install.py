"""pendingtx-client installed alone, from this checkout, into a fresh virtualenv, used against a real server.

The virtualenv has no pip and nothing but what installing the client brings: its five dependencies
and theirs. This process's pip installs into it (`pip --python`), from the indexes and cache that
pip is configured with, the way a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BASE_SETTINGS
from tests.e2e.server import Server, create_app_via_cli, subprocess_env
from tests.support import record

pytestmark = pytest.mark.e2e

CHECKOUT = Path(__file__).resolve().parents[2]
CLIENT_PROJECT = CHECKOUT / "clients" / "python"
SERVER_DISTRIBUTIONS = {
    "pendingtx", "starlette", "uvicorn", "sqlalchemy", "alembic", "argon2-cffi", "psycopg", "jsonpatch",
    "pycountry", "limits", "prometheus-client", "cryptography",
}  # fmt: skip


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv (without pip) holding only pendingtx-client and what it depends on."""
    venv = tmp_path_factory.mktemp("client-only") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    install = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "--quiet",
        str(CLIENT_PROJECT),
    ]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return venv


def in_venv(venv: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a program of the virtualenv, with a clean environment and outside the checkout."""
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=venv,  # so that nothing of the checkout is importable through the working directory
        env={**subprocess_env(), "PYTHONPATH": "", **(env or {})},
    )


def test_only_the_client_and_its_dependencies_are_installed(client_venv: Path) -> None:
    done = in_venv(
        client_venv,
        "python",
        "-c",
        textwrap.dedent("""
            import importlib.metadata as md, importlib.util, json
            print(json.dumps({
                "installed": sorted(d.metadata["Name"].lower() for d in md.distributions()),
                "requires": md.requires("pendingtx-client"),
                "server": importlib.util.find_spec("pendingtx") is not None,
            }))
        """),
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert not found["server"]
    assert not SERVER_DISTRIBUTIONS & set(found["installed"]), found["installed"]
    assert {"pendingtx-client", "httpx", "msgspec", "click", "rich"} <= set(found["installed"])
    assert sorted(r.split(">")[0] for r in found["requires"]) == [
        "click",
        "httpx",
        "msgspec",
        "rich",
        "standardwebhooks",
    ]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A real server (from this checkout's environment) and an application registered on it."""
    database_url = f"sqlite:///{tmp_path / 'client-only.db'}"
    server = Server(database_url, tmp_path / "server.log", BASE_SETTINGS)
    try:
        server.wait_healthy()
        yield server, create_app_via_cli(database_url, name="client-only", org="client-only")
    finally:
        server.stop()


def test_the_client_alone_works_against_a_real_server(
    client_venv: Path, served: tuple[Server, dict[str, Any]], tmp_path: Path
) -> None:
    server, app = served
    env = {
        "PENDINGTX_URL": server.base_url,
        "PENDINGTX_APP_KEY": app["appKey"],
        "PENDINGTX_APP_SECRET": app["appSecret"],
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([record("ALONE-1", amount="12.34"), record("ALONE-2", amount=-1)]))

    submitted = in_venv(client_venv, "pendingtx-client", "submit", str(batch), "--wait", env=env)
    assert submitted.returncode == 1, submitted.stderr  # one record rejected
    assert "1 job(s), 2 record(s), 1 rejected" in submitted.stdout

    cancelled = in_venv(
        client_venv, "pendingtx-client", "transactions", "cancel", "ALONE-1", "--wait", env=env
    )
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr

    sdk = in_venv(
        client_venv,
        "python",
        "-c",
        textwrap.dedent("""
            import asyncio
            import pendingtx_client
            from pendingtx_client import AsyncClient, Client
            print(pendingtx_client.__file__)
            with Client.from_env() as api:
                print(api.get_transaction("ALONE-1").status)
            async def main():
                async with AsyncClient.from_env() as api:
                    print([t.external_id async for t in api.transactions()])
            asyncio.run(main())
        """),
        env=env,
    )
    assert sdk.returncode == 0, sdk.stderr
    imported_from, *printed = sdk.stdout.splitlines()
    assert Path(imported_from).is_relative_to(client_venv)  # the installed copy, not the checkout's
    assert printed == ["Cancel", "['ALONE-1']"]
