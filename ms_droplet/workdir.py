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
"""A MetaSchedule work_dir on disk: its JSON database, opened safely, and what it holds.

``tune_tir``/``tune_relax`` keep their database in ``<work_dir>/database_workload.json`` and
``<work_dir>/database_tuning_record.json``, one JSON document per line, appended as results come
in. A run killed while writing leaves a last line cut short, which TVM's loader refuses; such a
line is a record that was never whole, so :func:`open_database` drops it (and says so) before
loading.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _tvm
from .adapters.database import DatabaseAdapter, target_key
from .inputs import (
    RECORD_FILE,
    WORKLOAD_FILE,
    UserInputError,
    check_database_files,
    check_work_dir,
)

logger = logging.getLogger(__name__)

_MAX_TASK_NAME = 48


def database_files(work_dir: str | Path) -> tuple[Path, Path]:
    """The workload and tuning-record files of a work_dir."""
    work_dir = Path(work_dir)
    return work_dir / WORKLOAD_FILE, work_dir / RECORD_FILE


def has_database(work_dir: str | Path) -> bool:
    """Whether a work_dir holds a MetaSchedule JSON database."""
    workloads, records = database_files(work_dir)
    return workloads.exists() and records.exists()


def drop_partial_line(path: Path) -> bool:
    """Cut a last line that a killed writer left without its newline; ``True`` if cut."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb+") as table:
        table.seek(-1, 2)
        if table.read(1) == b"\n":
            return False
        table.seek(0)
        content = table.read()
        keep = content.rfind(b"\n") + 1
        table.truncate(keep)
    logger.warning("dropped a record cut short by an interrupted run at the end of %s", path)
    return True


def open_database(work_dir: str | Path, *, must_exist: bool = False) -> Any:
    """The JSON database of a work_dir, after dropping lines cut short by a killed run.

    Raises
    ------
    FileNotFoundError
        When ``must_exist`` and the work_dir holds no database.
    UserInputError
        When the work_dir cannot be written, or its database is corrupt (file and line named).
    """
    if must_exist and not has_database(work_dir):
        workloads, records = database_files(work_dir)
        raise FileNotFoundError(
            f"{work_dir} holds no MetaSchedule database: expected {workloads.name} and "
            f"{records.name} there (what tune_tir/tune_relax write into their work_dir)"
        )
    check_work_dir(work_dir)
    check_database_files(work_dir)
    for path in database_files(work_dir):
        drop_partial_line(path)
    try:
        return _tvm.ms.database.JSONDatabase(work_dir=str(work_dir))
    except RuntimeError as err:  # what the line-by-line check cannot see (a broken module)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserInputError(
            f"TVM cannot load the database in {work_dir}: {reason}; restore it or use another "
            f"work_dir"
        ) from None


def task_modules(workload: Any, target: Any) -> list[_tvm.IRModule]:
    """The modules MetaSchedule tunes (and records) for a workload of :mod:`.workloads`."""
    from .job import relax_tuning_module

    ms = _tvm.ms
    if workload.is_relax:
        tasks = ms.relax_integration.extract_tasks(relax_tuning_module(workload, target), target)
        return [ms.TuneContext(mod=task.dispatched[0]).mod for task in tasks]
    return [
        ms.TuneContext(mod=func).mod
        for _, func in workload.mod.functions_items()
        if isinstance(func, _tvm.PrimFunc)
    ]


def count_records(database: Any, mods: Sequence[_tvm.IRModule], target: Any) -> int:
    """Records (failures included) the database holds for these modules on this target."""
    return sum(len(DatabaseAdapter(database, mod, target).records()) for mod in mods)


@dataclass
class RecordedTask:
    """A workload of a database, with its records on one target."""

    name: str
    workload: Any
    records: int
    best_seconds: float | None


def recorded_targets(database: Any) -> dict[str, Any]:
    """The targets a database's records were tuned for, by :func:`target_key`."""
    targets = {}
    for record in database.get_all_tuning_records():
        key = target_key(record.target)
        if key is not None and key not in targets:
            targets[key] = record.target
    return targets


def recorded_tasks(database: Any, target: Any) -> list[RecordedTask]:
    """The workloads with records on ``target``, named by their blocks (made unique).

    They come in the order of their first record in ``get_all_tuning_records`` (which a JSON
    database sorts fastest first).
    """
    wanted = target_key(target)
    tasks: dict[Any, RecordedTask] = {}
    for record in database.get_all_tuning_records():
        if target_key(record.target) != wanted:
            continue
        handle = _tvm.object_handle(record.workload)
        task = tasks.get(handle)
        if task is None:
            task = tasks[handle] = RecordedTask(
                task_name_of(record.workload.mod), record.workload, 0, None
            )
        task.records += 1
        samples = _tvm.valid_seconds(record.run_secs)
        if samples is not None:
            latency = sum(samples) / len(samples)
            if task.best_seconds is None or latency < task.best_seconds:
                task.best_seconds = latency
    unique_task_names(list(tasks.values()))
    return list(tasks.values())


def unique_task_names(tasks: Sequence[Any]) -> None:
    """Suffix ``_0``, ``_1``, ... to the ``name`` of tasks that share one, in order."""
    names: dict[str, int] = {}
    for task in tasks:
        names[task.name] = names.get(task.name, 0) + 1
    seen: dict[str, int] = {}
    for task in tasks:
        if names[task.name] > 1:
            seen[task.name] = seen.get(task.name, 0) + 1
            task.name = f"{task.name}_{seen[task.name] - 1}"


def task_name_of(mod: _tvm.IRModule) -> str:
    """A readable task name: the blocks of the module's function, joined (clipped)."""
    for _, func in mod.functions_items():
        if isinstance(func, _tvm.PrimFunc):
            try:
                blocks = _tvm.block_names(func)
            except Exception:  # an unusual function keeps the generic name
                blocks = []
            if blocks:
                return "_".join(blocks)[:_MAX_TASK_NAME]
    return "main"
