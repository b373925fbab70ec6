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
"""The end-to-end comparison: ratios per model and seed, tables, the summary JSON, the plot.

Every ratio compares compiled models re-measured together (:mod:`.e2e_remeasure`): droplet at
N over evolutionary at N and at k*N, and droplet's tuning time over evolutionary's at N. The
two latency ratios' geometric means over seeds come with their 95% confidence intervals
(:func:`~benchmarks.report.geomean_interval`, each seed one sample).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .report import (
    PAIRED_HOURS,
    format_interval,
    format_value,
    geomean,
    geomean_interval,
    hours_apart,
    labelled_attempts,
    unpaired_text,
)

# The ratios whose geometric mean over seeds gets a confidence interval.
INTERVAL_RATIOS = ("droplet_over_evolutionary_N", "droplet_over_evolutionary_kN")


def _by_key(runs: list[dict]) -> dict[tuple, dict]:
    """Every run by (model, variant, trials, seed), where droplet finds its evolutionary runs."""
    return {
        (run["spec"]["model"], run["variant"], run["spec"]["trials"], run["spec"]["seed"]): run
        for run in runs
    }


def figures(runs: list[dict], remeasured: dict[str, dict], k: int) -> dict[str, Any]:
    """Per model, variant and seed: the three ratios; their geometric means over seeds."""
    by_key = _by_key(runs)
    report: dict[str, Any] = {}
    for (model, variant, trials, seed), run in sorted(by_key.items()):
        if not variant.startswith("droplet"):
            continue
        evo_n = by_key.get((model, "evolutionary", trials, seed))
        evo_kn = by_key.get((model, "evolutionary", k * trials, seed))

        def latency(r: dict | None) -> float | None:
            return remeasured.get(r["run_id"], {}).get("latency_s") if r else None

        def over(a: float | None, b: float | None) -> float | None:
            return a / b if a and b else None

        row = {
            "seed": seed,
            "trials": trials,
            "droplet_us": (latency(run) or math.nan) * 1e6,
            "evolutionary_N_us": (latency(evo_n) or math.nan) * 1e6,
            "evolutionary_kN_us": (latency(evo_kn) or math.nan) * 1e6,
            "droplet_over_evolutionary_N": over(latency(run), latency(evo_n)),
            "droplet_over_evolutionary_kN": over(latency(run), latency(evo_kn)),
            "wall_over_evolutionary_N": over(
                run["tuning_seconds"], evo_n["tuning_seconds"] if evo_n else None
            ),
            "wall_over_evolutionary_kN": over(
                run["tuning_seconds"], evo_kn["tuning_seconds"] if evo_kn else None
            ),
            "droplet_seconds": run["tuning_seconds"],
            "evolutionary_N_seconds": evo_n["tuning_seconds"] if evo_n else None,
            "evolutionary_kN_seconds": evo_kn["tuning_seconds"] if evo_kn else None,
            "droplet_own_pct": 100 * (run.get("droplet_own_seconds") or 0) / run["tuning_seconds"],
            "hours_apart": hours_apart(run, evo_n),
        }
        entry = report.setdefault(model, {}).setdefault(variant, {"seeds": []})
        entry["seeds"].append(row)
    for variants in report.values():
        for entry in variants.values():
            entry["geomean"] = {
                name: geomean(row[name] for row in entry["seeds"] if row[name])
                for name in (
                    "droplet_over_evolutionary_N",
                    "droplet_over_evolutionary_kN",
                    "wall_over_evolutionary_N",
                    "wall_over_evolutionary_kN",
                )
            }
            entry["interval_95"] = {
                name: geomean_interval(row[name] for row in entry["seeds"])
                for name in INTERVAL_RATIOS
            }
    return report


def summary(
    report: dict, seeds: list[int], commit: str, variant: str = "droplet", k: int = 3
) -> dict[str, Any]:
    """The ``e2e-summary.json`` document: the default droplet's geometric means per model.

    ``commit`` is the commit of ``ms_droplet/`` the droplet runs were tuned with
    (:func:`~benchmarks.environment.tuned_commit`); the ratio to evolutionary search at k*N is
    named for ``k`` (``droplet_over_evolutionary_3N`` at the default k = 3).
    """
    models = {}
    for model, variants in report.items():
        means = variants.get(variant, {}).get("geomean")
        if means:
            intervals = variants[variant].get("interval_95", {})
            models[model] = {
                "droplet_over_evolutionary_N": means["droplet_over_evolutionary_N"],
                f"droplet_over_evolutionary_{k}N": means["droplet_over_evolutionary_kN"],
                "wall_over_evolutionary_N": means["wall_over_evolutionary_N"],
                "interval_95": {
                    "droplet_over_evolutionary_N": intervals.get("droplet_over_evolutionary_N"),
                    f"droplet_over_evolutionary_{k}N": intervals.get(
                        "droplet_over_evolutionary_kN"
                    ),
                },
            }
    return {"commit": commit, "seeds": seeds, "models": models}


def table(report: dict, k: int) -> str:
    """The model table: re-measured latencies, ratios and tuning times per variant and seed."""
    lines = [
        f"{'model':<12} {'variant':<34} {'seed':>4} {'droplet us':>11} {'evo N us':>10} "
        f"{f'evo {k}N us':>10} {'d/evo N':>8} {f'd/evo {k}N':>8} {'wall d/N':>8} {'own %':>6} "
        f"{'apart h':>7}"
    ]
    unpaired = []
    for model, variants in report.items():
        for variant, entry in variants.items():
            for row in entry["seeds"]:
                lines.append(
                    f"{model:<12} {variant:<34} {row['seed']:>4} "
                    f"{format_value(row['droplet_us'], '.1f'):>11} "
                    f"{format_value(row['evolutionary_N_us'], '.1f'):>10} "
                    f"{format_value(row['evolutionary_kN_us'], '.1f'):>10} "
                    f"{format_value(row['droplet_over_evolutionary_N']):>8} "
                    f"{format_value(row['droplet_over_evolutionary_kN']):>8} "
                    f"{format_value(row['wall_over_evolutionary_N']):>8} "
                    f"{format_value(row['droplet_own_pct'], '.1f'):>6} "
                    f"{format_value(row['hours_apart'], '.1f'):>7}"
                )
                if (row["hours_apart"] or 0) > PAIRED_HOURS:
                    unpaired.append(f"{model} {variant} seed {row['seed']}")
            means = entry["geomean"]
            lines.append(
                f"{model:<12} {variant:<34} {'geo':>4} {'':>11} {'':>10} {'':>10} "
                f"{format_value(means['droplet_over_evolutionary_N']):>8} "
                f"{format_value(means['droplet_over_evolutionary_kN']):>8} "
                f"{format_value(means['wall_over_evolutionary_N']):>8}"
            )
            intervals = entry.get("interval_95", {})
            lines.append(
                f"{model:<12} {variant:<34} {'95%':>4} confidence intervals of the geomeans: "
                f"d/evo N {format_interval(intervals.get('droplet_over_evolutionary_N'))}, "
                f"d/evo {k}N {format_interval(intervals.get('droplet_over_evolutionary_kN'))}"
            )
    if unpaired:
        lines.append(unpaired_text(unpaired))
    return "\n".join(lines)


def attempts_text(runs: list[dict], attempts: list[dict[str, dict]], k: int) -> str:
    """Each re-measure's geomeans per model and variant (:func:`~.report.labelled_attempts`)."""
    lines = []
    for label, attempt in labelled_attempts(attempts):
        for model, variants in figures(runs, attempt, k).items():
            for variant, entry in variants.items():
                means = entry["geomean"]
                lines.append(
                    f"{label}: {model} {variant}: "
                    f"d/evo N {format_value(means['droplet_over_evolutionary_N'])}, "
                    f"d/evo {k}N {format_value(means['droplet_over_evolutionary_kN'])}"
                )
    return "\n".join(lines)


def _remeasured_us(remeasured: dict[str, dict], run: dict, task: str) -> float | None:
    """A task's best program of ``run``, re-measured alone (:mod:`.e2e_remeasure`), in us."""
    entry = remeasured.get(run["run_id"], {}).get("tasks", {}).get(task)
    return entry["latency_s"] * 1e6 if entry else None


def task_table(runs: list[dict], remeasured: dict[str, dict]) -> str:
    """Per run and task: the trials the scheduler gave, the best latency, the phase.

    The best latency twice: as recorded while tuning and re-measured alone; and per run their
    weighted sums over the tasks.
    """
    lines = [
        f"{'run':<52} {'task':<34} {'weight':>6} {'trials':>6} {'best us':>10} "
        f"{'re-meas us':>10} phase"
    ]
    for run in runs:
        recorded_sum = remeasured_sum = 0.0
        for task in run["tasks"]:
            again = _remeasured_us(remeasured, run, task["task"])
            recorded_sum += task["weight"] * (task["best_us"] or math.nan)
            remeasured_sum += task["weight"] * (again or math.nan)
            lines.append(
                f"{run['run_id']:<52} {task['task']:<34} {task['weight']:>6.0f} "
                f"{task['trials']:>6} {format_value(task['best_us'], '.2f'):>10} "
                f"{format_value(again, '.2f'):>10} {task['phase']}"
            )
        lines.append(
            f"{run['run_id']:<52} {'weighted sum':<34} {'':>6} {'':>6} "
            f"{format_value(recorded_sum, '.2f'):>10} {format_value(remeasured_sum, '.2f'):>10}"
        )
    return "\n".join(lines)


def task_figures(runs: list[dict], remeasured: dict[str, dict]) -> dict[str, Any]:
    """Per model, droplet variant and task: droplet's best over evolutionary search's at N.

    Where on a model droplet gains and where it loses: per seed, the task's best program under
    droplet over its best under evolutionary search at the same N and seed, and the trials the
    scheduler gave each; the geometric mean over seeds, and in how many seeds droplet's was the
    faster. The ratio is of the two programs re-measured together (:mod:`.e2e_remeasure`)
    where both were, else of the tuning-time records (``basis`` says which), which were
    measured hours apart and, in a task's first batch, beside the next task's building, so that
    a seed's ratio moves with the machine; ``recorded_droplet_over_evolutionary_N`` keeps the
    records' ratio beside it.
    """
    by_key = _by_key(runs)
    report: dict[str, Any] = {}
    for (model, variant, trials, seed), run in sorted(by_key.items()):
        evo_n = by_key.get((model, "evolutionary", trials, seed))
        if not variant.startswith("droplet") or evo_n is None:
            continue
        evolutionary = {task["task"]: task for task in evo_n["tasks"]}
        for task in run["tasks"]:
            other = evolutionary.get(task["task"])
            if other is None or not (task["best_us"] and other["best_us"]):
                continue
            rows = report.setdefault(model, {}).setdefault(variant, {})
            entry = rows.setdefault(task["task"], {"weight": task["weight"], "seeds": []})
            recorded = task["best_us"] / other["best_us"]
            mine = _remeasured_us(remeasured, run, task["task"])
            theirs = _remeasured_us(remeasured, evo_n, task["task"])
            entry["seeds"].append(
                {
                    "seed": seed,
                    "droplet_trials": task["trials"],
                    "evolutionary_trials": other["trials"],
                    "droplet_phase": task["phase"],
                    "droplet_over_evolutionary_N": mine / theirs if mine and theirs else recorded,
                    "basis": "re-measured" if mine and theirs else "recorded",
                    "recorded_droplet_over_evolutionary_N": recorded,
                }
            )
    for variants in report.values():
        for tasks in variants.values():
            for entry in tasks.values():
                ratios = [row["droplet_over_evolutionary_N"] for row in entry["seeds"]]
                entry["geomean"] = geomean(ratios)
                entry["droplet_faster"] = sum(ratio < 1 for ratio in ratios)
    return report


def task_ratio_table(report: dict) -> str:
    """The per-task comparison of :func:`task_figures`, one line per model, variant and task.

    A seed's ratio marked ``*`` is of tuning-time records: one of its programs was not
    re-measured.
    """
    lines = [
        f"{'model':<12} {'variant':<34} {'task':<34} {'d/evo N':>8} {'faster':>7} "
        "per seed (droplet trials / evolutionary trials; * of records)"
    ]
    for model, variants in report.items():
        for variant, tasks in variants.items():
            for name, entry in tasks.items():
                seeds = " ".join(
                    f"{row['droplet_over_evolutionary_N']:.2f}"
                    f"{'*' if row['basis'] == 'recorded' else ''} "
                    f"({row['droplet_trials']}/{row['evolutionary_trials']})"
                    for row in entry["seeds"]
                )
                lines.append(
                    f"{model:<12} {variant:<34} {name:<34} {format_value(entry['geomean']):>8} "
                    f"{entry['droplet_faster']:>3}/{len(entry['seeds']):<3} {seeds}"
                )
    return "\n".join(lines)


def plot(runs: list[dict], remeasured: dict[str, dict], path: Path) -> None:
    """Per model: the scheduler's latency estimate against global trials, every run.

    A hollow marker at the end of each curve is the compiled model's re-measured latency.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({run["spec"]["model"] for run in runs})
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes.flat, models):
        for run in runs:
            if run["spec"]["model"] != model:
                continue
            points = [(point[0], point[1] * 1e6) for point in run["curve"] if point[1] is not None]
            if not points:
                continue
            label = f"{run['variant']} N={run['spec']['trials']} s{run['spec']['seed']}"
            style = "-" if run["variant"].startswith("droplet") else "--"
            (line,) = ax.plot(*zip(*points), style, label=label)
            latency = remeasured.get(run["run_id"], {}).get("latency_s")
            if latency:
                ax.plot(
                    [points[-1][0]],
                    [latency * 1e6],
                    "o",
                    markersize=8,
                    markerfacecolor="none",
                    color=line.get_color(),
                )
        ax.set_title(f"{model}: sum over tasks of weight x best latency")
        ax.set_xlabel("global trials")
        ax.set_ylabel("latency (us); o: compiled model re-measured")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
