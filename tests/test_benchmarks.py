"""The benchmark harness end to end on its tiniest setting (no assertion about who wins)."""

import json
import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.profiles import PROFILES
from benchmarks.report import figures, geomean, geomean_interval, trials_to_match
from benchmarks.report import table as report_table
from benchmarks.sweep import parse_variant, summarise, table
from benchmarks.tuning_runs import (
    OPTIONS_ADDED,
    OPTIONS_REMOVED,
    RunSpec,
    cuda_target,
    load_run,
    plan,
    prepare,
    resolved_options,
    run_all,
    run_path,
)

ROOT = Path(__file__).resolve().parents[1]


def test_report_figures_on_known_numbers():
    def run(method, budget, curve, seconds, own=None, finished="2026-12-07T20:00:00+00:00"):
        return {
            "run_id": f"{method}{budget}",
            "spec": {"workload": "GMM:0", "method": method, "budget": budget, "seed": 0},
            "curve": curve,
            "tuning_seconds": seconds,
            "finished_at": finished,
            "droplet_own_seconds": own,
        }

    runs = [
        run("droplet", 8, [(4, 3e-3, 1), (8, 1e-3, 2)], 10.0, own=0.2),
        run("evolutionary", 8, [(8, 2e-3, 2)], 12.0),
        run(
            "evolutionary",
            16,
            [(8, 2e-3, 2), (16, 0.9e-3, 4)],
            20.0,
            finished="2026-12-07T17:00:00+00:00",
        ),
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
    assert row["remeasured_over_recorded"] == pytest.approx(1.0)  # 1 ms recorded, 1 ms again
    assert report["geomean"]["equal_budget_ratio"] == pytest.approx(0.5)
    assert trials_to_match([(8, 2e-3, 0)], 1e-3) is None
    assert geomean([2.0, 8.0]) == pytest.approx(4.0) and geomean([None]) is None
    assert report["interval_95"] == {"equal_budget_ratio": None, "budget_ratio": None}
    # Droplet's run ended 3 h after evolutionary search's at kB: its wall ratio is flagged.
    assert row["seeds"][0]["hours_apart"] == pytest.approx(3.0)
    warning = report_table(report, budget=8, k=2).splitlines()[-1]
    assert "more than 2 h apart for GMM:0 seed 0" in warning


def test_geomean_interval_is_students_t_over_the_logarithms():
    # Two ratios 0.5 and 2: log-mean 0, standard error ln 2, and Student's t with one degree of
    # freedom puts 95% within 12.706 standard errors (a table value, not SciPy's).
    low, high = geomean_interval([0.5, 2.0])
    assert low * high == pytest.approx(1.0) and high == pytest.approx(2**12.706, rel=1e-3)
    # Four seeds of 0.9 and 1.1 (twice each): log-mean m, standard error s, t(3) = 3.182.
    logs = [math.log(0.9), math.log(1.1)] * 2
    m, s = statistics.fmean(logs), statistics.stdev(logs) / 2
    low, high = geomean_interval([0.9, 1.1, None, 0.9, 1.1])
    assert (low, high) == pytest.approx((math.exp(m - 3.182 * s), math.exp(m + 3.182 * s)), 1e-3)
    assert geomean_interval([1.2, 1.2]) == pytest.approx((1.2, 1.2))
    assert geomean_interval([0.9]) is None and geomean_interval([]) is None


def test_sweep_compares_every_variant_with_evolutionary_at_the_same_budget():
    def run(workload, method, seed, options=None, seconds=10.0):
        options = options or {}
        tag = "".join(f"_{k}{v}" for k, v in sorted(options.items()))
        return {
            "run_id": f"{workload}{method}{tag}{seed}",
            "spec": {
                "workload": workload,
                "method": method,
                "budget": 8,
                "seed": seed,
                "options": options,
            },
            "curve": [(8, 1e-3, 1)],
            "tuning_seconds": seconds,
            "droplet_own_seconds": 0.1 if method == "droplet" else None,
        }

    fast, slow = {"explore_trials": 2}, {"explore_trials": 4}
    runs, latencies = [], {}
    for workload, evo_s in (("GMM:0", 2e-3), ("NRM:0", 1e-3)):
        for seed, noise in ((0, 1.0), (1, 1.1)):
            for spec, latency in (
                (run(workload, "evolutionary", seed, seconds=20.0), evo_s),
                (run(workload, "droplet", seed, fast), 0.5 * evo_s),
                (run(workload, "droplet", seed, slow), 2.0 * evo_s),
            ):
                runs.append(spec)
                latencies[spec["run_id"]] = {"latency_s": latency * noise}
    flops = {"GMM:0": 4e6, "NRM:0": 1e5}
    summary = summarise(runs, latencies, flops, {"fast": fast, "slow": slow}, budget=8)
    assert summary["fast"]["equal_budget_ratio"] == pytest.approx(0.5)
    assert summary["slow"]["equal_budget_ratio"] == pytest.approx(2.0)
    assert summary["fast"]["wins"] == 2 and summary["slow"]["wins"] == 0
    assert summary["fast"]["time_ratio"] == pytest.approx(0.5)
    assert summary["fast"]["overhead"] == pytest.approx(0.01)
    # Each seed compares with the evolutionary run of the same seed.
    assert summary["fast"]["workloads"]["GMM:0"]["seed_ratios"] == pytest.approx([0.5, 0.5])
    lines = table(summary).splitlines()
    assert lines[1].split() == ["workload", "fast", "slow"]
    assert lines[4].split() == ["geomean", "0.500", "2.000"]
    # Every workload and seed gave the same ratio: the interval is that ratio.
    assert summary["fast"]["equal_budget_interval_95"] == pytest.approx((0.5, 0.5))
    assert lines[-1].split() == ["95%", "CI", "0.50-0.50", "2.00-2.00"]


def test_sweep_variant_names_the_bad_option():
    assert parse_variant("e32:explore_trials=32,significance=0.1") == (
        "e32",
        {"explore_trials": 32, "significance": 0.1},
    )
    with pytest.raises(Exception, match="explore_trial'.*Did you mean 'explore_trials'"):
        parse_variant("bad:explore_trial=32")
    with pytest.raises(Exception, match="expected LABEL:NAME=VALUE"):
        parse_variant("explore_trials=32")


def test_a_droplet_run_tuned_under_other_defaults_is_not_resumed(tmp_path):
    spec = RunSpec("GMM:0", "droplet", 8, 0, 4)
    assert load_run(tmp_path, spec) is None
    folder = run_path(tmp_path, spec)
    folder.mkdir(parents=True)
    record = {"run_id": spec.run_id, "resolved_options": resolved_options(spec)}
    (folder / "run.json").write_text(json.dumps(record))
    assert load_run(tmp_path, spec) == record
    # The same folder name, but tuned when explore_trials defaulted to something else.
    record["resolved_options"] = {**resolved_options(spec), "explore_trials": 1000}
    (folder / "run.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="differ in explore_trials; did a default change"):
        load_run(tmp_path, spec)


def _record_run(tmp_path, spec, options):
    record = {"run_id": spec.run_id, "resolved_options": options}
    run_path(tmp_path, spec).mkdir(parents=True, exist_ok=True)
    (run_path(tmp_path, spec) / "run.json").write_text(json.dumps(record))
    return record


def test_a_run_from_before_an_option_was_added_or_removed_is_read_in_todays_terms(tmp_path):
    spec = RunSpec("GMM:0", "droplet", 8, 0, 4)
    today = resolved_options(spec)
    # Every option is one that the first recorded runs (95d534e) had, or is listed as added since:
    # an option added without its earlier behaviour fails here, not in a later sweep.
    first_recorded = {"explore_trials", "explore_fraction", "on_converge", "significance"}
    first_recorded |= {"min_improvement", "tile_moves", "rank_pool", "seed", "evolutionary"}
    assert set(today) == first_recorded | set(OPTIONS_ADDED)
    assert not set(OPTIONS_REMOVED) & set(today)
    # Recorded before restart_other_spaces existed: that run restarted as the option's default
    # (off) does, so it is today's default run.
    before = {k: v for k, v in today.items() if k != "restart_other_spaces"}
    assert load_run(tmp_path, spec) is None
    record = _record_run(tmp_path, spec, before)
    assert load_run(tmp_path, spec) == record
    # The same for a removed option at the value whose behaviour is today's.
    record = _record_run(tmp_path, spec, {**today, "restart_from": "measured"})
    assert load_run(tmp_path, spec) == record
    # Recorded before sample_while_guessing existed: that run did not sample, and the option's
    # default does, so the run is not today's default run.
    _record_run(tmp_path, spec, {k: v for k, v in today.items() if k != "sample_while_guessing"})
    with pytest.raises(ValueError, match="differ in sample_while_guessing;"):
        load_run(tmp_path, spec)
    # A removed option at another value was a behaviour that is gone.
    _record_run(tmp_path, spec, {**today, "restart_from": "explored"})
    with pytest.raises(ValueError, match="differ in restart_from;"):
        load_run(tmp_path, spec)
    # An option added since, missing from both tables, outdates the run (the safe failure).
    _record_run(tmp_path, spec, {k: v for k, v in today.items() if k != "rank_pool"})
    with pytest.raises(ValueError, match="differ in rank_pool;"):
        load_run(tmp_path, spec)


def test_plan_puts_every_equal_budget_comparison_before_the_long_runs(tmp_path):
    specs = plan(PROFILES["cuda"])
    order = [(s.workload, s.method, s.budget, s.seed) for s in specs]
    assert order == [
        ("GMM:2", "droplet", 64, 0),
        ("GMM:2", "evolutionary", 64, 0),
        ("GMM:2", "droplet", 64, 1),
        ("GMM:2", "evolutionary", 64, 1),
        ("C2D:1", "droplet", 64, 0),
        ("C2D:1", "evolutionary", 64, 0),
        ("C2D:1", "droplet", 64, 1),
        ("C2D:1", "evolutionary", 64, 1),
        ("GMM:2", "evolutionary", 256, 0),
        ("GMM:2", "evolutionary", 256, 1),
        ("C2D:1", "evolutionary", 256, 0),
        ("C2D:1", "evolutionary", 256, 1),
    ]
    # Past the time limit no run starts: the finished one is reported, the others left to a
    # later call (no run.json written, no target needed).
    done = {"run_id": specs[0].run_id, "resolved_options": resolved_options(specs[0])}
    run_path(tmp_path, specs[0]).mkdir(parents=True)
    (run_path(tmp_path, specs[0]) / "run.json").write_text(json.dumps(done))
    assert run_all(specs, tmp_path, target=None, time_limit=0.0) == [done]
    assert load_run(tmp_path, specs[1]) is None


def _has_cuda_gpu() -> bool:
    try:
        cuda_target()
    except ValueError:
        return False
    return True


@pytest.mark.skipif(_has_cuda_gpu(), reason="checks the message of a machine without a GPU")
def test_cuda_target_without_a_gpu_says_so():
    with pytest.raises(ValueError, match="--target cuda: TVM sees no CUDA GPU"):
        prepare(("GMM:2",), "cuda")
    with pytest.raises(ValueError, match="unknown benchmark target 'rocm'"):
        prepare(("GMM:2",), "rocm")


def test_the_environment_records_the_runtime_threads_the_measurements_ran_on():
    # TVM reads TVM_NUM_THREADS when its thread pool starts, so each setting needs a process.
    script = (
        "import json; from benchmarks.environment import environment; "
        "print(json.dumps(environment()))"
    )
    # TVM runs no more threads than the machine has CPUs, whatever the variable asks.
    for threads in ("1", "2", str(os.cpu_count() + 1)):
        env = {**os.environ, "TVM_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        recorded = json.loads(done.stdout.strip().splitlines()[-1])
        assert recorded["runtime_threads"] == min(int(threads), os.cpu_count())
        assert recorded["TVM_NUM_THREADS"] == threads


def run_tiny_profile(out, *extra):
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--profile", "tiny", "--out", str(out), *extra],
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
        remeasured = results["remeasured"][run["run_id"]]
        # A kernel's latency is the median of its rounds, their spread beside it.
        low, median, high = statistics.quantiles(remeasured["samples"], n=4, method="inclusive")
        assert remeasured["latency_s"] == pytest.approx(median) and median > 0
        assert remeasured["spread"] == pytest.approx((high - low) / median)
        assert run["target"]["kind"] == "llvm" and run["target"]["mcpu"]  # what remeasure builds
    row = results["report"]["workloads"]["GMM:0"]
    # Each run says when it was tuned; these were tuned in one sitting.
    assert all(run["finished_at"] for run in results["runs"])
    assert 0 <= row["seeds"][0]["hours_apart"] < 1 and "h apart" not in done.stdout
    for name in ("equal_budget_ratio", "budget_ratio", "wall_ratio", "overhead", "numpy_fraction"):
        assert row[name] is not None and row[name] > 0, name
    assert results["numpy"]["GMM:0"]["gflops"] > 0
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "geomean" in done.stdout
    # The summary a goal is judged by: the commit of ms_droplet/ and the report's figures.
    summary = json.loads((out / "tiny-summary.json").read_text())
    assert len(summary["commit"]) >= 40 and summary["seeds"] == results["profile"]["seeds"]
    tuned = {run["commit"] for run in results["runs"] if run["spec"]["method"] == "droplet"}
    assert tuned == {summary["commit"]}
    assert set(summary["geomean"]) == {
        "equal_budget",
        "budget",
        "wall",
        "overhead_pct",
        "remeasured_over_recorded",
    }
    # One workload and seed: no confidence interval.
    assert summary["interval_95"] == {"equal_budget": None, "budget": None}
    assert "95% confidence intervals of the geomeans: equal budget -, budget -" in done.stdout
    figures = summary["workloads"]["GMM:0"]
    assert figures["equal_budget"] == pytest.approx(row["equal_budget_ratio"])
    assert figures["overhead_pct"] == pytest.approx(100 * row["overhead"])
    assert re.search(r"re-measure 1: rounds spread by up to [\d.e+-]+%", done.stdout)
    # A second invocation resumes: every run is kept, none is tuned again. Its re-measure counts
    # as noisy at any spread above 0: it is repeated once, and the quieter one is reported.
    again = run_tiny_profile(out, "--remeasures", "2", "--noisy-spread", "0")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done before, kept") == 3 and ": tuning" not in again.stdout
    spreads = [float(x) for x in re.findall(r"rounds spread by up to ([\d.e+-]+)%", again.stdout)]
    assert len(spreads) == (1 if spreads[0] == 0 else 2)
    kept = json.loads((out / "remeasure.json").read_text())
    assert 100 * max(entry.get("spread", 0.0) for entry in kept.values()) == pytest.approx(
        min(spreads), rel=0.01
    )
    # Every re-measure is kept beside the quietest, and with two, each one's geomeans are printed:
    # the quietest one's are the report's.
    attempts = json.loads((out / "remeasure_attempts.json").read_text())
    assert len(attempts) == len(spreads) and kept in attempts
    pattern = r"geomeans of re-measure (\d) \(worst spread [\d.e+-]+%\): equal budget ([\d.]+)"
    moved = re.findall(pattern, again.stdout)
    assert len(moved) == (len(attempts) if len(attempts) > 1 else 0)
    if moved:
        report = json.loads((out / "results.json").read_text())["report"]
        quietest = dict(moved)[str(attempts.index(kept) + 1)]
        assert float(quietest) == pytest.approx(report["geomean"]["equal_budget_ratio"], abs=6e-4)
