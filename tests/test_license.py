"""The LICENSE file is the license pyproject.toml declares."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
# The MD5 of the standard text of https://www.apache.org/licenses/LICENSE-2.0.txt.
APACHE_2_0_MD5 = "3b83ef96387f14655fc854ddc3c6bd57"


def test_license_file_is_the_declared_apache_2_0() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "Apache-2.0"
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.md5(text).hexdigest() == APACHE_2_0_MD5
