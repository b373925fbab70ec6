# Licensed to the Apache Software Foundation (ASF) under one
# or more contributor license agreements.  See the NOTICE file
# distributed with this work for additional information
# regarding copyright ownership.  The ASF licenses this file
# to you under the Apache License, Version 2.0 (the
# "License"); you may not use this file except in compliance
# with the License.  You may obtain a copy of the License at
#
#   http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an
# "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
# KIND, either express or implied.  See the License for the
# specific language governing permissions and limitations
# under the License.
"""The upstream patch: folded from this package, applied to a copy of the installed TVM's sources.

The installed wheel's ``tvm/`` mirrors apache/tvm's ``python/tvm/``, so a copy of it at
``DIR/python/tvm`` is the TVM source tree CI has: the patch is exported against it, applied with
``git apply``, linted with TVM's ruff settings, and its test file run with the patched files in
front of the installed TVM.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tvm

from ms_droplet import droplet, stats
from ms_droplet.cli import main
from ms_droplet.upstream import TEST_PATH, UPSTREAM_PATH
from ms_droplet.upstream.description import figures
from ms_droplet.upstream.edits import UpstreamSourceError, apply_edits
from ms_droplet.upstream.fold import FoldError, _check_no_shadowing, fold_strategy, tvm_ruff


def _copy_installed_tvm(root: Path) -> None:
    """``root/python/tvm``: the installed package, Python files copied and the rest linked."""

    def copy(source: str, target: str) -> None:
        if source.endswith(".py"):
            shutil.copy2(source, target)
        else:
            os.symlink(source, target)

    shutil.copytree(
        Path(tvm.__file__).parent,
        root / "python" / "tvm",
        copy_function=copy,
        ignore=shutil.ignore_patterns("__pycache__"),
    )


@pytest.fixture(scope="module")
def patched_tvm(tmp_path_factory):
    """A copy of the installed TVM's sources with the exported patch applied by git."""
    root = tmp_path_factory.mktemp("tvm_source")
    _copy_installed_tvm(root)
    out = root.parent / "droplet.patch"
    description = root.parent / "PR.md"
    argv = ["export-patch", "--tvm-source", str(root), "--out", str(out)]
    assert main([*argv, "--pr-description", str(description)]) == 0
    for check in (["--check"], []):
        done = subprocess.run(
            ["git", "apply", *check, str(out)], cwd=root, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    return root, out.read_text(), description.read_text()


def test_folded_module_is_the_package_source_in_one_namespace():
    text = fold_strategy()
    tree = ast.parse(text)
    # Nothing of the package's own world: its name, its benchmarks, its TVM indirection.
    assert "ms_droplet" not in text and "benchmarks/" not in text and "_tvm." not in text
    defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert len(defined) == len(set(defined))
    assert {"DropletSearch", "DropletTask", "Droplet", "DecisionSpace"} <= set(defined)
    # The package's command line and reports stay out: only what DropletSearch reaches folds.
    assert "post_optimize" not in defined and "build_parser" not in defined
    # Pure modules fold unchanged: the upstream code is this code.
    for function in (droplet.Droplet, stats.is_significantly_faster, stats.welch_p_value):
        assert inspect.getsource(function) in text
    # MetaSchedule classes named only in annotations are imported for type checkers only.
    type_checking = next(node for node in tree.body if isinstance(node, ast.If))
    assert "CostModel" in ast.unparse(type_checking)


def test_fold_refuses_a_local_that_would_hide_a_tvm_helper():
    source = "def f(mod):\n    module_hash = _tvm.module_hash(mod)\n    return module_hash\n"
    with pytest.raises(FoldError, match="module_hash"):
        _check_no_shadowing(Path("descents.py"), ast.parse(source))


def test_an_edit_whose_anchor_moved_names_the_file():
    with pytest.raises(UpstreamSourceError, match="pipeline.py.*found 0 times"):
        apply_edits("python/tvm/relax/pipeline.py", "def static_shape_tuning_pipeline(): ...\n")


def test_export_patch_refuses_a_tree_that_is_not_tvm(tmp_path, capsys):
    out = tmp_path / "droplet.patch"
    assert main(["export-patch", "--tvm-source", str(tmp_path), "--out", str(out)]) == 2
    assert "is not an apache/tvm source tree" in capsys.readouterr().err
    assert not out.exists()
    nowhere = tmp_path / "missing" / "droplet.patch"
    assert main(["export-patch", "--tvm-source", str(tmp_path), "--out", str(nowhere)]) == 2
    assert "its folder does not exist" in capsys.readouterr().err


def test_the_description_gives_each_geomean_its_interval_where_the_summary_has_one(tmp_path):
    model = {
        "droplet_over_evolutionary_N": 0.9361,
        "droplet_over_evolutionary_3N": 0.9911,
        "wall_over_evolutionary_N": 0.6677,
        "interval_95": {
            "droplet_over_evolutionary_N": [0.8756, 1.0008],
            "droplet_over_evolutionary_3N": [0.9336, 1.0522],
        },
    }
    e2e = {"commit": "a" * 40, "seeds": [0, 1, 2, 3], "models": {"transformer": model}}
    kernels = {
        "commit": "b" * 40,
        "seeds": [0, 1],
        "geomean": {"equal_budget": 1.0061, "budget": 1.0158, "wall": 0.1818, "overhead_pct": 1.36},
        "interval_95": {"equal_budget": [0.9751, 1.0381], "budget": None},
        "workloads": {"GMM:2": {}, "C1D:0": {}},
    }
    # A summary written before the harness gave intervals, of runs tuned on two commits.
    cuda = {**kernels, "commit": f"{'c' * 40}, {'d' * 40}", "seeds": [0]}
    cuda["geomean"] = {"equal_budget": 0.972}
    del cuda["interval_95"]
    for name, document in (("e2e", e2e), ("standard", kernels), ("cuda", cuda)):
        (tmp_path / f"{name}-summary.json").write_text(json.dumps(document))
    text = figures(tmp_path)
    assert (
        "| transformer | aaaaaaaaaa | 0, 1, 2, 3 | 0.936 (0.876 - 1.001) | 0.991 (0.934 - 1.052) "
        "| 0.668 |" in text
    )
    assert "| bbbbbbbbbb | 0, 1 | 2 | 1.006 (0.975 - 1.038) | 1.016 | 0.182 | 1.360 |" in text
    assert "| cccccccccc, dddddddddd | 0 | 2 | 0.972 | - | - | - |" in text


def test_patch_applies_to_the_installed_tvm_and_passes_tvm_ruff(patched_tvm):
    root, patch, description = patched_tvm
    assert f"new file mode 100644\n--- /dev/null\n+++ b/{UPSTREAM_PATH}" in patch
    assert f"+++ b/{TEST_PATH}" in patch
    assert "+++ b/python/tvm/relax/transform/transform.py" in patch
    # The wheel has no documentation: its optional edit is left out, not an error.
    assert "docs/" not in patch
    changed = [line[len("+++ b/") :] for line in patch.splitlines() if line.startswith("+++ b/")]
    for command in (tvm_ruff("check"), tvm_ruff("format", "--check")):
        done = subprocess.run([*command, *changed], cwd=root, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert description.startswith("# [MetaSchedule] ")
    assert "| against N | against 3N |" in description  # e2e-summary.json's figures


@pytest.mark.tuning
def test_upstream_test_file_passes_against_the_installed_tvm(patched_tvm, tmp_path):
    root, _, _ = patched_tvm
    env = {**os.environ, "PYTHONPATH": str(root / "python")}
    # Without pytest's logging plugin, as this project's own suite runs (see pyproject.toml):
    # pytest >= 9.1 breaks a second tuning run in one process through TVM's create_loggers.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:logging"]
    done = subprocess.run(
        [*command, str(root / TEST_PATH)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    # Its first test also shows that ms_droplet's plugin stepped aside: create("droplet") gave
    # the patched TVM's own DropletSearch.
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "6 passed" in done.stdout
