"""The client package never imports the server: it works where only its five dependencies are installed.

tests/client/test_client_install.py installs it alone into a fresh virtualenv; these tests check the
same from the source, quickly, in every run.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pendingtx_client

CLIENT_SOURCE = Path(pendingtx_client.__file__).parent
CLIENT_DEPENDENCIES = {"httpx", "msgspec", "click", "rich", "standardwebhooks"}
SERVER_DEPENDENCIES = [
    "starlette",
    "sqlalchemy",
    "uvicorn",
    "alembic",
    "argon2",
    "psycopg",
    "jsonpatch",
    "pycountry",
    "limits",
    "cryptography",
]


def run_isolated(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter in which neither the server nor its dependencies can be imported."""
    prelude = f"""
        import sys
        for name in {["pendingtx", *SERVER_DEPENDENCIES]!r}:
            sys.modules[name] = None  # `import name` now raises ImportError
    """
    script = textwrap.dedent(prelude) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_client_source_imports_only_its_dependencies_and_the_standard_library() -> None:
    files = sorted(CLIENT_SOURCE.rglob("*.py"))
    assert len(files) > 10, CLIENT_SOURCE
    allowed = CLIENT_DEPENDENCIES | set(sys.stdlib_module_names) | {"pendingtx_client"}
    for path in files:
        outside = _imported_roots(path) - allowed
        assert not outside, f"{path.relative_to(CLIENT_SOURCE)} imports {sorted(outside)}"


def test_the_sdk_imports_neither_the_server_nor_click_and_rich() -> None:
    done = run_isolated("""
        sys.modules["click"] = sys.modules["rich"] = None
        import asyncio
        from pendingtx_client import *
        from pendingtx_client import AsyncClient, Client
        Client("http://127.0.0.1:9", "key", "secret").close()
        asyncio.run(AsyncClient("http://127.0.0.1:9", "key", "secret").aclose())
        print(" ".join(sorted(m for m, mod in sys.modules.items() if m.startswith("pendingtx") and mod)))
    """)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert "pendingtx_client._sync" in loaded
    assert all(name.startswith("pendingtx_client") for name in loaded), loaded


def test_the_client_commands_work_without_the_server(tmp_path: Path) -> None:
    done = run_isolated(f"""
        import os
        for name in [n for n in os.environ if n.startswith("PENDINGTX_")]:
            del os.environ[name]
        os.environ["XDG_CONFIG_HOME"] = {str(tmp_path)!r}
        from click.testing import CliRunner
        from pendingtx_client.cli.commands import main
        runner = CliRunner()
        commands = [["submit"], ["status"], *(["transactions", c] for c in "list get patch cancel".split())]
        for args in [["--help"], *([*command, "--help"] for command in commands)]:
            result = runner.invoke(main, args)
            assert result.exit_code == 0, (args, result.output)
        result = runner.invoke(main, ["status", "KEY", "--url", "http://127.0.0.1:9", "--app-key", "k"])
        print(result.exit_code, "app_secret" in result.output)
        import pendingtx_client.cli.connection, pendingtx_client.cli.jobs, pendingtx_client.cli.listing
        print(sorted(m for m, module in sys.modules.items() if m.split(".")[0] == "pendingtx" and module))
    """)
    assert done.returncode == 0, done.stderr
    exit_code, server_modules = done.stdout.splitlines()
    assert exit_code == "2 True"  # missing credentials, found without importing the server
    assert server_modules == "[]"


def test_the_server_command_line_has_every_client_command() -> None:
    from pendingtx.cli import main as server_main
    from pendingtx_client.cli.commands import main as client_main

    assert set(client_main.commands) <= set(server_main.commands)
    assert {"serve", "worker", "apps", "submit", "status", "transactions"} <= set(server_main.commands)


def test_the_old_import_path_is_the_same_sdk() -> None:
    import pendingtx.client

    assert pendingtx.client.Client is pendingtx_client.Client
    assert set(pendingtx.client.__all__) == set(pendingtx_client.__all__)


def test_the_server_requires_the_client_of_the_same_release() -> None:
    """Both are released together from this repository: the server pins the client's version."""
    checkout = Path(__file__).resolve().parents[2]
    server = tomllib.loads((checkout / "pyproject.toml").read_text())["project"]
    client = tomllib.loads((checkout / "clients" / "python" / "pyproject.toml").read_text())["project"]
    assert f"pendingtx-client=={client['version']}" in server["dependencies"]
    assert sorted(client["dependencies"]) == sorted(
        ["httpx>=0.28", "msgspec>=0.19", "click>=8.1", "rich>=13", "standardwebhooks>=1.1"]
    )
    assert client["scripts"] == {"pendingtx-client": "pendingtx_client.cli.commands:main"}
