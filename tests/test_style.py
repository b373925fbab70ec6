"""The code follows TVM's ruff settings (see pyproject.toml)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_ruff_is_clean():
    for args in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run(["ruff", *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_source_file_carries_the_license_header():
    for path in sorted((ROOT / "ms_droplet").rglob("*.py")):
        head = path.read_text().splitlines()[:3]
        assert head and head[0].startswith("# Licensed to the Apache Software Foundation"), path
