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
"""``python -m benchmarks``: run a benchmark profile and report.

Examples
--------
python -m benchmarks --profile quick
python -m benchmarks --profile standard --out bench_out/standard   # resumable
python -m benchmarks --workloads GMM:2 C2D:1 --budget 64 --k 4
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import subprocess
import sys
from pathlib import Path

from .profiles import PROFILES
from .tuning_runs import execute, load_run, plan

ROOT = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--workloads", nargs="+", help="NAME:INDEX list (overrides the profile)")
    parser.add_argument("--budget", type=int, help="B, droplet's trials")
    parser.add_argument("--k", type=int, help="evolutionary also runs with k*B trials")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--per-iter", type=int, dest="per_iter")
    parser.add_argument("--no-postopt", action="store_true", help="skip TVM's post-pass runs")
    parser.add_argument(
        "--droplet-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a DropletSearch option for the droplet runs (repeatable), e.g. explore_trials=32",
    )
    parser.add_argument("--out", type=Path, help="output folder (default bench_out/<profile>)")
    return parser


def _environment() -> dict:
    import tvm

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "cpu": tvm.target.codegen.llvm_get_system_cpu(),
        "machine": platform.processor() or platform.machine(),
        "tvm": tvm.__version__,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write results.json and curves.png."""
    args = _parser().parse_args(argv)
    overrides = {
        name: getattr(args, name)
        for name in ("budget", "k", "per_iter")
        if getattr(args, name) is not None
    }
    if args.workloads:
        overrides["workloads"] = tuple(args.workloads)
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.no_postopt:
        overrides["postopt"] = False
    profile = dataclasses.replace(PROFILES[args.profile], **overrides)
    out = args.out or ROOT / "bench_out" / args.profile
    out.mkdir(parents=True, exist_ok=True)

    from ms_droplet.job import host_target
    from ms_droplet.workloads import parse_workload

    for workload in profile.workloads:
        parse_workload(workload)  # a bad name fails now, not an hour in
    target = host_target()
    # TVM parses every tensor intrinsic on the first TuneContext of a process (~20 s on 2
    # cores); pay it here so that it lands in no run's tuning time.
    import tvm.s_tir.tensor_intrin  # noqa: F401

    from ms_droplet.cli import _parse_option
    from ms_droplet.options import resolve_options

    droplet_options = dict(_parse_option(text) for text in args.droplet_option)
    resolve_options(droplet_options)  # a bad option fails now
    specs = plan(profile, droplet_options)
    runs = []
    for index, spec in enumerate(specs, 1):
        done = load_run(out, spec)
        if done is not None:
            print(f"[{index}/{len(specs)}] {spec.run_id}: done before, kept", flush=True)
        else:
            print(f"[{index}/{len(specs)}] {spec.run_id}: tuning", flush=True)
            done = execute(spec, out, target)
        runs.append(done)

    print("re-measuring every run's best schedule in a fresh process...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "benchmarks.remeasure", str(out), str(profile.remeasure_rounds)],
        cwd=ROOT,
        check=True,
    )
    latencies = json.loads((out / "remeasure.json").read_text())

    from .plot import plot
    from .reference import in_child
    from .report import figures, table

    flops, numpy_ref = {}, {}
    for workload in profile.workloads:
        flops[workload] = parse_workload(workload).flops
        if workload.startswith("GMM:"):
            from tvm.s_tir.meta_schedule.testing import te_workload

            batch, n, m, k = te_workload.CONFIGS["GMM"][1][int(workload.split(":")[1])][:4]
            numpy_ref[workload] = in_child(n, m, k)
    report = figures(
        runs,
        latencies,
        flops,
        {w: r["gflops"] for w, r in numpy_ref.items()},
        profile.budget,
        profile.k,
    )
    results = {
        "environment": _environment(),
        "profile": dataclasses.asdict(profile),
        "target": str(target),
        "numpy": numpy_ref,
        "report": report,
        "runs": [{key: run[key] for key in run if key != "curve"} for run in runs],
        "curves": {run["run_id"]: run["curve"] for run in runs},
        "remeasured": latencies,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(runs, out / "curves.png")
    print(table(report, profile.budget, profile.k))
    print(f"\nresults: {out / 'results.json'}\nplot: {out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
