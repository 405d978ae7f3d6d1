"""README.md's examples, run as written: every `sh` and `python` block in order, in one shell, against
a real server; then each block marked `output` must be what they printed (`…` stands for any text).

Blocks fenced as `console` are shown, never run (they start servers or install packages).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.server import Server, subprocess_env

README = Path(__file__).parents[2] / "README.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[list[str], str]]:
    """Each fenced block of the README: its info string's words, and its text."""
    return [(info.split(), body) for info, body in FENCE.findall(README.read_text())]


def script() -> str:
    """The runnable blocks, in order, as one bash script (python blocks through the interpreter)."""
    parts = []
    for info, body in blocks():
        if info == ["sh"]:
            parts.append(body)
        elif info == ["python"]:
            parts.append(f".venv/bin/python - <<'README_PYTHON'\n{body}README_PYTHON\n")
    return "\n".join(parts) + "echo README-DONE\n"


def expected_lines() -> list[str]:
    """The lines the output blocks show: a JSON document wrapped over lines is one line of output."""
    lines = []
    for info, body in blocks():
        if info[1:] != ["output"]:
            continue
        if info[0] == "json":
            lines += [re.sub(r"\n\s*", "", doc) for doc in re.split(r"\n(?=\{)", body.strip())]
        else:
            lines += body.rstrip("\n").split("\n")
    return lines


def matches(shown: str, printed: list[str]) -> bool:
    pattern = re.compile(".*?".join(re.escape(part) for part in shown.split("…")))
    return any(pattern.fullmatch(line.rstrip()) for line in printed)


def test_every_block_is_run_or_marked() -> None:
    kinds = {tuple(info) for info, _ in blocks()}
    assert kinds <= {("sh",), ("python",), ("console",), ("json", "output"), ("text", "output"), ("toml",)}, (
        kinds
    )
    assert ("sh",) in kinds
    assert ("python",) in kinds


@pytest.mark.e2e
def test_the_readme_examples_print_what_the_readme_shows(tmp_path: Path) -> None:
    # The examples call .venv/bin/...; here that is this interpreter's, in a scratch directory, so
    # that whatever they write lands there and nowhere near the checkout.
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    database_url = f"sqlite:///{tmp_path / 'readme.db'}"
    server = Server(database_url, tmp_path / "server.log", {"PENDINGTX_LOG_LEVEL": "warning"})
    try:
        server.wait_healthy()
        env = subprocess_env({"PENDINGTX_DATABASE_URL": database_url, "PORT": str(server.port)})
        env["COLUMNS"] = "120"
        done = subprocess.run(
            ["bash", "-u", "-o", "pipefail"],
            input=script(),
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            check=False,
        )
    finally:
        server.stop()
    printed = done.stdout.splitlines()
    assert printed[-1:] == ["README-DONE"], done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "command not found" not in done.stderr, done.stderr
    missing = [line for line in expected_lines() if not matches(line, printed)]
    assert missing == [], f"README shows lines the examples did not print:\n{done.stdout}\n{done.stderr}"
    assert sorted(os.listdir(work)) == [".venv"]
