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
"""The end-to-end benchmark (``python -m benchmarks --model``) on a tiny Relax model."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.e2e import ModelRunSpec, plan, run_all
from benchmarks.e2e_report import figures, summary, table, task_figures, task_ratio_table
from benchmarks.environment import measured_commit, tuned_commit
from benchmarks.tuning_runs import resolved_options
from ms_droplet.adapters.provenance import PROVENANCE_FILE, read_provenance

ROOT = Path(__file__).resolve().parents[1]


def run_model_benchmark(out, *extra):
    return subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks", "--model", "tiny"),
            *("--scheduler", "round-robin", "--budget", "8", "--rounds", "2", "--k", "2"),
            *("--out", str(out), *extra),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.mark.tuning
def test_model_mode_tunes_remeasures_and_reports(tmp_path):
    out = tmp_path / "bench"
    done = run_model_benchmark(out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    runs = {run["variant"] + f" {run['spec']['trials']}": run for run in results["runs"]}
    assert set(runs) == {"droplet 8", "evolutionary 8", "evolutionary 16"}
    # Every compiled model computes what the untuned build computes.
    assert all(entry["outputs_match"] for entry in results["remeasured"].values())
    assert all(entry["latency_s"] > 0 for entry in results["remeasured"].values())
    # A model's latency is the median of its rounds, their spread beside it.
    for entry in results["remeasured"].values():
        low, high = sorted(entry["samples"])
        assert entry["latency_s"] == pytest.approx((low + high) / 2)
        assert entry["spread"] == pytest.approx((high - low) / 2 / entry["latency_s"])
    # Evolutionary search at N is its run at k*N (here 2N) stopped after N trials.
    prefix = runs["evolutionary 8"]
    assert prefix["derived_from"] == runs["evolutionary 16"]["run_id"]
    records = Path(prefix["work_dir"], "database_tuning_record.json").read_text().splitlines()
    assert len(records) == 8 and sum(task["trials"] for task in prefix["tasks"]) == 8
    assert 0 < prefix["tuning_seconds"] < runs["evolutionary 16"]["tuning_seconds"]
    # Each run says when it was tuned; this one's seed was tuned in one sitting.
    assert prefix["finished_at"] == runs["evolutionary 16"]["finished_at"]
    (row,) = results["report"]["tiny"]["droplet"]["seeds"]
    assert 0 <= row["hours_apart"] < 1 and "h apart" not in done.stdout
    # The per-task table: round-robin gives each of the two tasks a batch of 4.
    droplet = runs["droplet 8"]
    assert [task["trials"] for task in droplet["tasks"]] == [4, 4]
    assert all(task["best_us"] > 0 for task in droplet["tasks"])
    for task in droplet["tasks"]:
        assert f"{task['task']:<34}" in done.stdout
    # Each task's best program of every run, re-measured alone in the models' rounds.
    for run in runs.values():
        kernels = results["remeasured"][run["run_id"]]["tasks"]
        assert set(kernels) == {task["task"] for task in run["tasks"]}
        assert all(len(k["samples"]) == 2 and k["latency_s"] > 0 for k in kernels.values())
    # Per task, droplet's best over evolutionary search's at N of the same seed: the programs
    # re-measured, the records' ratio beside it.
    evolutionary = {task["task"]: task for task in runs["evolutionary 8"]["tasks"]}
    by_task = results["tasks"]["tiny"]["droplet"]
    assert set(by_task) == set(evolutionary)
    mine = results["remeasured"][droplet["run_id"]]["tasks"]
    theirs = results["remeasured"][runs["evolutionary 8"]["run_id"]]["tasks"]
    for task in droplet["tasks"]:
        (row,) = by_task[task["task"]]["seeds"]
        expected = mine[task["task"]]["latency_s"] / theirs[task["task"]]["latency_s"]
        assert row["droplet_over_evolutionary_N"] == pytest.approx(expected)
        assert row["basis"] == "re-measured"
        recorded = task["best_us"] / evolutionary[task["task"]]["best_us"]
        assert row["recorded_droplet_over_evolutionary_N"] == pytest.approx(recorded)
        assert f"{by_task[task['task']]['geomean']:.3f}" in done.stdout
        assert f"{mine[task['task']]['latency_s'] * 1e6:.2f}" in done.stdout
    # Every measured program of every task is in droplet's provenance file, with its phase.
    entries = list(read_provenance(Path(droplet["work_dir"]) / PROVENANCE_FILE))
    for task in droplet["tasks"]:
        phases = [e["phase"] for e in entries if e["task"] == task["task"]]
        assert len(phases) == task["trials"] and task["phase"] in phases, (task, phases)
    # The summary: the commit of ms_droplet/ and the three ratios, from the same figures.
    document = json.loads((out / "e2e-summary.json").read_text())
    assert document["seeds"] == [0] and len(document["commit"]) >= 40
    # The commit the droplet run was tuned with, as the run recorded it.
    assert document["commit"] == droplet["commit"]
    ratios = document["models"]["tiny"]
    # One seed: no confidence interval.
    assert ratios.pop("interval_95") == {
        "droplet_over_evolutionary_N": None,
        "droplet_over_evolutionary_2N": None,
    }
    assert set(ratios) == {
        "droplet_over_evolutionary_N",
        "droplet_over_evolutionary_2N",
        "wall_over_evolutionary_N",
    }
    assert all(value > 0 for value in ratios.values())
    assert "95% confidence intervals of the geomeans: d/evo N -, d/evo 2N -" in done.stdout
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    # A second invocation resumes: every run is kept, none is tuned again. Its re-measure counts
    # as noisy at any spread above 0: it is repeated once, and the quieter one is reported.
    again = run_model_benchmark(out, "--remeasures", "2", "--noisy-spread", "0")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done before, kept") == 3 and ": tuning" not in again.stdout
    pattern = r"rounds spread by up to ([\d.e+-]+)%"
    spreads = [float(x) for x in re.findall(pattern, again.stdout)]
    assert len(spreads) == (1 if spreads[0] == 0 else 2)
    kept = json.loads((out / "remeasure.json").read_text())
    assert 100 * max(entry["spread"] for entry in kept.values()) == pytest.approx(
        min(spreads), rel=0.01
    )
    # Every re-measure is kept beside the quietest, and with two, each one's geomeans are printed:
    # the quietest one's are the report's.
    attempts = json.loads((out / "remeasure_attempts.json").read_text())
    assert len(attempts) == len(spreads) and kept in attempts
    pattern = (
        r"geomeans of re-measure (\d) \(worst spread [\d.e+-]+%\): tiny droplet: d/evo N ([\d.]+)"
    )
    moved = re.findall(pattern, again.stdout)
    assert len(moved) == (len(attempts) if len(attempts) > 1 else 0)
    if moved:
        report = json.loads((out / "results.json").read_text())["report"]
        quietest = dict(moved)[str(attempts.index(kept) + 1)]
        expected = report["tiny"]["droplet"]["geomean"]["droplet_over_evolutionary_N"]
        assert float(quietest) == pytest.approx(expected, abs=6e-4)
    refused = run_model_benchmark(out, "--remeasures", "0")
    assert refused.returncode == 2 and "--remeasures must be at least 1" in refused.stderr


def test_model_ratios_pair_runs_of_the_same_seed():
    def run(method, trials, seed, seconds, options=""):
        variant = f"{method} {options}".strip()
        # Seed 0's runs tuned within half an hour, seed 1's droplet runs eight hours later.
        finished = "2026-12-07T14:30:00+00:00" if method == "droplet" and seed else None
        return {
            "run_id": f"{variant}{trials}{seed}",
            "variant": variant,
            "spec": {"model": "m", "method": method, "trials": trials, "seed": seed},
            "tuning_seconds": seconds,
            "finished_at": finished or f"2026-12-07T0{6 if method == 'droplet' else 7}:00:00+00:00",
            "droplet_own_seconds": 1.0 if method == "droplet" else None,
        }

    runs, remeasured = [], {}
    for seed, scale in ((0, 1.0), (1, 4.0)):
        for spec, latency in (
            (run("droplet", 8, seed, 10.0), 0.9),
            (run("droplet", 8, seed, 20.0, "on_converge=stop"), 1.2),
            (run("evolutionary", 8, seed, 20.0), 1.0),
            (run("evolutionary", 24, seed, 50.0), 0.8),
        ):
            runs.append(spec)
            remeasured[spec["run_id"]] = {"latency_s": latency * scale}
    report = figures(runs, remeasured, k=3)
    default = report["m"]["droplet"]
    assert [row["droplet_over_evolutionary_N"] for row in default["seeds"]] == pytest.approx(
        [0.9, 0.9]
    )
    assert default["geomean"]["droplet_over_evolutionary_kN"] == pytest.approx(0.9 / 0.8)
    assert default["geomean"]["wall_over_evolutionary_N"] == pytest.approx(0.5)
    assert default["seeds"][0]["droplet_own_pct"] == pytest.approx(10.0)
    # The wall ratio of runs tuned hours apart is named under the table.
    assert [row["hours_apart"] for row in default["seeds"]] == pytest.approx([1.0, 7.5])
    warning = table(report, k=3).splitlines()[-1]
    assert "more than 2 h apart" in warning and "m droplet seed 1" in warning
    assert "seed 0" not in warning and "on_converge=stop seed 1" in warning
    stop = report["m"]["droplet on_converge=stop"]
    assert stop["geomean"]["droplet_over_evolutionary_N"] == pytest.approx(1.2)
    document = summary(report, [0, 1], "c" * 40)
    assert document["commit"] == "c" * 40
    # Both seeds gave the same ratios: their confidence intervals shrink to the ratios.
    intervals = document["models"]["m"].pop("interval_95")
    assert intervals["droplet_over_evolutionary_N"] == pytest.approx((0.9, 0.9))
    assert intervals["droplet_over_evolutionary_3N"] == pytest.approx((0.9 / 0.8, 0.9 / 0.8))
    assert document["models"]["m"] == pytest.approx(
        {
            "droplet_over_evolutionary_N": 0.9,
            "droplet_over_evolutionary_3N": 0.9 / 0.8,
            "wall_over_evolutionary_N": 0.5,
        }
    )


def test_task_ratios_pair_each_task_with_its_evolutionary_run_of_the_same_seed():
    def run(method, seed, best_us, trials=16):
        return {
            "run_id": f"{method}{seed}",
            "variant": method,
            "spec": {"model": "m", "method": method, "trials": 64, "seed": seed},
            "tasks": [
                {"task": name, "weight": 1.0, "trials": trials, "best_us": us, "phase": "explore"}
                for name, us in best_us.items()
            ],
        }

    runs = [
        run("droplet", 0, {"conv": 8.0, "dense": 3.0}, trials=32),
        run("evolutionary", 0, {"conv": 10.0, "dense": 2.0}),
        run("droplet", 1, {"conv": 9.0, "dense": 2.0}, trials=32),
        run("evolutionary", 1, {"conv": 10.0, "dense": 2.0}),
        # A seed without its evolutionary run pairs with nothing.
        run("droplet", 2, {"conv": 1.0, "dense": 1.0}),
    ]
    # Seed 1's programs were re-measured together, seed 0's were not.
    remeasured = {
        f"{method}1": {"tasks": {name: {"latency_s": us * 1e-6} for name, us in tasks.items()}}
        for method, tasks in (
            ("droplet", {"conv": 9.5, "dense": 1.8}),
            ("evolutionary", {"conv": 9.5, "dense": 2.0}),
        )
    }
    report = task_figures(runs, remeasured)
    conv, dense = report["m"]["droplet"]["conv"], report["m"]["droplet"]["dense"]
    assert [row["droplet_over_evolutionary_N"] for row in conv["seeds"]] == pytest.approx(
        [0.8, 1.0]
    )
    assert [row["basis"] for row in conv["seeds"]] == ["recorded", "re-measured"]
    assert [row["recorded_droplet_over_evolutionary_N"] for row in conv["seeds"]] == (
        pytest.approx([0.8, 0.9])
    )
    assert conv["geomean"] == pytest.approx(0.8**0.5) and conv["droplet_faster"] == 1
    assert dense["geomean"] == pytest.approx((1.5 * 0.9) ** 0.5) and dense["droplet_faster"] == 1
    assert (
        conv["seeds"][0]["droplet_trials"] == 32 and conv["seeds"][0]["evolutionary_trials"] == 16
    )
    ratio_table = task_ratio_table(report)
    assert (
        "0.894" in ratio_table
        and "1/2" in ratio_table
        and "0.80* (32/16) 1.00 (32/16)" in ratio_table
    )


def test_plan_pairs_every_seed_and_tunes_each_run_once():
    specs = plan("cnn", 256, 3, (0, 1), 16, "gradient", [{}, {"explore_share": 0.25}])
    assert [(s.seed, s.variant, s.trials) for s in specs[:4]] == [
        (0, "droplet", 256),
        (0, "droplet explore_share=0.25", 256),
        (0, "evolutionary", 256),
        (0, "evolutionary", 768),
    ]
    assert len(specs) == 8 and len({s.run_id for s in specs}) == 8
    # k = 1: evolutionary search at N is the run at k*N, listed (and tuned) once.
    specs = plan("cnn", 256, 1, (0,), 16, "round-robin", [{}])
    assert [s.run_id for s in specs] == [
        "cnn__droplet__N256__s0__round-robin",
        "cnn__evolutionary__N256__s0__round-robin",
    ]
    # A dict-valued option (EvolutionarySearch's keyword arguments): a spec still keys the
    # runs, and its run id is a plain folder name.
    evolutionary = {"evolutionary": {"population_size": 128, "eps_greedy": 0.1}}
    specs = plan("cnn", 256, 1, (0,), 16, "gradient", [{}, evolutionary])
    assert len(set(specs)) == 3
    variant = "evolutionary-eps_greedy=0.1+population_size=128"
    assert specs[1].run_id == f"cnn__droplet_{variant}__N256__s0"


def test_a_summary_names_the_commit_its_runs_were_tuned_with():
    def run(method, commit):
        return {"spec": {"method": method}, **({"commit": commit} if commit else {})}

    assert tuned_commit([run("droplet", "a" * 40), run("evolutionary", "b" * 40)]) == "a" * 40
    # Resumed runs tuned on two commits: both, so that neither passes for the other.
    runs = [run("droplet", "b" * 40), run("droplet", "a" * 40), run("droplet", "a" * 40)]
    assert tuned_commit(runs) == f"{'a' * 40}, {'b' * 40}"
    # End to end, a droplet variant's runs are not the default droplet's.
    variant = {**run("droplet", "d" * 40), "variant": "droplet explore_share=0.25"}
    assert tuned_commit([{**run("droplet", "a" * 40), "variant": "droplet"}, variant]) == "a" * 40
    # Runs tuned before runs recorded their commit.
    assert tuned_commit([run("droplet", None)]) == "unknown"
    assert tuned_commit([run("evolutionary", "b" * 40)]) == "unknown"


def test_runs_record_the_last_commit_of_the_strategy_not_of_the_pr_description(tmp_path):
    def git(*args):
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    (tmp_path / "ms_droplet" / "upstream").mkdir(parents=True)
    search = tmp_path / "ms_droplet" / "search.py"
    description = tmp_path / "ms_droplet" / "upstream" / "description.py"
    search.write_text("MOVES = 1\n")
    description.write_text("TEXT = 'a'\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "strategy")
    strategy = git("rev-parse", "HEAD")
    assert measured_commit(tmp_path) == strategy
    # The PR description's text changes no measured figure: neither edited nor committed.
    description.write_text("TEXT = 'b'\n")
    assert measured_commit(tmp_path) == strategy
    git("commit", "-qam", "description")
    assert measured_commit(tmp_path) == strategy
    # The strategy's code does: edited it is dirty, committed it is the new commit.
    search.write_text("MOVES = 2\n")
    assert measured_commit(tmp_path) == f"{strategy}+dirty"
    git("commit", "-qam", "strategy again")
    assert measured_commit(tmp_path) == git("rev-parse", "HEAD") != strategy


def test_a_recorded_droplet_model_run_is_kept_only_under_the_same_options(tmp_path):
    droplet = ModelRunSpec("cnn", "droplet", 32, 0, 16)
    evolutionary = ModelRunSpec("cnn", "evolutionary", 32, 0, 16)
    records = {}
    for spec in (droplet, evolutionary):
        records[spec] = {"run_id": spec.run_id, "resolved_options": resolved_options(spec)}
        (tmp_path / "runs" / spec.run_id).mkdir(parents=True)

    def write():
        for spec, record in records.items():
            (tmp_path / "runs" / spec.run_id / "run.json").write_text(json.dumps(record))

    # Both recorded: nothing is tuned (no target needed), the records come back.
    write()
    assert run_all([droplet, evolutionary], tmp_path, target=None) == list(records.values())
    # Tuned when a default was another: refused, naming the option.
    records[droplet]["resolved_options"] = {**resolved_options(droplet), "rank_pool": 1}
    write()
    with pytest.raises(ValueError, match="differ in rank_pool; did a default change"):
        run_all([droplet, evolutionary], tmp_path, target=None)
    # A record from before resolved options were recorded is kept as it is.
    del records[droplet]["resolved_options"]
    write()
    assert run_all([droplet, evolutionary], tmp_path, target=None) == list(records.values())


def test_models_build_and_name_what_is_missing():
    import importlib.util

    from benchmarks.models import MODELS, get_model

    with pytest.raises(ValueError, match="unknown model 'vgg'.*cnn, transformer"):
        get_model("vgg")
    if importlib.util.find_spec("torch") is None:
        # Without torch the ResNet-18 model is refused with the fix, not a traceback.
        with pytest.raises(ValueError, match="'resnet18' needs torch"):
            get_model("resnet18")
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks", "--model", "resnet18"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2 and "pip install" in done.stderr
        assert "Traceback" not in done.stderr
    for name in ("cnn", "transformer"):
        mod, weights = MODELS[name].build()
        assert "forward" in [gv.name_hint for gv in mod.get_global_vars()]
        assert weights and all(w.dtype == "float32" for w in weights.values())


def test_summary_keeps_other_models_of_the_same_commit(tmp_path):
    from benchmarks.e2e import write_summary

    path = tmp_path / "results" / "e2e-summary.json"
    ratios = {"droplet_over_evolutionary_N": 0.9}
    write_summary(path, {"commit": "a" * 40, "seeds": [0, 1], "models": {"cnn": ratios}})
    write_summary(path, {"commit": "a" * 40, "seeds": [0, 1], "models": {"transformer": ratios}})
    assert set(json.loads(path.read_text())["models"]) == {"cnn", "transformer"}
    # Another version of ms_droplet/ starts the summary again: no figures of two versions mix.
    write_summary(path, {"commit": "b" * 40, "seeds": [0, 1], "models": {"cnn": ratios}})
    assert set(json.loads(path.read_text())["models"]) == {"cnn"}
