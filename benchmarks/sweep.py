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
"""``python -m benchmarks.sweep``: droplet option variants against evolutionary search at B.

Each variant is a label and DropletSearch options; every variant tunes every workload and seed
at budget B, beside one evolutionary run at B per workload and seed. All final schedules are
re-measured together in one fresh process, and the table gives each variant's equal-budget ratio
(droplet / evolutionary at B) per workload and as a geometric mean: the figure that chooses
DropletSearch's defaults. Runs resume like the main benchmark's.

Example
-------
python -m benchmarks.sweep --variant e8:explore_trials=8 --variant e0:explore_trials=0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .environment import environment
from .profiles import add_profile_arguments, profile_from_args
from .report import figures, format_interval, format_value, geomean
from .tuning_runs import RunSpec, prepare, print_noisy, remeasure_in_child, run_all

ROOT = Path(__file__).resolve().parents[1]


def parse_variant(text: str) -> tuple[str, dict]:
    """``LABEL:NAME=VALUE,NAME=VALUE`` -> (label, checked options)."""
    from ms_droplet.cli import _parse_option
    from ms_droplet.options import resolve_options

    label, sep, body = text.partition(":")
    if not sep or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL:NAME=VALUE,..., got '{text}'")
    options = dict(_parse_option(item) for item in body.split(",") if item)
    try:
        resolve_options(options)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"variant '{label}': {err}") from err
    return label, options


def plan_sweep(profile, variants: dict[str, dict]) -> list[RunSpec]:
    """Evolutionary at B and every variant at B, per workload and seed, interleaved."""
    specs = []
    for workload in profile.workloads:
        for seed in profile.seeds:
            specs.append(RunSpec(workload, "evolutionary", profile.budget, seed, profile.per_iter))
            for options in variants.values():
                options = tuple(sorted(options.items()))
                specs.append(
                    RunSpec(workload, "droplet", profile.budget, seed, profile.per_iter, options)
                )
    return specs


def summarise(runs: list[dict], latencies: dict, flops: dict, variants: dict, budget: int) -> dict:
    """Per variant: the report's figures against evolutionary at B (see :mod:`.report`)."""
    evolutionary = [run for run in runs if run["spec"]["method"] == "evolutionary"]
    summary = {}
    for label, options in variants.items():
        mine = [
            run
            for run in runs
            if run["spec"]["method"] == "droplet" and run["spec"]["options"] == options
        ]
        report = figures(evolutionary + mine, latencies, flops, {}, budget, k=1)
        per_workload = report["workloads"]
        summary[label] = {
            "options": options,
            "equal_budget_ratio": report["geomean"]["equal_budget_ratio"],
            "equal_budget_interval_95": report["interval_95"]["equal_budget_ratio"],
            "overhead": report["geomean"]["overhead"],
            "wins": sum(1 for w in per_workload.values() if (w["equal_budget_ratio"] or 2.0) < 1.0),
            "workloads": {
                name: {
                    "equal_budget_ratio": w["equal_budget_ratio"],
                    "seed_ratios": [row.get("equal_budget_ratio") for row in w["seeds"]],
                    "tuning_seconds": w["tuning_seconds"].get("droplet"),
                    "evolutionary_seconds": w["tuning_seconds"].get("evolutionary@B"),
                }
                for name, w in per_workload.items()
            },
        }
        seconds = [w["tuning_seconds"] for w in summary[label]["workloads"].values()]
        evo_seconds = [w["evolutionary_seconds"] for w in summary[label]["workloads"].values()]
        summary[label]["time_ratio"] = geomean(
            s / e for s, e in zip(seconds, evo_seconds) if s and e
        )
    return summary


def table(summary: dict) -> str:
    """Workloads down, variants across: equal-budget ratios, then geomean, wins, time, overhead."""
    labels = list(summary)
    workloads = sorted({name for v in summary.values() for name in v["workloads"]})
    width = max(10, *(len(label) + 1 for label in labels))

    lines = ["equal-budget ratio (droplet / evolutionary at B; below 1: droplet faster)"]
    lines.append(f"{'workload':<10}" + "".join(f"{label:>{width}}" for label in labels))
    for name in workloads:
        cells = [
            summary[label]["workloads"].get(name, {}).get("equal_budget_ratio") for label in labels
        ]
        lines.append(f"{name:<10}" + "".join(f"{format_value(c):>{width}}" for c in cells))
    rows = (
        ("geomean", "equal_budget_ratio", ".3f"),
        ("wins", "wins", "d"),
        ("time x evo", "time_ratio", ".2f"),
        ("overhead", "overhead", ".3f"),
    )
    for title, key, spec in rows:
        lines.append(
            f"{title:<10}"
            + "".join(f"{format_value(summary[label][key], spec):>{width}}" for label in labels)
        )
    # The geomean's 95% confidence interval (every workload and seed one sample): a variant
    # whose interval holds another's geomean is not shown to differ from it.
    lines.append(
        f"{'95% CI':<10}"
        + "".join(
            f"{format_interval(summary[label]['equal_budget_interval_95'], '.2f', '-'):>{width}}"
            for label in labels
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; print the table; write sweep.json."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__)
    add_profile_arguments(parser)
    parser.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        required=True,
        metavar="LABEL:NAME=VALUE,...",
        help="a droplet variant (repeatable); spell out every swept option so that a later "
        "change of defaults does not change what a finished run means",
    )
    args = parser.parse_args(argv)
    variants = dict(args.variant)
    profile = profile_from_args(args)
    out = args.out or ROOT / "bench_out" / f"sweep-{args.profile}"
    out.mkdir(parents=True, exist_ok=True)
    target = prepare(profile.workloads)
    runs = run_all(plan_sweep(profile, variants), out, target)
    latencies = remeasure_in_child(out, profile.remeasure_rounds)

    from ms_droplet.workloads import parse_workload

    flops = {workload: parse_workload(workload).flops for workload in profile.workloads}
    summary = summarise(runs, latencies, flops, variants, profile.budget)
    result = {
        "environment": environment(),
        "profile": {
            "workloads": profile.workloads,
            "budget": profile.budget,
            "seeds": profile.seeds,
            "per_iter": profile.per_iter,
        },
        "target": str(target),
        "variants": summary,
        "runs": [{key: run[key] for key in run if key != "curve"} for run in runs],
        "curves": {run["run_id"]: run["curve"] for run in runs},
        "remeasured": latencies,
    }
    (out / "sweep.json").write_text(json.dumps(result, indent=1))
    print(table(summary))
    print_noisy(latencies)
    print(f"\nresults: {out / 'sweep.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
