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
"""Post-optimise a finished MetaSchedule run: droplet descent from each task's best records.

:func:`post_optimize` opens the JSON database of a ``work_dir`` written by ``tune_tir``,
``tune_relax`` or ``tune_tasks`` (stock MetaSchedule or droplet), makes one task per workload
with records on the target, and gives them to MetaSchedule's own task scheduler with
:class:`~ms_droplet.strategy.DropletSearch` and no exploration: every task descends from its
fastest recorded programs (restarting from the next-best ones as descents converge), never
measures a recorded program again, and commits its new records through the Database API with the
builder and runner the caller picks. The global trial budget is never exceeded.

This is the job of TVM's ``post_optimization`` pass, which edits the JSON files behind the
Database API and misaligns results after a failed candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import _tvm
from .adapters.database import target_key
from .workdir import open_database, recorded_targets, recorded_tasks


@dataclass
class TaskGain:
    """What post-optimisation did for one task."""

    task: str
    records_before: int
    trials: int
    before_us: float | None
    after_us: float | None

    @property
    def speedup(self) -> float | None:
        """Best latency before over best latency after (above 1: faster now)."""
        if self.before_us is None or self.after_us is None:
            return None
        return self.before_us / self.after_us

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for JSON."""
        return {**asdict(self), "speedup": self.speedup}


def post_optimize(
    work_dir: str | Path,
    trials: int,
    *,
    target: Any = None,
    per_iter: int = 16,
    builder: Any = None,
    runner: Any = None,
    cost_model: Any = "xgb",
    task_scheduler: str = "gradient",
    options: Mapping[str, Any] | None = None,
    seed: int | None = 0,
) -> list[TaskGain]:
    """Run droplet descent from the best records of every task of a finished work_dir.

    Parameters
    ----------
    work_dir : str or Path
        A MetaSchedule work_dir with a JSON database (``database_*.json``).
    trials : int
        The global trial budget (new measurements, all tasks together).
    target : Optional[Target]
        The target whose records to improve; by default the one target of the records (an
        error names them when there are several).
    per_iter : int
        Candidates per batch.
    builder, runner : optional
        MetaSchedule builder and runner (a ``RPCRunner`` measures through an RPC tracker); by
        default :func:`~ms_droplet.job.fast_local_builder` and
        :func:`~ms_droplet.job.evaluator_runner`.
    cost_model : CostModel or str
        Ranks the descent's neighbours; it is first trained on the recorded programs.
    task_scheduler : str
        MetaSchedule's task scheduler, ``"gradient"`` or ``"round-robin"``.
    options : Optional[Mapping[str, Any]]
        DropletSearch options (``explore_trials`` defaults to 0 here).
    seed : Optional[int]
        Seed of the task scheduler and the descents.

    Returns
    -------
    gains : List[TaskGain]
        One row per task: best latency before and after, records added.

    Raises
    ------
    ValueError
        On a bad budget, an empty database, or a target the records do not name.
    FileNotFoundError
        When ``work_dir`` holds no database.
    """
    from .job import evaluator_runner, fast_local_builder
    from .strategy import DropletSearch

    if trials < 1 or per_iter < 1:
        raise ValueError(f"post-optimisation needs trials >= 1 and per_iter >= 1, got {trials}")
    strategy = DropletSearch(**{"explore_trials": 0, **dict(options or {})})
    work_dir = str(work_dir)
    database = open_database(work_dir, must_exist=True)
    target = _pick_target(database, target)
    if runner is None:
        _check_host_can_measure(target)
    tasks = [task for task in recorded_tasks(database, target) if task.best_seconds is not None]
    if not tasks:
        raise ValueError(f"{work_dir} holds no successful record for target {target}")
    ms = _tvm.ms
    names = [task.name for task in tasks]
    contexts = [
        ms.TuneContext(
            mod=task.workload.mod,
            target=target,
            space_generator="post-order-apply",
            search_strategy=strategy.clone(),
            task_name=name,
            rand_state=rand_state,
            num_threads="physical",
            logger=logger,
        )
        for task, name, logger, rand_state in zip(
            tasks,
            names,
            ms.logging.get_loggers_from_work_dir(work_dir, names),
            ms.utils.fork_seed(seed, n=len(tasks)),
        )
    ]
    ms.tune_tasks(
        tasks=contexts,
        task_weights=[1.0] * len(contexts),
        work_dir=work_dir,
        max_trials_global=trials,
        num_trials_per_iter=per_iter,
        builder=builder if builder is not None else fast_local_builder(),
        runner=runner if runner is not None else evaluator_runner(),
        database=database,
        cost_model=cost_model,
        task_scheduler=task_scheduler,
    )
    after = {_tvm.object_handle(t.workload): t for t in recorded_tasks(database, target)}
    gains = []
    for task in tasks:
        now = after.get(_tvm.object_handle(task.workload), task)
        gains.append(
            TaskGain(
                task=task.name,
                records_before=task.records,
                trials=now.records - task.records,
                before_us=_us(task.best_seconds),
                after_us=_us(now.best_seconds),
            )
        )
    return gains


def gains_table(gains: list[TaskGain]) -> str:
    """The per-task table ``ms-droplet post-opt`` prints."""
    width = max(4, *(len(gain.task) for gain in gains))
    lines = [
        f"{'task':<{width}}  {'records':>7}  {'trials':>6}  {'before us':>10}  {'after us':>10}"
        f"  {'speed-up':>8}"
    ]
    for gain in gains:
        lines.append(
            f"{gain.task:<{width}}  {gain.records_before:>7}  {gain.trials:>6}  "
            f"{_fmt(gain.before_us):>10}  {_fmt(gain.after_us):>10}  "
            f"{_fmt(gain.speedup, '.3f'):>8}"
        )
    return "\n".join(lines)


def _pick_target(database: Any, target: Any) -> Any:
    targets = recorded_targets(database)
    if not targets:
        raise ValueError("the database holds no tuning record with a target")
    if target is not None:
        target = target if isinstance(target, _tvm.Target) else _tvm.Target(target)
        if target_key(target) not in targets:
            raise ValueError(
                f"the database holds no record for target {target}; its records are for: "
                + "; ".join(str(t) for t in targets.values())
            )
        return target
    if len(targets) > 1:
        raise ValueError(
            "the database holds records of several targets; choose one with --target: "
            + "; ".join(str(t) for t in targets.values())
        )
    return next(iter(targets.values()))


def _check_host_can_measure(target: Any) -> None:
    """Refuse to measure on this machine code compiled for another CPU."""
    if target.kind.name != "llvm":
        return
    wanted = str(target.attrs.get("mcpu", "")) if "mcpu" in target.attrs else ""
    host = _tvm.host_cpu()
    if wanted and wanted != host:
        raise ValueError(
            f"the records were tuned for mcpu '{wanted}' but this machine is '{host}': measure "
            "on such a machine through an RPC tracker (--rpc-tracker, --rpc-key), or choose "
            "another target's records with --target"
        )


def _us(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e6


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)
