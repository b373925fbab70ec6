"""The benchmark harness end to end on its tiniest setting (no assertion about who wins)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import figures, geomean, trials_to_match

ROOT = Path(__file__).resolve().parents[1]


def test_report_figures_on_known_numbers():
    def run(method, budget, curve, seconds, own=None):
        return {
            "run_id": f"{method}{budget}",
            "spec": {"workload": "GMM:0", "method": method, "budget": budget, "seed": 0},
            "curve": curve,
            "tuning_seconds": seconds,
            "droplet_own_seconds": own,
        }

    runs = [
        run("droplet", 8, [(4, 3e-3, 1), (8, 1e-3, 2)], 10.0, own=0.2),
        run("evolutionary", 8, [(8, 2e-3, 2)], 12.0),
        run("evolutionary", 16, [(8, 2e-3, 2), (16, 0.9e-3, 4)], 20.0),
    ]
    latencies = {"droplet8": {"latency_s": 1e-3}, "evolutionary8": {"latency_s": 2e-3}}
    latencies["evolutionary16"] = {"latency_s": 0.8e-3}
    report = figures(runs, latencies, {"GMM:0": 4e6}, {"GMM:0": 8.0}, budget=8, k=2)
    row = report["workloads"]["GMM:0"]
    assert row["equal_budget_ratio"] == pytest.approx(0.5)
    assert row["budget_ratio"] == pytest.approx(1.25)
    assert row["trials_to_match"] == [16]
    assert row["wall_ratio"] == pytest.approx(0.5)
    assert row["overhead"] == pytest.approx(0.02)
    assert row["gflops"]["droplet"] == pytest.approx(4.0)
    assert row["numpy_fraction"] == pytest.approx(0.5)
    assert report["geomean"]["equal_budget_ratio"] == pytest.approx(0.5)
    assert trials_to_match([(8, 2e-3, 0)], 1e-3) is None
    assert geomean([2.0, 8.0]) == pytest.approx(4.0) and geomean([None]) is None


def run_tiny_profile(out):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--profile", "tiny", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.mark.tuning
def test_tiny_profile_writes_json_and_png(tmp_path):
    out = tmp_path / "bench"
    done = run_tiny_profile(out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    methods = {(r["spec"]["method"], r["spec"]["budget"]) for r in results["runs"]}
    assert methods == {("droplet", 4), ("evolutionary", 4), ("evolutionary", 8)}
    for run in results["runs"]:
        curve = results["curves"][run["run_id"]]
        assert curve and curve[-1][0] == run["spec"]["budget"]
        assert results["remeasured"][run["run_id"]]["latency_s"] > 0
    row = results["report"]["workloads"]["GMM:0"]
    for name in ("equal_budget_ratio", "budget_ratio", "wall_ratio", "overhead", "numpy_fraction"):
        assert row[name] is not None and row[name] > 0, name
    assert results["numpy"]["GMM:0"]["gflops"] > 0
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "geomean" in done.stdout
    # A second invocation resumes: every run is kept, none is tuned again.
    again = run_tiny_profile(out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done before, kept") == 3 and ": tuning" not in again.stdout
