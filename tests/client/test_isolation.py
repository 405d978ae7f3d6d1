"""The SDK never imports the server: it works where only httpx and msgspec are installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SERVER_DEPENDENCIES = [
    "starlette",
    "sqlalchemy",
    "uvicorn",
    "alembic",
    "argon2",
    "psycopg",
    "jsonpatch",
    "pycountry",
]
SERVER_MODULES = [
    "pendingtx.api",
    "pendingtx.services",
    "pendingtx.storage",
    "pendingtx.worker",
    "pendingtx.bootstrap",
]


def run_isolated(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter in which the server's dependencies cannot be imported."""
    prelude = f"""
        import sys
        for name in {SERVER_DEPENDENCIES!r}:
            sys.modules[name] = None  # `import name` now raises ImportError
    """
    script = textwrap.dedent(prelude) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_sdk_imports_only_httpx_msgspec_and_the_standard_library() -> None:
    blocked = [*SERVER_MODULES, "pendingtx.domain", "pendingtx.config", "click", "rich"]
    done = run_isolated(f"""
        for name in {blocked!r}:
            sys.modules[name] = None
        import pendingtx.client
        from pendingtx.client import *
        from pendingtx.client import Client
        Client("http://127.0.0.1:9", "key", "secret").close()
        loaded = sorted(m for m in sys.modules if m.startswith("pendingtx") and sys.modules[m] is not None)
        print(" ".join(loaded))
    """)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert "pendingtx.client._client" in loaded
    assert all(name == "pendingtx" or name.startswith("pendingtx.client") for name in loaded), loaded


def test_the_client_commands_work_without_the_server_dependencies(tmp_path: Path) -> None:
    done = run_isolated(f"""
        import os
        os.environ.pop("PENDINGTX_URL", None)
        os.environ.pop("PENDINGTX_APP_KEY", None)
        os.environ.pop("PENDINGTX_APP_SECRET", None)
        os.environ.pop("PENDINGTX_PROFILE", None)
        os.environ["XDG_CONFIG_HOME"] = {str(tmp_path)!r}
        from click.testing import CliRunner
        from pendingtx.cli import main
        runner = CliRunner()
        for args in (["submit", "--help"], ["status", "--help"], ["transactions", "list", "--help"]):
            assert runner.invoke(main, args).exit_code == 0, args
        result = runner.invoke(main, ["status", "KEY", "--url", "http://127.0.0.1:9", "--app-key", "k"])
        print(result.exit_code, "app_secret" in result.output)
        import pendingtx.client_cli.jobs, pendingtx.client_cli.listing
        print(sorted(m for m in {SERVER_MODULES!r} if sys.modules.get(m) is not None))
    """)
    assert done.returncode == 0, done.stderr
    exit_code, server_modules = done.stdout.splitlines()
    assert exit_code == "2 True"  # missing credentials, found without importing the server
    assert server_modules == "[]"
