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
python -m benchmarks --model cnn --seeds 0 1          # a whole Relax model through tune_relax
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .e2e import SCHEDULERS
from .environment import environment, tuned_commit
from .profiles import add_profile_arguments, profile_from_args
from .remeasure import NOISY_SPREAD
from .tuning_runs import (
    plan,
    prepare,
    print_noisy,
    remeasure_attempts,
    remeasure_in_child,
    run_all,
)

ROOT = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    add_profile_arguments(parser)
    parser.add_argument(
        "--k", type=int, help="evolutionary also runs with k*B trials (k*N for --model, default 3)"
    )
    parser.add_argument(
        "--model",
        help="end to end: tune this Relax model (cnn, transformer, tiny, resnet18) with "
        "tune_relax; --budget is then N, the global trials (default: the model's)",
    )
    parser.add_argument(
        "--scheduler", choices=SCHEDULERS, default="gradient", help="task scheduler (--model)"
    )
    parser.add_argument(
        "--droplet-variant",
        action="append",
        default=[],
        metavar="NAME=VALUE[,NAME=VALUE]",
        help="with --model: also run droplet with these options (repeatable)",
    )
    parser.add_argument("--rounds", type=int, default=10, help="re-measurement rounds (--model)")
    parser.add_argument(
        "--remeasures",
        type=int,
        default=3,
        help="fresh re-measuring processes at most; a noisy one is followed by another, and "
        "the quietest is reported (default 3)",
    )
    parser.add_argument(
        "--noisy-spread",
        type=float,
        default=NOISY_SPREAD,
        help="the spread of a kernel's or a model's rounds (interquartile range over median) "
        f"that makes a re-measure noisy (default {NOISY_SPREAD})",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        help="also write the summary JSON here (PROFILE-summary.json, or e2e-summary.json with "
        "--model; both are always written into --out)",
    )
    parser.add_argument(
        "--only",
        choices=("droplet", "evolutionary"),
        help="with --model: tune and report only this method's runs",
    )
    parser.add_argument(
        "--separate-n",
        action="store_true",
        help="with --model: tune evolutionary at N on its own, not as the first N trials of "
        "its k*N run",
    )
    parser.add_argument("--no-postopt", action="store_true", help="skip TVM's post-pass runs")
    parser.add_argument(
        "--droplet-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a DropletSearch option for the droplet runs (repeatable), e.g. explore_trials=32",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write results.json and curves.png."""
    args = _parser().parse_args(argv)
    if args.remeasures < 1 or args.noisy_spread < 0:
        print(
            f"error: --remeasures must be at least 1 (got {args.remeasures}) and --noisy-spread "
            f"at least 0 (got {args.noisy_spread})",
            file=sys.stderr,
        )
        return 2
    if args.model:
        if args.target not in (None, "host") or args.time_limit is not None:
            print(
                "error: --target and --time-limit are per-kernel options, not --model's",
                file=sys.stderr,
            )
            return 2
        from .e2e import main as model_main

        try:
            return model_main(args)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    profile = profile_from_args(args)
    if args.k is not None:
        profile = dataclasses.replace(profile, k=args.k)
    if args.no_postopt:
        profile = dataclasses.replace(profile, postopt=False)
    out = args.out or ROOT / "bench_out" / args.profile
    out.mkdir(parents=True, exist_ok=True)

    try:
        target = prepare(profile.workloads, profile.target)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from ms_droplet.cli import _parse_option
    from ms_droplet.options import resolve_options
    from ms_droplet.workloads import parse_workload

    droplet_options = dict(_parse_option(text) for text in args.droplet_option)
    resolve_options(droplet_options)  # a bad option fails now
    runs = run_all(plan(profile, droplet_options), out, target, args.time_limit)
    latencies = remeasure_in_child(
        out, profile.remeasure_rounds, args.remeasures, args.noisy_spread
    )

    from .plot import plot
    from .remeasure import numpy_key
    from .report import attempts_text, figures, summary_document, table

    flops = {workload: parse_workload(workload).flops for workload in profile.workloads}
    numpy_ref = {}
    for workload in profile.workloads:
        reference = latencies.get(numpy_key(workload))
        if reference and "latency_s" in reference:
            gflops = flops[workload] / reference["latency_s"] / 1e9
            numpy_ref[workload] = {"gflops": gflops, "blas": reference.get("blas")}
    report = figures(
        runs,
        latencies,
        flops,
        {w: r["gflops"] for w, r in numpy_ref.items()},
        profile.budget,
        profile.k,
    )
    results = {
        "environment": environment(),
        "profile": dataclasses.asdict(profile),
        "target": str(target),
        "numpy": numpy_ref,
        "report": report,
        "runs": [{key: run[key] for key in run if key != "curve"} for run in runs],
        "curves": {run["run_id"]: run["curve"] for run in runs},
        "remeasured": latencies,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    document = summary_document(report, profile.seeds, tuned_commit(runs))
    document = json.dumps(document, indent=1) + "\n"
    (out / f"{args.profile}-summary.json").write_text(document)
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(document)
    plot(runs, out / "curves.png", latencies)
    print(table(report, profile.budget, profile.k))
    moved = attempts_text(runs, remeasure_attempts(out), flops, profile.budget, profile.k)
    if moved:
        print(moved)
    print_noisy(latencies, args.noisy_spread)
    print(f"\nresults: {out / 'results.json'}\nplot: {out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
