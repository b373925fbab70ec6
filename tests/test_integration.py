"""integration/: TVM's own scripts run unchanged against the plugin."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.tuning


def test_tune_te_runs_unchanged_with_droplet_over_an_rpc_tracker_on_loopback(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "integration" / "rpc_tune_te.py"), "--work-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Every trial recorded and measured through the servers (both of them), droplet's descent
    # proposed some of them, and tune_te itself finished.
    assert result["records"] == 72 and result["tune_te_exit"] == 0
    assert result["descent_programs"] > 0
    assert result["descent_programs_recorded"] == result["descent_programs"]
    assert all(sessions > 0 for sessions in result["server_sessions"])
    # Nothing it started outlives it: tracker, servers, tune_te.
    assert len(result["pids"]) == 4
    for pid in result["pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
