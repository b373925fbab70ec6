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
"""``python -m benchmarks.warmstart``: a second run on a finished work_dir, three ways.

The question of a user who tuned once and has more time: continue with droplet (which warm-starts
from the records and measures none of them again), with stock evolutionary search (which seeds
from them but re-measures freely), or post-optimise with ``ms-droplet post-opt``? For each
workload and seed:

1. ``base``: stock evolutionary search, ``--budget`` trials, into a fresh work_dir;
2. three copies of that work_dir, each given ``--extra`` more trials: ``droplet`` (DropletSearch
   with its defaults, through ``tune_tir`` as a user's second call would), ``evolutionary``
   (stock, the same way) and ``postopt`` (:func:`ms_droplet.postopt.post_optimize`);
3. every run's best schedule re-measured together in one fresh process
   (:mod:`benchmarks.remeasure`), ``base`` included.

Output: a table, ``warmstart.json`` and the run folders under ``--out``; finished runs are kept
when the command is run again.

Example
-------
python -m benchmarks.warmstart --workloads GMM:2 --budget 128 --extra 64 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from .environment import environment
from .report import geomean
from .tuning_runs import log_seconds, prepare, print_noisy, remeasure_in_child

ROOT = Path(__file__).resolve().parents[1]
CONTINUATIONS = ("droplet", "evolutionary", "postopt")


def _run_dir(out: Path, workload: str, method: str, seed: int) -> Path:
    return out / "runs" / f"{workload.replace(':', '-')}__{method}__s{seed}"


def _tune(spec: dict, folder: Path, target, base: Path | None) -> dict:
    from ms_droplet import DropletSearch
    from ms_droplet.job import evaluator_runner, fast_local_builder, tune
    from ms_droplet.postopt import post_optimize
    from ms_droplet.workloads import parse_workload

    work_dir = folder / "work"
    if base is not None:
        shutil.copytree(base / "work", work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    workload = parse_workload(spec["workload"])
    start = time.perf_counter()
    if spec["method"] == "postopt":
        post_optimize(work_dir, spec["trials"], per_iter=spec["per_iter"], seed=spec["seed"])
    else:
        strategy = DropletSearch() if spec["method"] == "droplet" else "evolutionary"
        tune(
            workload,
            target,
            trials=spec["trials"],
            per_iter=spec["per_iter"],
            strategy=strategy,
            work_dir=str(work_dir),
            seed=spec["seed"],
            runner=evaluator_runner(),
            builder=fast_local_builder(),
        )
    record = {
        "spec": spec,
        "run_id": folder.name,
        "work_dir": str(work_dir),
        "tuning_seconds": time.perf_counter() - start,
        # What droplet spent reading the database (and training the model) at task starts.
        "adapter_seconds": log_seconds(work_dir, r"\(([0-9.]+) s of it at the start\)"),
    }
    (folder / "run.json").write_text(json.dumps(record, indent=1))
    return record


def _run(out: Path, workload: str, method: str, seed: int, trials: int, per_iter: int, target):
    folder = _run_dir(out, workload, method, seed)
    if (folder / "run.json").exists():
        print(f"{folder.name}: done before, kept", flush=True)
        return json.loads((folder / "run.json").read_text())
    if folder.exists():
        shutil.rmtree(folder)  # an interrupted run starts over from its base
    folder.mkdir(parents=True)
    print(f"{folder.name}: tuning {trials} trials", flush=True)
    spec = {"workload": workload, "method": method, "seed": seed, "trials": trials}
    spec["per_iter"] = per_iter
    base = None if method == "base" else _run_dir(out, workload, "base", seed)
    return _tune(spec, folder, target, base)


def table(rows: list[dict]) -> str:
    """One line per workload and seed: re-measured latencies, ratios and tuning seconds."""
    lines = [
        f"{'workload':<8} {'seed':>4} {'base us':>9} {'droplet':>9} {'evo':>9} {'postopt':>9} "
        f"{'drop/evo':>8} {'post/evo':>8} {'t drop':>7} {'t evo':>7} {'t post':>7} {'adapter':>7}"
    ]
    for row in rows:
        us = row["latency_us"]
        secs = row["tuning_seconds"]
        lines.append(
            f"{row['workload']:<8} {row['seed']:>4} {us['base']:>9.1f} {us['droplet']:>9.1f} "
            f"{us['evolutionary']:>9.1f} {us['postopt']:>9.1f} "
            f"{row['droplet_over_evolutionary']:>8.3f} {row['postopt_over_evolutionary']:>8.3f} "
            f"{secs['droplet']:>7.1f} {secs['evolutionary']:>7.1f} {secs['postopt']:>7.1f} "
            f"{row['adapter_seconds'] or 0.0:>7.2f}"
        )
    ratios = [row["droplet_over_evolutionary"] for row in rows]
    post = [row["postopt_over_evolutionary"] for row in rows]
    lines.append(
        f"geomean droplet/evolutionary {geomean(ratios):.3f}, postopt/evolutionary "
        f"{geomean(post):.3f} (below 1: faster than stock evolutionary's continuation)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the protocol; print the table; write warmstart.json."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warmstart", description=__doc__)
    parser.add_argument("--workloads", nargs="+", default=["GMM:2"])
    parser.add_argument("--budget", type=int, default=128, help="the first run's trials")
    parser.add_argument("--extra", type=int, default=64, help="the second run's trials")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--per-iter", type=int, default=16, dest="per_iter")
    parser.add_argument("--rounds", type=int, default=10, help="re-measurement rounds")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out" / "warmstart")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    target = prepare(tuple(args.workloads))
    runs = {}
    for workload in args.workloads:
        for seed in args.seeds:
            runs[workload, seed, "base"] = _run(
                args.out, workload, "base", seed, args.budget, args.per_iter, target
            )
            for method in CONTINUATIONS:
                runs[workload, seed, method] = _run(
                    args.out, workload, method, seed, args.extra, args.per_iter, target
                )
    latencies = remeasure_in_child(args.out, args.rounds)
    rows = []
    for workload in args.workloads:
        for seed in args.seeds:
            mine = {m: runs[workload, seed, m] for m in ("base", *CONTINUATIONS)}
            us = {m: latencies[run["run_id"]]["latency_s"] * 1e6 for m, run in mine.items()}
            rows.append(
                {
                    "workload": workload,
                    "seed": seed,
                    "latency_us": us,
                    "droplet_over_evolutionary": us["droplet"] / us["evolutionary"],
                    "postopt_over_evolutionary": us["postopt"] / us["evolutionary"],
                    "tuning_seconds": {m: run["tuning_seconds"] for m, run in mine.items()},
                    "adapter_seconds": mine["droplet"]["adapter_seconds"],
                }
            )
    result = {
        "environment": environment(),
        "settings": vars(args) | {"out": str(args.out)},
        "rows": rows,
        "remeasured": latencies,
    }
    (args.out / "warmstart.json").write_text(json.dumps(result, indent=1))
    print(table(rows))
    print_noisy(latencies)
    print(f"\nresults: {args.out / 'warmstart.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
