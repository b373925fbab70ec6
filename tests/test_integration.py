"""integration/: TVM's own scripts run unchanged against the plugin."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.tuning


def test_tune_te_runs_unchanged_with_droplet_over_an_rpc_tracker_on_loopback(tmp_path):
    # TVM's LocalBuilder stays tune_te's builder, with a timeout its workers' first builds fit:
    # each imports every target's tensor intrinsics first (38 s alone on a 2-core Zen 3, 45 s two
    # at once), and at TVM's 30 s every build times out (64 builds x 30 s: this test's limit).
    command = [sys.executable, str(ROOT / "integration" / "rpc_tune_te.py")]
    command += ["--work-dir", str(tmp_path), "--builder-timeout", "180"]
    integration = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = integration.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        # SIGTERM, not the SIGKILL of subprocess.run: the script then stops its tracker, servers
        # and tune_te on the way out, so that a hung run leaves nothing behind.
        integration.send_signal(signal.SIGTERM)
        integration.communicate(timeout=60)
        log = tmp_path / "rpc_logs" / "tune_te.log"
        pytest.fail(f"no result in 900 s; tune_te's log ends:\n{log.read_text()[-3000:]}")
    assert integration.returncode == 0, stdout[-2000:] + stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
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
