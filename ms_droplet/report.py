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
"""``ms-droplet report``: what a MetaSchedule work_dir holds, per task, as a table, PNGs and JSON.

Any work_dir of ``tune_tir``/``tune_relax``/``tune_tasks`` reads, stock or droplet. The JSON
database's files are read line by line in the order the records were written (the order of the
trials), whole lines only, so a run still writing the work_dir is read as it stood, never
changed. Droplet's provenance side file, matched to records by program, names the phase that
measured each trial; a stock run's trials are all ``evolutionary``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import _tvm
from .adapters.database import target_key
from .adapters.provenance import PROVENANCE_FILE, read_provenance
from .inputs import RECORD_FILE, WORKLOAD_FILE, UserInputError, check_database_files
from .workdir import task_name_of, unique_task_names

EVOLUTIONARY = "evolutionary"
EXPLORE_PHASES = ("explore", EVOLUTIONARY)
# One colour per phase in every plot: exploration orange, droplet's descents blue and green.
PHASE_COLOURS = {
    EVOLUTIONARY: "tab:orange",
    "explore": "tab:orange",
    "warm-start": "tab:purple",
    "descent": "tab:blue",
    "restart": "tab:green",
    "control": "tab:gray",
}


@dataclass
class Trial:
    """One measured candidate of a task: its trial number, latency (None: failed), phase."""

    trial: int
    seconds: float | None
    phase: str


@dataclass
class TaskReport:
    """One task (workload on one target) of a work_dir."""

    name: str
    target: str
    flop: float
    trials: list[Trial] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Trials that failed to build or run."""
        return sum(1 for trial in self.trials if trial.seconds is None)

    @property
    def best(self) -> Trial | None:
        """The fastest trial (the first of equals)."""
        measured = [trial for trial in self.trials if trial.seconds is not None]
        return min(measured, key=lambda trial: trial.seconds, default=None)

    @property
    def explore_best(self) -> float | None:
        """The fastest exploration (or stock evolutionary) trial's latency."""
        explored = [
            t.seconds for t in self.trials if t.seconds is not None and t.phase in EXPLORE_PHASES
        ]
        return min(explored, default=None)

    def summary(self) -> dict[str, Any]:
        """The task's figures, as the table and the JSON show them."""
        best = self.best
        explore_best = self.explore_best
        gain = None
        descended = any(trial.phase not in EXPLORE_PHASES for trial in self.trials)
        if descended and best is not None and explore_best is not None:
            gain = 100.0 * (explore_best / best.seconds - 1.0)
        return {
            "task": self.name,
            "target": self.target,
            "trials": len(self.trials),
            "failed": self.failed,
            "best_us": None if best is None else best.seconds * 1e6,
            "gflops": None if best is None or not self.flop else self.flop / best.seconds / 1e9,
            "best_phase": None if best is None else best.phase,
            "best_trial": None if best is None else best.trial,
            "explore_best_us": None if explore_best is None else explore_best * 1e6,
            "descent_gain_pct": gain,
        }


def read_work_dir(work_dir: str | Path) -> list[TaskReport]:
    """Every task of a work_dir with its trials in the order they were recorded.

    Raises
    ------
    UserInputError
        When the work_dir holds no MetaSchedule JSON database.
    """
    work_dir = Path(work_dir)
    workload_file, record_file = work_dir / WORKLOAD_FILE, work_dir / RECORD_FILE
    if not workload_file.exists() or not record_file.exists():
        raise UserInputError(
            f"{work_dir} holds no MetaSchedule database: expected {WORKLOAD_FILE} and "
            f"{RECORD_FILE} there (what tune_tir/tune_relax write into their work_dir)"
        )
    check_database_files(work_dir)  # a corrupt line is named by its file and number
    workloads = [
        _tvm.ms.database.Workload.from_json(entry) for entry in _whole_lines(workload_file)
    ]
    # A program measured more than once (a descent's centre measured again as a control) has
    # an entry per measurement, in the order of its records.
    phases: dict[str, list[str]] = {}
    names = {}
    for entry in read_provenance(work_dir / PROVENANCE_FILE):
        phases.setdefault(entry["program"], []).append(entry["phase"])
        names[entry["workload"]] = entry["task"]
    records_of: dict[str, int] = {}
    tasks: dict[tuple[int, str | None], TaskReport] = {}
    for index, record_json in _whole_lines(record_file):
        if not 0 <= index < len(workloads):
            continue  # a record whose workload line was not written yet
        record = _tvm.ms.database.TuningRecord.from_json(record_json, workloads[index])
        key = (index, target_key(record.target))
        task = tasks.get(key)
        if task is None:
            mod = workloads[index].mod
            # The scheduler's task name where droplet's side file gives it, else the blocks'.
            name = names.get(f"{_tvm.module_hash(mod):016x}") or task_name_of(mod)
            task = tasks[key] = TaskReport(name, _target_text(record.target), _flop(mod))
        samples = _tvm.valid_seconds(record.run_secs)
        seconds = None if samples is None else math.fsum(samples) / len(samples)
        phase = _phase(record, phases, records_of) if phases else EVOLUTIONARY
        task.trials.append(Trial(len(task.trials) + 1, seconds, phase))
    unique_task_names(list(tasks.values()))
    return list(tasks.values())


def _phase_order(phase: str) -> int:
    order = list(PHASE_COLOURS)
    return order.index(phase) if phase in order else len(order)


def _whole_lines(path: Path) -> list[Any]:
    """The JSON of every whole line (a last line still being written is left out)."""
    return [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1] if line.strip()]


def _phase(record: Any, phases: dict[str, list[str]], records_of: dict[str, int]) -> str:
    """The phase of a record's program's next provenance entry (its last, once used up)."""
    try:
        candidate = record.as_measure_candidate()
    except Exception:  # a record this TVM cannot replay: its phase is unknown
        return "unknown"
    program = f"{_tvm.module_hash(candidate.sch.mod):016x}"
    entries = phases.get(program)
    if not entries:
        return EVOLUTIONARY
    seen = records_of.get(program, 0)
    records_of[program] = seen + 1
    return entries[min(seen, len(entries) - 1)]


def _flop(mod: Any) -> float:
    try:
        return _tvm.estimate_flops(mod)
    except Exception:  # a workload TVM cannot count: no GFLOP/s
        return 0.0


def _target_text(target: Any) -> str:
    config = dict(target.export())
    keep = ("kind", "mcpu", "arch", "num-cores")
    return json.dumps({key: config[key] for key in keep if key in config}, default=str)


# ---------------------------------------------------------------------------------------------
def table(tasks: list[TaskReport]) -> str:
    """The per-task table, as text."""
    header = ["task", "trials", "failed", "best us", "GFLOP/s", "found by", "descent gain"]
    rows = [header]
    for task in tasks:
        row = task.summary()
        rows.append(
            [
                row["task"],
                str(row["trials"]),
                str(row["failed"]),
                _number(row["best_us"], ".2f"),
                _number(row["gflops"], ".2f"),
                f"{row['best_phase']} (trial {row['best_trial']})" if row["best_phase"] else "-",
                _number(row["descent_gain_pct"], "+.1f", "%"),
            ]
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _number(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def plot_task(task: TaskReport, path: Path) -> None:
    """A PNG of the task's tuning curve: each trial's latency by phase, and the best so far."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    phases = sorted({trial.phase for trial in task.trials}, key=_phase_order)
    for phase in phases:
        points = [t for t in task.trials if t.phase == phase and t.seconds is not None]
        axes.scatter(
            [t.trial for t in points],
            [t.seconds * 1e6 for t in points],
            s=14,
            color=PHASE_COLOURS.get(phase, "tab:gray"),
            label=phase,
            alpha=0.7,
        )
    best_so_far, best = [], math.inf
    for trial in task.trials:
        if trial.seconds is not None:
            best = min(best, trial.seconds)
        best_so_far.append(best * 1e6 if best < math.inf else math.nan)
    axes.step(
        [t.trial for t in task.trials],
        best_so_far,
        where="post",
        color="black",
        label="best so far",
    )
    failed = [t.trial for t in task.trials if t.seconds is None]
    if failed:  # along the top edge: a failure has no latency
        axes.scatter(
            failed,
            [0.97] * len(failed),
            marker="x",
            color="red",
            label="failed",
            transform=axes.get_xaxis_transform(),
        )
    measured = [t.seconds for t in task.trials if t.seconds is not None]
    if measured and max(measured) / min(measured) > 20:
        axes.set_yscale("log")
    summary = task.summary()
    title = f"{task.name}: best {_number(summary['best_us'], '.2f')} us"
    if summary["gflops"]:
        title += f" ({summary['gflops']:.1f} GFLOP/s)"
    title += f", {summary['trials']} trials"
    if summary["descent_gain_pct"] is not None:
        title += f", descent {summary['descent_gain_pct']:+.1f}% over exploration"
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("trial")
    axes.set_ylabel("latency (us)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(tasks: list[TaskReport], work_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a PNG per task and ``report.json`` (table figures and curves) into ``out_dir``.

    Returns
    -------
    path : Path
        The JSON summary's path.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = []
    for number, task in enumerate(tasks):
        png = out_dir / f"task_{number}_{_file_name(task.name)}.png"
        plot_task(task, png)
        curve = [asdict(trial) for trial in task.trials]
        summaries.append({**task.summary(), "png": png.name, "curve": curve})
    path = out_dir / "report.json"
    report = {"work_dir": str(Path(work_dir).resolve()), "tasks": summaries}
    path.write_text(json.dumps(report, indent=1))
    return path


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60]
