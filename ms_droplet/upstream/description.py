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
"""The draft pull-request description, with the figures of the benchmark summaries.

The figures are read when the description is written, from the summaries the benchmark
harness writes (``benchmarks/results/*-summary.json``), so the description carries the latest
measured figures, each with the commit it measured.
"""

from __future__ import annotations

import json
from pathlib import Path

from .edits import UpstreamSourceError

RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

TITLE = '[MetaSchedule] DropletSearch: coordinate descent over trace decisions (strategy="droplet")'

_BODY = """\
## Motivation

MetaSchedule's `EvolutionarySearch` needs thousands of measurements per model. Droplet search
("Droplet Search", ACM TACO 2024; "Explore as a Storm, Exploit as a Raindrop", arXiv
2406.20037) spends a short exploration, then a coordinate descent from the fastest schedule
measured. This PR adds it as a search strategy, `strategy="droplet"`, next to `evolutionary`,
`replay-trace` and `replay-func`.

## Design

- `search_strategy/droplet_search.py`: `DropletSearch`, a `PySearchStrategy`. A task first
  spends at most `explore_trials` (32) of its budget, and at most half of it, in
  `EvolutionarySearch` (candidates and results pass through unchanged, so its cost model and
  database warm start work as before). Then every decision of the best measured trace (tile
  sizes, unroll and other categorical choices, compute locations, parallel and vectorize
  extents) becomes a coordinate; the descent proposes neighbours in both directions of every
  coordinate, replays them through `Trace.with_decision` and the postprocessors, drops programs
  whose structural hash the database already holds, and moves when a neighbour is faster beyond
  a one-sided Welch test. A batch measures a whole round of moves at once, so the next batch
  first tries the new centre with the round's other faster moves added (`combine_moves`). A
  converged descent restarts from the next-best distinct program. All
  of it runs inside the task scheduler's trial budget, through the user's builder, runner,
  database and measure callbacks; nothing is measured outside them.
- The cost model steers both phases once it has learned (two predictions of one program
  agree; `XGBModel` scores at random before it has seen 100 measurements): until then the
  exploration samples with `ReplayTrace` and the descent measures neighbours in its own order;
  after, `EvolutionarySearch` explores, the descent replays four batches' worth of neighbours
  and measures those the model ranks best, and each batch goes to the explorer or the descent,
  whichever gained more per second over its latest two batches (the explorer while neither
  gains). An explored program faster than every descent's centre starts the next descent. A
  design space with no sampling decision (a reshape or transpose) is measured whole in its
  first batch, at most 256 programs: `EvolutionarySearch`'s mutators change sampling decisions
  only, so it measures one program of such a space whatever its budget.
- The descent core (`Droplet`) is pure Python (ask/tell), unit-tested without building anything.
- Python, not C++: the strategy delegates its exploration to `EvolutionarySearch` and its
  replays to `Trace`/`Schedule`, so what remains is bookkeeping per batch; its own time is a
  few percent of tuning time at most (measured per workload, table below), and as a
  `PySearchStrategy` it stays one implementation with the package it is developed in.
- `SearchStrategy.create("droplet", **options)`; an unknown option raises `ValueError` naming it.
- `MetaScheduleTuneTIR`, `MetaScheduleTuneIRMod` and `static_shape_tuning_pipeline` take
  `strategy=` (default `"evolutionary"`, which keeps today's C++ pass). The C++ passes call the
  global `tune_tir` / `tune_relax` functions without a strategy, so another strategy runs the
  same call from a Python pass; no FFI signature changes.
- `testing/tune_te.py`: `tune_tir` returns a `Database`, which the script printed as if it were
  a `Schedule`; it now prints `compile_tir`'s schedule, and takes `--strategy`.
- Each measured candidate's phase (explore, descent, restart, warm start) is appended to
  `droplet_provenance.jsonl` beside a JSON database's files; the database files stay as they are.
- SciPy (Welch's t-test) is imported when a `DropletSearch` is constructed: TVM imports
  without it.

## `post_optimization`: a proposal

`tvm.s_tir.meta_schedule.post_optimization` already runs a droplet pass after tuning
(`tune_tir(..., post_optimization=True)`), as a second implementation beside the search
strategies. With `DropletSearch` the same effect is a strategy run on the finished work_dir: its
exploration counts the records already in the database, so it descends from the best one at
once and never re-measures a known program. Proposal: keep `post_optimization=True` for one
release, re-based on `DropletSearch` over the existing database, with a `DeprecationWarning`
pointing to `strategy="droplet"`; then remove the package. Not part of this PR.

## Measured

{figures}

Ratios are droplet's latency (or tuning time) over evolutionary search's, each method's best
schedule re-measured in one process (geometric means over workloads and seeds, in brackets their
95% confidence intervals: Student's t over the log-ratios, of every workload and seed per
kernel, of every seed per model); below 1 favours droplet. At equal budget the two have so far
ended within run-to-run noise of each other per kernel; what droplet adds is reaching
evolutionary search's kernels in fewer trials and less time (on whole models, not yet on every
model: see the table). Protocol and per-workload tables: `benchmarks/RESULTS.md` of ms_droplet,
the package this strategy is developed in (the module in this PR is generated from its sources).

## Testing

`tests/python/s_tir/meta_schedule/test_meta_schedule_droplet_search.py`: the factory and option
errors, the descent core on a known bowl, `tune_tir` exploring then descending on a 32x32 matmul
(the best schedule checked against numpy), and the strategy through `MetaScheduleTuneTIR` and
`static_shape_tuning_pipeline`.
"""


# What each benchmark profile measures (benchmarks/profiles.py of ms_droplet).
PROFILES = {
    "standard": "CPU: GEMM, conv2d, depthwise, conv1d, conv-bn-relu, norm",
    "cuda": "CUDA GPU: GEMM, conv2d",
}


def _ratio(value: float | None, interval: list[float] | None = None) -> str:
    """A geomean, with its 95% confidence interval where the summary has one."""
    if value is None:
        return "-"
    if not interval:
        return f"{value:.3f}"
    return f"{value:.3f} ({interval[0]:.3f} - {interval[1]:.3f})"


def _commits(summary: dict) -> str:
    """The summary's commit shortened; each of them where its runs were tuned on several."""
    return ", ".join(commit[:10] for commit in summary["commit"].split(", "))


def _kernel_rows(name: str, summary: dict) -> str:
    geomean, interval = summary["geomean"], summary.get("interval_95", {})
    return (
        f"| {name} ({PROFILES.get(name, 'see RESULTS.md')}) | {_commits(summary)} | "
        f"{', '.join(map(str, summary['seeds']))} | "
        f"{len(summary['workloads'])} | "
        f"{_ratio(geomean.get('equal_budget'), interval.get('equal_budget'))} | "
        f"{_ratio(geomean.get('budget'), interval.get('budget'))} | "
        f"{_ratio(geomean.get('wall'))} | {_ratio(geomean.get('overhead_pct'))} |"
    )


def figures(results_dir: Path = RESULTS_DIR) -> str:
    """Markdown tables of every benchmark summary in ``results_dir``."""
    summaries = sorted(Path(results_dir).glob("*-summary.json"))
    if not summaries:
        raise UpstreamSourceError(
            f"no benchmark summaries (*-summary.json) in {results_dir}: the description's "
            "figures come from them (python -m benchmarks ... --summary)"
        )
    kernels, models = [], []
    for path in summaries:
        summary = json.loads(path.read_text())
        profile = path.name.removesuffix("-summary.json")
        if "models" in summary:
            for model, ratios in sorted(summary["models"].items()):
                interval = ratios.get("interval_95", {})
                against = [
                    _ratio(ratios.get(name), interval.get(name))
                    for name in ("droplet_over_evolutionary_N", "droplet_over_evolutionary_3N")
                ]
                models.append(
                    f"| {model} | {_commits(summary)} | "
                    f"{', '.join(map(str, summary['seeds']))} | {' | '.join(against)} | "
                    f"{_ratio(ratios.get('wall_over_evolutionary_N'))} |"
                )
        else:
            kernels.append(_kernel_rows(profile, summary))
    parts = []
    if kernels:
        parts.append(
            "Per kernel (droplet at B trials; evolutionary at B and at 4B):\n\n"
            "| profile | commit | seeds | workloads | at B | against 4B | time against 4B "
            "| own overhead % |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(kernels)
        )
    if models:
        parts.append(
            "Whole models (`tune_relax`, droplet at N global trials; evolutionary at N and 3N):"
            "\n\n| model | commit | seeds | against N | against 3N | time against N |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(models)
        )
    return "\n\n".join(parts)


def pr_description(results_dir: Path = RESULTS_DIR) -> str:
    """The draft pull-request description (Markdown), title first."""
    return f"# {TITLE}\n\n" + _BODY.replace("{figures}", figures(results_dir))
