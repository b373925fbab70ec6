"""End to end on llvm: real builder, runner and JSON database, strategy chosen by name.

The tuning runs in a child process that never imports ms_droplet: strategy="droplet" must
resolve through TVM's ``tvm.backends`` entry point alone.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import database_programs, descent_programs, run_child

SCRIPT = Path(__file__).parent / "scripts" / "tune_by_name.py"
pytestmark = pytest.mark.tuning


@pytest.mark.parametrize(("mode", "budget"), [("tir", 16), ("relax", 12)])
def test_tune_by_name_runs_the_descent_within_the_budget(tmp_path, mode, budget):
    out = run_child([str(SCRIPT), mode, str(tmp_path / "work")], cwd=tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["autoloaded"], "TVM's entry point did not load ms_droplet"
    # Every trial of the budget was measured and recorded, no more.
    assert result["records"] == budget
    # The tuned program computes what numpy computes.
    assert result["max_abs_error"] < 1e-3
    # The descent phase ran, and what it proposed went through the user's database.
    hashes, descended = descent_programs(tmp_path / "work")
    records, recorded = database_programs(tmp_path / "work")
    assert len(records) == budget
    assert descended > 0 and len(hashes) == descended
    assert hashes <= recorded


# The TIR path of the command (GMM:0) is checked, to the end, by the resume test.
@pytest.mark.parametrize("workload", ["mlp"])
def test_cli_tunes_checks_and_reports(tmp_path, workload):
    out = run_child(
        ["-m", "ms_droplet.cli", "tune", workload, "--trials", "8", "--per-iter", "4", "--json"],
        cwd=tmp_path,
    )
    result = json.loads(out[out.index("{") :])
    assert result["workload"] == workload and result["strategy"] == "droplet"
    assert result["records"] == 8 and result["resumed_from"] == 0
    assert result["reference"] == "numpy" and result["correct"]
    assert result["latency_us"] > 0 and result["gflops"] > 0


def test_cli_rejects_bad_input(tmp_path):
    for args, message in [
        (["tune", "GMM:99"], "has indices"),
        (["tune", "XYZ:0"], "Unknown workload"),
        (["tune", "GMM:0", "--option", "explore_trails=3"], "Unknown DropletSearch option"),
        (["tune", "GMM:0", "--target", '{"kind": "cuda"}'], "not supported"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "ms_droplet.cli", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr[-500:])
