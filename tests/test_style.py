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


def _layout_names(readme: Path) -> set[str]:
    """Every name in backticks in the first column of the README's layout table."""
    text = readme.read_text().split("## Layout", 1)[1]
    names = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            names.update(part.split("`")[0] for part in first_column.split("`")[1::2])
    return names


@pytest.mark.parametrize(
    "package, readme", [("ms_droplet", "README.md"), ("benchmarks", "benchmarks/README.md")]
)
def test_the_readme_layout_names_every_module(package, readme):
    listed = {Path(name).name for name in _layout_names(ROOT / readme)}
    modules = {
        path.name
        for path in (ROOT / package).glob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    }
    missing = sorted(modules - listed)
    assert not missing, f"{readme}'s layout table does not list {missing}"


def test_the_readme_options_table_names_every_option():
    from ms_droplet.options import OPTIONS

    table = (ROOT / "README.md").read_text().split("| option | default | meaning |", 1)[1]
    listed = []
    for line in table.splitlines()[2:]:
        if not line.startswith("| `"):
            break
        listed.append(line.split("`")[1])
    assert listed == [option.name for option in OPTIONS]
