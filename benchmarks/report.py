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
"""The benchmark's figures, from finished runs and their re-measured latencies (no TVM).

Per workload (geometric mean over seeds) and over all workloads (geometric mean):

* ``equal_budget_ratio``: droplet at B / evolutionary at B (below 1: droplet wins);
* ``budget_ratio``: droplet at B / evolutionary at k*B;
* ``postopt_ratio``: droplet at B / TVM's built-in post-pass at B trials in total;
* ``trials_to_match``: trials evolutionary (k*B run) needed to reach droplet's best, both as
  measured while tuning, or None when it never did;
* ``wall_ratio``: droplet's tuning seconds / evolutionary's at k*B;
* ``gflops`` of every method, and for GEMM the fraction of numpy's GFLOP/s;
* ``overhead``: DropletSearch's own seconds / droplet's tuning seconds;
* ``remeasured_over_recorded``: droplet's best program re-measured / the best latency its
  database recorded while tuning (above 1: the record a user gets was a lucky measurement).

Over all workloads, ``interval_95`` holds the 95% confidence interval of the equal-budget and
budget ratios' geometric means (:func:`geomean_interval`, every workload and seed one sample), so
that a goal a few percent from a geomean reads as shown, refuted or undecided.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from .remeasure import worst_spread

# The ratios whose geometric mean over all workloads gets a confidence interval.
INTERVAL_RATIOS = ("equal_budget_ratio", "budget_ratio")
# The per-workload figures that are ratios, combined by geometric mean.
RATIOS = (
    "equal_budget_ratio",
    "budget_ratio",
    "postopt_ratio",
    "wall_ratio",
    "overhead",
    "numpy_fraction",
    "remeasured_over_recorded",
)
# Runs tuned further apart than this are not one sitting: the same search and seed took 1.5 -
# 1.75x as long one night as that afternoon (RESULTS.md), so a wall ratio of such runs is
# flagged. One invocation of the harness tunes a pair within it: minutes apart in a model's
# runs, at most 1.6 h apart in the standard profile's (its runs at 4B come last).
PAIRED_HOURS = 2.0


def geomean(values: Iterable[float]) -> float | None:
    """Geometric mean of the positive values, or None if there are none."""
    logs = [math.log(v) for v in values if v is not None and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None


def geomean_interval(
    values: Iterable[float | None], confidence: float = 0.95
) -> tuple[float, float] | None:
    """Confidence interval of the geometric mean of the positive ``values``.

    Student's t interval of the mean of their logarithms, taken back to ratios: the runs of a
    strategy are independent draws (seeds) whose log-ratios spread about evenly around their
    mean, and with a handful of seeds the t distribution's wide tails are the point.

    Returns
    -------
    interval : Optional[Tuple[float, float]]
        ``(low, high)``, or ``None`` with fewer than two values.
    """
    logs = [math.log(v) for v in values if v is not None and v > 0]
    if len(logs) < 2:
        return None
    # Imported here: every other figure of the report needs only the standard library.
    from scipy import stats

    centre = sum(logs) / len(logs)
    scale = stats.sem(logs)
    if scale == 0:
        return math.exp(centre), math.exp(centre)
    low, high = stats.t.interval(confidence, len(logs) - 1, loc=centre, scale=scale)
    return math.exp(low), math.exp(high)


def format_value(value: float | None, spec: str = ".3f") -> str:
    """``value`` formatted with ``spec``, or ``-`` for a figure a run does not have (None, NaN)."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "-" if missing else format(value, spec)


def format_interval(
    interval: tuple[float, float] | None, spec: str = ".3f", between: str = " - "
) -> str:
    """``low - high`` of a :func:`geomean_interval`, or ``-`` for none."""
    if interval is None:
        return "-"
    return f"{format(interval[0], spec)}{between}{format(interval[1], spec)}"


def hours_apart(run: dict, other: dict | None) -> float | None:
    """Hours between the ends of two runs' tuning; None where either has no ``finished_at``."""
    if other is None or not run.get("finished_at") or not other.get("finished_at"):
        return None
    end, other_end = (datetime.fromisoformat(r["finished_at"]) for r in (run, other))
    return abs((end - other_end).total_seconds()) / 3600


def unpaired_text(names: list[str]) -> str:
    """The line under a table naming the seeds whose wall ratio compares two sittings."""
    return (
        f"wall ratio of runs tuned more than {PAIRED_HOURS:g} h apart for {', '.join(names)}: "
        "the machine's speed moves over hours; tune both again to compare their times"
    )


def trials_to_match(curve: list, target: float) -> int | None:
    """First trial count at which a best-so-far curve reaches ``target`` (seconds)."""
    for trials, best, _ in curve:
        if best <= target:
            return int(trials)
    return None


def _key(run: dict, budget: int, k: int) -> str | None:
    method, run_budget = run["spec"]["method"], run["spec"]["budget"]
    if method == "evolutionary":
        return "evolutionary@B" if run_budget == budget else "evolutionary@kB"
    return method if run_budget == budget else None


def figures(
    runs: list[dict], latencies: dict[str, dict], flops: dict, numpy_gflops: dict, budget, k
) -> dict:
    """All figures of the report; see the module docstring."""
    by_workload: dict[str, dict[int, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for run in runs:
        key = _key(run, budget, k)
        if key:
            by_workload[run["spec"]["workload"]][run["spec"]["seed"]][key] = run
    per_workload = {}
    for workload, seeds in sorted(by_workload.items()):
        rows = []
        for seed, methods in sorted(seeds.items()):
            latency = {
                key: latencies.get(run["run_id"], {}).get("latency_s")
                for key, run in methods.items()
            }
            droplet = methods.get("droplet")
            evo_kb = methods.get("evolutionary@kB")
            row = {
                "seed": seed,
                "latency_us": {m: (v * 1e6 if v else None) for m, v in latency.items()},
                "gflops": {
                    m: (flops[workload] / v / 1e9 if v else None) for m, v in latency.items()
                },
                "tuning_seconds": {m: r["tuning_seconds"] for m, r in methods.items()},
            }
            ratio = _ratio(latency)
            row.update(ratio)
            if droplet and evo_kb and droplet["curve"]:
                row["trials_to_match"] = trials_to_match(evo_kb["curve"], droplet["curve"][-1][1])
                row["wall_ratio"] = droplet["tuning_seconds"] / evo_kb["tuning_seconds"]
                row["hours_apart"] = hours_apart(droplet, evo_kb)
            if droplet and droplet["curve"] and latency.get("droplet"):
                row["remeasured_over_recorded"] = latency["droplet"] / droplet["curve"][-1][1]
            if droplet and droplet.get("droplet_own_seconds") is not None:
                row["overhead"] = droplet["droplet_own_seconds"] / droplet["tuning_seconds"]
            if workload in numpy_gflops and row["gflops"].get("droplet"):
                row["numpy_fraction"] = row["gflops"]["droplet"] / numpy_gflops[workload]
            rows.append(row)
        per_workload[workload] = _combine(rows)
    summary = {name: geomean(w.get(name) for w in per_workload.values()) for name in RATIOS}
    interval = {
        name: geomean_interval(row.get(name) for w in per_workload.values() for row in w["seeds"])
        for name in INTERVAL_RATIOS
    }
    return {"workloads": per_workload, "geomean": summary, "interval_95": interval}


def summary_document(report: dict, seeds: list[int], commit: str) -> dict:
    """The ``<profile>-summary.json`` document: the figures a goal is judged by.

    ``commit`` is the commit of ``ms_droplet/`` the droplet runs were tuned with
    (:func:`~benchmarks.environment.tuned_commit`), so a later change to the strategy visibly
    outdates the figures.
    """

    def figures_of(row: dict) -> dict:
        overhead = row.get("overhead")
        return {
            "equal_budget": row.get("equal_budget_ratio"),
            "budget": row.get("budget_ratio"),
            "wall": row.get("wall_ratio"),
            "overhead_pct": None if overhead is None else 100.0 * overhead,
            "remeasured_over_recorded": row.get("remeasured_over_recorded"),
        }

    return {
        "commit": commit,
        "seeds": seeds,
        "geomean": figures_of(report["geomean"]),
        "interval_95": {
            "equal_budget": report["interval_95"]["equal_budget_ratio"],
            "budget": report["interval_95"]["budget_ratio"],
        },
        "workloads": {name: figures_of(row) for name, row in report["workloads"].items()},
    }


def _ratio(latency: dict[str, float | None]) -> dict[str, float | None]:
    droplet = latency.get("droplet")

    def over(other: str) -> float | None:
        value = latency.get(other)
        return droplet / value if droplet and value else None

    return {
        "equal_budget_ratio": over("evolutionary@B"),
        "budget_ratio": over("evolutionary@kB"),
        "postopt_ratio": over("postopt"),
    }


def _combine(rows: list[dict]) -> dict:
    """Geometric mean over seeds of every number; the seeds' rows are kept too."""
    combined: dict = {"seeds": rows}
    for name in RATIOS:
        combined[name] = geomean(r.get(name) for r in rows)
    for name in ("latency_us", "gflops", "tuning_seconds"):
        methods = {m for r in rows for m in r[name]}
        combined[name] = {m: geomean(r[name].get(m) for r in rows) for m in sorted(methods)}
    matches = [r.get("trials_to_match") for r in rows if "trials_to_match" in r]
    combined["trials_to_match"] = matches
    return combined


def _row(cells: list[tuple[float | None, str, int]]) -> str:
    """Table cells, each ``(value, spec, width)`` right-aligned and separated by a space."""
    return " ".join(f"{format_value(value, spec):>{width}}" for value, spec, width in cells)


def table(report: dict, budget: int, k: int) -> str:
    """A plain-text table of the report."""
    lines = [
        f"{'workload':<8} {'drop us':>9} {'evo@B us':>9} {f'evo@{k}B us':>10} {'post us':>9} "
        f"{'eq ratio':>8} {'bud ratio':>9} {'post rat':>8} {'match':>7} {'wall':>6} "
        f"{'GFLOP/s':>8} {'np frac':>7} {'ovh %':>6} {'re/rec':>6}"
    ]
    for workload, w in report["workloads"].items():
        lat, gf = w["latency_us"], w["gflops"]
        match = w["trials_to_match"]
        match_text = ",".join(str(m) if m else f">{k * budget}" for m in match) or "-"
        cells = [
            (lat.get("droplet"), ".2f", 9),
            (lat.get("evolutionary@B"), ".2f", 9),
            (lat.get("evolutionary@kB"), ".2f", 10),
            (lat.get("postopt"), ".2f", 9),
            (w["equal_budget_ratio"], ".3f", 8),
            (w["budget_ratio"], ".3f", 9),
            (w["postopt_ratio"], ".3f", 8),
        ]
        tail = [
            (w["wall_ratio"], ".2f", 6),
            (gf.get("droplet"), ".1f", 8),
            (w["numpy_fraction"], ".2f", 7),
            (w["overhead"] and 100 * w["overhead"], ".2f", 6),
            (w["remeasured_over_recorded"], ".3f", 6),
        ]
        lines.append(f"{workload:<8} {_row(cells)} {match_text:>7} {_row(tail)}")
    g = report["geomean"]
    cells = [
        (g["equal_budget_ratio"], ".3f", 8),
        (g["budget_ratio"], ".3f", 9),
        (g["postopt_ratio"], ".3f", 8),
    ]
    wall = _row([(g["wall_ratio"], ".2f", 6)])
    tail = [
        (g["numpy_fraction"], ".2f", 7),
        (g["overhead"] and 100 * g["overhead"], ".2f", 6),
        (g["remeasured_over_recorded"], ".3f", 6),
    ]
    # No latency, trials to match or GFLOP/s for a geomean: those columns stay blank.
    blank_latencies = f"{'':>9} {'':>9} {'':>10} {'':>9}"
    lines.append(
        f"{'geomean':<8} {blank_latencies} {_row(cells)} {'':>7} {wall} {'':>8} {_row(tail)}"
    )
    lines.append(f"95% confidence intervals of the geomeans: {interval_text(report)}")
    unpaired = [
        f"{workload} seed {row['seed']}"
        for workload, w in report["workloads"].items()
        for row in w["seeds"]
        if (row.get("hours_apart") or 0) > PAIRED_HOURS
    ]
    if unpaired:
        lines.append(unpaired_text(unpaired))
    return "\n".join(lines)


def labelled_attempts(attempts: list[dict[str, dict]]) -> list[tuple[str, dict[str, dict]]]:
    """Each re-measure with its label, ``geomeans of re-measure N (worst spread X%)``.

    None for a single re-measure. The report's figures are the quietest re-measure's; lines
    under these labels show how far the ratios moved from one re-measuring process to the next.
    """
    if len(attempts) < 2:
        return []
    return [
        (
            f"geomeans of re-measure {number} (worst spread {100 * worst_spread(attempt):.3g}%)",
            attempt,
        )
        for number, attempt in enumerate(attempts, 1)
    ]


def attempts_text(
    runs: list[dict], attempts: list[dict[str, dict]], flops: dict, budget: int, k: int
) -> str:
    """Each re-measure's equal-budget and budget geomeans (:func:`labelled_attempts`)."""
    lines = []
    for label, attempt in labelled_attempts(attempts):
        means = figures(runs, attempt, flops, {}, budget, k)["geomean"]
        equal, total = means["equal_budget_ratio"], means["budget_ratio"]
        lines.append(f"{label}: equal budget {format_value(equal)}, budget {format_value(total)}")
    return "\n".join(lines)


def interval_text(report: dict) -> str:
    """The report's confidence intervals, e.g. ``equal budget 0.91 - 1.10, budget ...``."""
    names = {"equal_budget_ratio": "equal budget", "budget_ratio": "budget"}
    parts = []
    for name, interval in report.get("interval_95", {}).items():
        parts.append(f"{names.get(name, name)} {format_interval(interval)}")
    return ", ".join(parts) or "-"
