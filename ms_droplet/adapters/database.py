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
"""The user's MetaSchedule database as a partner of the search.

:class:`DatabaseAdapter` reads, through the ``Database`` API alone, what a database already knows
about one task: the programs measured for this workload *on this target*, with their run times
(failures included). A task uses it to

* never measure a known program again: candidates are identified by the structural hash of their
  post-processed module, and a known one is answered from its record instead of being built;
* warm-start: the first descent starts from the fastest known program, and the exploration is
  shortened by the number of programs already measured;
* give TVM's ``EvolutionarySearch`` a view of the database (:meth:`DatabaseAdapter.explorer_view`)
  that holds this target's records only, so that records tuned for another target never seed it
  (``Database.get_top_k`` does not look at targets).

Every MetaSchedule database works: JSON, memory, a user's ``PyDatabase``, and the union
databases, which implement nothing but ``query_tuning_record``: from those only the best record
is known.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .. import _tvm

logger = logging.getLogger(__name__)

# MetaSchedule's AddToDatabase records a failed build or run with this run time.
FAILED_RUN_SECS = 1e10
# Target attributes that do not change generated code.
_COSMETIC_TARGET_KEYS = ("tag",)


def target_key(target: Any) -> str | None:
    """A canonical text of a target's code-generation attributes; ``None`` for no target.

    Two targets with the same key generate the same code for the same schedule: the kind,
    ``mcpu``/``arch``, core count, keys, host and every other attribute are compared; only the
    tag (a name) is not.
    """
    if target is None:
        return None
    config = dict(target.export())
    for key in _COSMETIC_TARGET_KEYS:
        config.pop(key, None)
    return json.dumps(config, sort_keys=True, default=str)


@dataclass
class KnownProgram:
    """A program the database holds for the task's workload and target.

    Parameters
    ----------
    module_hash : int
        Structural hash of the post-processed module the record's trace produces.
    candidate : MeasureCandidate
        The record replayed onto its workload, as MetaSchedule measured it.
    samples : Optional[List[float]]
        Recorded run times in seconds; ``None`` when the record is a failure.
    """

    module_hash: int
    candidate: _tvm.MeasureCandidate
    samples: list[float] | None

    @property
    def trace(self) -> _tvm.Trace:
        """The record's trace (post-processing instructions included)."""
        return self.candidate.sch.trace


@dataclass
class LoadStats:
    """What reading the database found, and what it cost."""

    records: int = 0
    other_targets: int = 0
    unreadable: int = 0
    seconds: float = 0.0
    only_best: bool = False
    notes: list[str] = field(default_factory=list)


class DatabaseAdapter:
    """One task's view of a MetaSchedule database.

    Parameters
    ----------
    database : Database
        Any MetaSchedule database.
    mod : IRModule
        The task's workload (the tune context's module).
    target : Target
        The task's target; records of other targets are ignored.
    task_name : str
        The task's name, for databases that look records up by it.
    """

    def __init__(
        self, database: _tvm.Database, mod: _tvm.IRModule, target: Any, task_name: str = ""
    ) -> None:
        self.database = database
        self.mod = mod
        self.target = target
        self.task_name = task_name
        self.stats = LoadStats()
        self._target_key = target_key(target)
        self.view: _tvm.Database | None = None

    # ----------------------------------------------------------------------------------------
    def records(self) -> list[_tvm.TuningRecord]:
        """Records of this workload and target, valid and failed, in the database's order."""
        try:
            records = self.all_records()
        except RuntimeError as err:
            # UnionDatabase and OrderedUnionDatabase raise NotImplementedError (a RuntimeError
            # through TVM's FFI) for everything but query_tuning_record.
            self.stats.only_best = True
            self.stats.notes.append(f"only the best record is readable ({err})")
            best = self.database.query_tuning_record(self.mod, self.target, self.task_name)
            records = [] if best is None else [best]
        kept = [record for record in records if target_key(record.target) == self._target_key]
        self.stats.other_targets += len(records) - len(kept)
        return kept

    def load(self) -> list[KnownProgram]:
        """The known programs of this workload and target, fastest first, failures last.

        Each record's trace is replayed onto its workload to identify its program by structural
        hash (about a millisecond a record for the kernels of TVM's te_workload table). A
        program recorded more than once keeps its fastest record.
        """
        start = time.perf_counter()
        by_hash: dict[int, KnownProgram] = {}
        for record in self.records():
            self.stats.records += 1
            try:
                candidate = record.as_measure_candidate()
            except Exception as err:  # a record this TVM cannot replay answers for nothing
                self.stats.unreadable += 1
                logger.debug("skipping a database record that does not replay: %s", err)
                continue
            program_hash = _tvm.module_hash(candidate.sch.mod)
            known = KnownProgram(program_hash, candidate, _tvm.valid_seconds(record.run_secs))
            previous = by_hash.get(program_hash)
            if previous is None or _faster(known, previous):
                by_hash[program_hash] = known
        self.stats.seconds += time.perf_counter() - start
        return sorted(by_hash.values(), key=_fastest_first)

    def explorer_view(self, known: list[KnownProgram]) -> _tvm.Database:
        """An in-memory database with the ``known`` programs, for TVM's EvolutionarySearch.

        EvolutionarySearch seeds every generation from ``get_top_k`` of its database, which
        ignores targets; this view holds this target's records only. The task adds every result
        it measures (:meth:`add_to_view`), so the explorer sees what the descent finds too.
        """
        self.view = _tvm.MemoryDatabase()
        self._view_workload = self.view.commit_workload(self.mod)
        for program in known:
            self.add_to_view(program.candidate, program.samples)
        return self.view

    def add_to_view(self, candidate: _tvm.MeasureCandidate, samples: list[float] | None) -> None:
        """Record one measured candidate (``None``: failed) in the explorer's view."""
        if self.view is None:
            return
        run_secs = samples if samples is not None else [FAILED_RUN_SECS]
        self.view.commit_tuning_record(
            _tvm.TuningRecord(
                candidate.sch.trace,
                self._view_workload,
                [float(s) for s in run_secs],
                self.target,
                candidate.args_info,
            )
        )

    def all_records(self) -> list[_tvm.TuningRecord]:
        """Records of this workload on every target, in the database's order."""
        if not self.database.has_workload(self.mod):
            return []
        # The database's own workload equality decides which records belong to the task
        # (structural by default; "anchor-block" databases share records between workloads).
        token = self.database.commit_workload(self.mod)
        same: dict[Any, bool] = {}
        records = []
        for record in self.database.get_all_tuning_records():
            workload = record.workload
            if workload.same_as(token):
                records.append(record)
                continue
            handle = _tvm.object_handle(workload)
            if handle not in same:
                same[handle] = _tvm.structural_equal(workload.mod, token.mod)
            if same[handle]:
                records.append(record)
        return records


def _fastest_first(program: KnownProgram) -> tuple[int, float]:
    if program.samples is None:
        return (1, 0.0)
    return (0, sum(program.samples) / len(program.samples))


def _faster(one: KnownProgram, other: KnownProgram) -> bool:
    return _fastest_first(one) < _fastest_first(other)
