"""End to end on llvm: real builder, runner and JSON database, strategy chosen by name.

The tuning runs in a child process that never imports ms_droplet: strategy="droplet" must
resolve through TVM's ``tvm.backends`` entry point alone.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tvm.s_tir import meta_schedule as ms

from ms_droplet import _tvm

SCRIPT = Path(__file__).parent / "scripts" / "tune_by_name.py"
pytestmark = pytest.mark.tuning


def run_child(args, cwd):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def descent_programs(work_dir):
    """Hashes of the programs the descent proposed, as its log lines name them."""
    hashes, descended = set(), 0
    for log in (Path(work_dir) / "logs").glob("*task_*.log"):
        for line in log.read_text().splitlines():
            match = re.search(r"droplet: batch of \d+ candidates, \d+ explored and (\d+)", line)
            if match:
                descended += int(match.group(1))
            if "descent programs:" in line:
                hashes.update(int(h, 16) for h in line.split("descent programs:")[1].split())
    return hashes, descended


def database_programs(work_dir):
    database = ms.database.JSONDatabase(work_dir=str(work_dir))
    records = database.get_all_tuning_records()
    return records, {_tvm.module_hash(r.as_measure_candidate().sch.mod) for r in records}


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


def test_cli_tunes_checks_and_reports(tmp_path):
    out = run_child(
        ["-m", "ms_droplet.cli", "tune", "GMM:0", "--trials", "8", "--per-iter", "4", "--json"],
        cwd=tmp_path,
    )
    result = json.loads(out[out.index("{") :])
    assert result["workload"] == "GMM:0" and result["strategy"] == "droplet"
    assert result["records"] == 8
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
