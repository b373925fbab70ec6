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
"""The state of one task under droplet search: exploration, descent, and their hand-over.

:class:`DropletTask` lives from ``pre_tuning`` to ``post_tuning`` of one task. It asks TVM's own
``EvolutionarySearch`` (or ``ReplayTrace`` when no database or cost model is given) for the
exploration batches, then runs :class:`~ms_droplet.droplet.Droplet` descents over the decisions of
the best measured traces. Every candidate it returns is remembered with where it came from, so
that each runner result goes back to the candidate it belongs to, failures included.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from . import _tvm
from .droplet import Droplet, Point
from .space import DecisionSpace
from .stats import mean

EXPLORE, DESCEND, DONE = "explore", "descend", "done"
# Consecutive exploration batches that bring nothing new before the explorer counts as spent.
_MAX_STALE_EXPLORATIONS = 3

logger = logging.getLogger("ms_droplet")
_TASK_LOGGER_PREFIX = "tvm.s_tir.meta_schedule.logging.task_"


@dataclass
class Measured:
    """A successfully measured program."""

    module_hash: int
    trace: _tvm.Trace
    samples: list[float]

    @property
    def latency(self) -> float:
        """Mean run time in seconds."""
        return mean(self.samples)


@dataclass
class Descent:
    """A decision space and the droplet walking it."""

    space: DecisionSpace
    droplet: Droplet
    converged: bool = False


@dataclass
class InFlight:
    """A candidate handed to the scheduler, with where it came from."""

    candidate: _tvm.MeasureCandidate
    origin: str
    module_hash: int
    descent: Descent | None = None
    point: Point | None = None


@dataclass
class TaskStats:
    """Counters of one task, for logs, reports and tests."""

    explored: int = 0
    descended: int = 0
    replays: int = 0
    replays_saved: int = 0
    invalid: int = 0
    duplicates: int = 0
    failures: int = 0
    descents_started: int = 0
    descents_converged: int = 0
    moves: int = 0
    # Wall-clock seconds spent in generate/notify, and the part of it inside TVM's explorer.
    strategy_seconds: float = 0.0
    explorer_seconds: float = 0.0
    phases: list[str] = field(default_factory=list)


class DropletTask:
    """Per-task search state of :class:`~ms_droplet.strategy.DropletSearch`.

    Parameters
    ----------
    context : TuneContext
        The task's tune context (module, target, space generator, logger).
    options : Dict[str, Any]
        Resolved options (see :mod:`ms_droplet.options`).
    max_trials : int
        The task's trial budget.
    num_trials_per_iter : int
        The batch size.
    design_spaces : List[Schedule]
        The task's design spaces.
    database : Optional[Database]
        Where measured records go; ``None`` explores with ReplayTrace.
    cost_model : Optional[CostModel]
        Ranks neighbours when given; ``None`` explores with ReplayTrace.
    """

    def __init__(
        self,
        context: _tvm.TuneContext,
        options: dict[str, Any],
        max_trials: int,
        num_trials_per_iter: int,
        design_spaces: list[_tvm.Schedule],
        database: _tvm.Database | None,
        cost_model: _tvm.CostModel | None,
    ) -> None:
        if max_trials < 0 or num_trials_per_iter < 1:
            raise ValueError(
                f"DropletSearch needs max_trials >= 0 and num_trials_per_iter >= 1, got "
                f"{max_trials} and {num_trials_per_iter}"
            )
        self.context = context
        self.options = options
        self.stats = TaskStats()
        self.max_trials = max_trials
        self.per_iter = num_trials_per_iter
        self.cost_model = cost_model
        self.seed = options["seed"] if options["seed"] is not None else int(context.rand_state)
        self.explore_cap = min(
            options["explore_trials"], math.floor(options["explore_fraction"] * max_trials)
        )
        self.explorer = self._make_explorer(database, cost_model)
        self.explorer.pre_tuning(
            max_trials, num_trials_per_iter, design_spaces, database, cost_model
        )
        self.explorer_spent = False
        self._stale_explorations = 0
        generator = context.space_generator
        self.postprocs = list(generator.postprocs) if generator.postprocs is not None else []
        self.phase = EXPLORE if self.explore_cap > 0 else DESCEND
        self.stats.phases.append(self.phase)
        self.issued = 0
        self.in_flight: list[InFlight] = []
        self.seen: dict[int, list[float] | None] = {}
        self.measured: dict[int, Measured] = {}
        self.started: set[int] = set()
        # Printed trace -> structural hash of its program (None: TVM rejected it), over all
        # descents of the task.
        self.replayed: dict[str, int | None] = {}
        # One descent per starting program: a restart never takes over a descent that is still
        # waiting for results, so no neighbourhood is abandoned half-measured.
        self.descents: list[Descent] = []
        self.active: Descent | None = None
        self._task_logger = _find_task_logger(str(context.task_name or ""))

    # ----------------------------------------------------------------------------------------
    # The search-strategy interface
    # ----------------------------------------------------------------------------------------
    def generate(self) -> list[_tvm.MeasureCandidate] | None:
        """The next batch of candidates, or ``None`` when the task is finished."""
        if self.in_flight:
            raise RuntimeError(
                "generate_measure_candidates() called again before notify_runner_results()"
            )
        budget_left = self.max_trials - self.issued
        if budget_left <= 0 or self.phase == DONE:
            return None
        count = min(self.per_iter, budget_left)
        batch: list[InFlight] = []
        hashes: set[int] = set()
        # Each pass fills the batch or changes phase, so a few passes always suffice. A batch
        # may mix the last exploration candidates with the first descent ones, so that batches
        # keep the size the scheduler asked for.
        for _ in range(2 * _MAX_STALE_EXPLORATIONS + 4):
            need = count - len(batch)
            if need <= 0 or self.phase == DONE:
                break
            if self.phase == EXPLORE:
                explored = sum(1 for flight in batch if flight.origin == EXPLORE)
                batch += self._explore(need, hashes, explored)
                explored = sum(1 for flight in batch if flight.origin == EXPLORE)
                if len(batch) < count and (
                    self.explorer_spent or self.stats.explored + explored >= self.explore_cap
                ):
                    self._enter(DESCEND)
                elif len(batch) < count:
                    break
            else:
                got = self._descend(need, hashes)
                batch += got
                if len(got) == need:
                    break
                if self.active is not None and self.active.droplet.pending:
                    break  # the descent waits for the results of this very batch
                if not self._after_descent():
                    self._enter(DONE)
        return self._issue(batch) if batch else None

    def notify(
        self,
        candidates: list[_tvm.MeasureCandidate],
        results: list[_tvm.RunnerResult],
    ) -> None:
        """Route every result to the candidate it belongs to."""
        in_flight, self.in_flight = self.in_flight, []
        if len(candidates) != len(in_flight) or len(results) != len(in_flight):
            raise ValueError(
                f"DropletSearch generated {len(in_flight)} candidates but was notified of "
                f"{len(candidates)} candidates and {len(results)} results"
            )
        explored_candidates, explored_results = [], []
        for flight, candidate, result in zip(in_flight, candidates, results):
            if not candidate.same_as(flight.candidate):
                raise ValueError("notify_runner_results() got candidates in a different order")
            samples = _tvm.run_seconds(result)
            self.seen[flight.module_hash] = samples
            if samples is None:
                self.stats.failures += 1
            else:
                self.measured[flight.module_hash] = Measured(
                    flight.module_hash, candidate.sch.trace, samples
                )
            if flight.origin == EXPLORE:
                explored_candidates.append(candidate)
                explored_results.append(result)
            elif flight.descent.droplet.tell(flight.point, samples):
                self.stats.moves += 1
                # The descent stands on this program now: no later restart from it.
                self.started.add(flight.module_hash)
        if explored_candidates:
            start = time.perf_counter()
            self.explorer.notify_runner_results(explored_candidates, explored_results)
            self.stats.explorer_seconds += time.perf_counter() - start

    def close(self) -> None:
        """End the task (``post_tuning``)."""
        self.explorer.post_tuning()
        best = self.best()
        self._log(
            f"droplet: task finished: {self.issued} trials ({self.stats.explored} explored, "
            f"{self.stats.descended} descended), {self.stats.descents_started} descents, "
            f"{self.stats.moves} moves, {self.stats.duplicates} duplicates skipped, "
            f"{self.stats.invalid} invalid, {self.stats.failures} failed; best "
            + (f"{best.latency * 1e6:.2f} us" if best else "none")
            + f"; droplet's own time {self.own_seconds:.2f} s"
        )

    @property
    def own_seconds(self) -> float:
        """Seconds DropletSearch itself spent (its generate/notify minus TVM's explorer)."""
        return self.stats.strategy_seconds - self.stats.explorer_seconds

    def best(self) -> Measured | None:
        """The fastest program measured so far."""
        return min(self.measured.values(), key=lambda m: m.latency, default=None)

    # ----------------------------------------------------------------------------------------
    # Exploration
    # ----------------------------------------------------------------------------------------
    def _make_explorer(
        self, database: _tvm.Database | None, cost_model: _tvm.CostModel | None
    ) -> _tvm.SearchStrategy:
        generator = self.context.space_generator
        evolutionary_ready = (
            database is not None
            and cost_model is not None
            and generator is not None
            and generator.postprocs is not None
            and generator.mutator_probs is not None
        )
        if evolutionary_ready:
            explorer = _tvm.EvolutionarySearch(**(self.options["evolutionary"] or {}))
        else:
            # TVM's evolutionary search refuses to run without a database and a cost model;
            # replaying the design space's traces with fresh decisions needs neither.
            explorer = _tvm.ReplayTrace()
        explorer._initialize_with_tune_context(self.context)
        return explorer

    def _explore(self, count: int, hashes: set[int], in_batch: int) -> list[InFlight]:
        """Up to ``count`` new exploration candidates, none in ``hashes`` (the batch so far)."""
        quota = self.explore_cap - self.stats.explored - in_batch
        while quota > 0 and not self.explorer_spent:
            start = time.perf_counter()
            candidates = self.explorer.generate_measure_candidates()
            self.stats.explorer_seconds += time.perf_counter() - start
            if candidates is None:
                self.explorer_spent = True
                break
            fresh: list[InFlight] = []
            for candidate in candidates:
                module_hash = _tvm.module_hash(candidate.sch.mod)
                if (
                    module_hash in self.seen
                    or module_hash in hashes
                    or any(f.module_hash == module_hash for f in fresh)
                ):
                    self.stats.duplicates += 1
                    continue
                fresh.append(InFlight(candidate, EXPLORE, module_hash))
            if fresh:
                self._stale_explorations = 0
                fresh = fresh[: min(count, quota)]
                hashes.update(flight.module_hash for flight in fresh)
                return fresh
            self._stale_explorations += 1
            if self._stale_explorations >= _MAX_STALE_EXPLORATIONS:
                self.explorer_spent = True
        return []

    # ----------------------------------------------------------------------------------------
    # Descent
    # ----------------------------------------------------------------------------------------
    def _descend(self, count: int, batch_hashes: set[int]) -> list[InFlight]:
        batch: list[InFlight] = []
        while len(batch) < count:
            if self.active is None or not self.active.droplet.can_propose:
                if not self._switch_descent():
                    break
            want = count - len(batch)
            pool = want * self.options["rank_pool"] if self.cost_model is not None else want
            droplet, space = self.active.droplet, self.active.space
            points = droplet.ask(pool)
            if not points:
                continue
            valid: list[tuple[Point, _tvm.Schedule, int]] = []
            for point in points:
                module_hash, sch = self._identify(space, point)
                if module_hash is None:
                    self.stats.invalid += 1
                    droplet.reject(point)
                    continue
                if module_hash in self.seen or module_hash in batch_hashes:
                    # Another point already stands for this program: reuse its result rather
                    # than measuring the same program twice.
                    self.stats.duplicates += 1
                    known = self.seen.get(module_hash)
                    if known:
                        droplet.tell(point, known)
                    else:
                        droplet.reject(point)
                    continue
                if sch is None:
                    # Replayed before but never measured (ranked out of an earlier batch).
                    self.stats.replays += 1
                    sch = space.replay(point)
                    if sch is None:
                        droplet.reject(point)
                        continue
                batch_hashes.add(module_hash)
                valid.append((point, sch, module_hash))
            if len(valid) > want:
                valid = self._rank(valid)
                droplet.give_back([point for point, _, _ in valid[want:]])
                for _, _, module_hash in valid[want:]:
                    batch_hashes.discard(module_hash)
                valid = valid[:want]
            for point, sch, module_hash in valid:
                batch.append(
                    InFlight(_tvm.make_candidate(sch), DESCEND, module_hash, self.active, point)
                )
        return batch

    def _identify(
        self, space: DecisionSpace, point: Point
    ) -> tuple[int | None, _tvm.Schedule | None]:
        """The program hash at ``point`` (None: invalid), and its schedule if it was replayed.

        Descents from different starts meet on the same traces; a trace replayed before gives
        its program's hash without a second replay (and without a schedule).
        """
        if not space.is_valid(point):
            return None, None
        trace = space.trace_of(point)
        text = str(trace)
        if text in self.replayed:
            self.stats.replays_saved += 1
            return self.replayed[text], None
        self.stats.replays += 1
        sch = space.replay_trace(trace)
        module_hash = None if sch is None else _tvm.module_hash(sch.mod)
        self.replayed[text] = module_hash
        return module_hash, sch

    def _rank(
        self, valid: list[tuple[Point, _tvm.Schedule, int]]
    ) -> list[tuple[Point, _tvm.Schedule, int]]:
        """Order replayed neighbours by the cost model's predicted speed, best first."""
        candidates = [_tvm.make_candidate(sch) for _, sch, _ in valid]
        try:
            scores = [float(s) for s in self.cost_model.predict(self.context, candidates)]
        except Exception as err:  # an untrained or failing model only loses the ordering
            logger.debug("cost model could not rank neighbours: %s", err)
            return valid
        order = sorted(range(len(valid)), key=lambda i: -scores[i])
        return [valid[i] for i in order]

    def _switch_descent(self) -> bool:
        """Make a descent with something to propose active; ``False`` if none can be.

        A descent that only waits for results of the batch being filled is parked, and the
        batch is filled from another one (an earlier descent that can still propose, the
        fastest first, else a new descent from the next-best measured program) rather than sent
        short: every batch costs a round of builds and runs however few candidates it holds.
        """
        previous = self.active
        restart_policy = self.options["on_converge"] == "restart"
        if previous is not None:
            if previous.droplet.converged and not previous.converged:
                previous.converged = True
                self.stats.descents_converged += 1
            if not restart_policy:
                # Only the restart policy runs several descents: the others let this batch go
                # out short while the descent waits, or act on convergence (_after_descent).
                if previous.converged:
                    self.active = None
                return False
        self.active = None
        resumable = [d for d in self.descents if d is not previous and d.droplet.can_propose]
        if resumable:
            self.active = min(resumable, key=lambda d: d.droplet.centre_latency)
            return True
        return self._start_descent()

    def _start_descent(self) -> bool:
        """Begin a descent from the fastest measured program not started from yet."""
        for record in sorted(self.measured.values(), key=lambda m: m.latency):
            if record.module_hash in self.started:
                continue
            self.started.add(record.module_hash)
            try:
                space = DecisionSpace(
                    self.context.mod,
                    record.trace,
                    self.postprocs,
                    self.seed,
                    self.options["tile_moves"],
                )
            except Exception as err:  # a trace this version cannot read: skip it, keep tuning
                self._log(f"droplet: cannot descend from a schedule: {err}")
                continue
            if not space.coordinates:
                continue
            descent = Descent(
                space,
                Droplet(
                    space.sizes,
                    significance=self.options["significance"],
                    min_improvement=self.options["min_improvement"],
                    seed=self.seed + len(self.descents),
                ),
            )
            descent.droplet.restart(space.origin, record.samples)
            self.descents.append(descent)
            self.active = descent
            self.stats.descents_started += 1
            self._log(
                f"droplet: descent #{self.stats.descents_started} from a schedule of "
                f"{record.latency * 1e6:.2f} us over {len(space.coordinates)} decisions"
            )
            return True
        return False

    def _after_descent(self) -> bool:
        """Decide what follows when no descent can propose; ``False`` ends the task."""
        policy = self.options["on_converge"]
        if policy == "stop" and self.stats.descents_converged > 0:
            return False
        if self.explorer_spent:
            return False
        # Return to exploration for one more batch, then descend from the best again.
        self.explore_cap = self.stats.explored + self.per_iter
        self.active = None
        self._enter(EXPLORE)
        return True

    # ----------------------------------------------------------------------------------------
    def _issue(self, batch: list[InFlight]) -> list[_tvm.MeasureCandidate]:
        for flight in batch:
            self.seen.setdefault(flight.module_hash, None)
        self.in_flight = batch
        self.issued += len(batch)
        explored = sum(1 for flight in batch if flight.origin == EXPLORE)
        self.stats.explored += explored
        self.stats.descended += len(batch) - explored
        descended = [f"{flight.module_hash:016x}" for flight in batch if flight.origin == DESCEND]
        self._log(
            f"droplet: batch of {len(batch)} candidates, {explored} explored and "
            f"{len(descended)} descended ({self.issued}/{self.max_trials} trials)"
            + (f"; descent programs: {' '.join(descended)}" if descended else "")
        )
        return [flight.candidate for flight in batch]

    def _enter(self, phase: str) -> None:
        if phase != self.phase:
            self.phase = phase
        if not self.stats.phases or self.stats.phases[-1] != phase:
            self.stats.phases.append(phase)

    def _log(self, message: str) -> None:
        logger.info(message)
        if self._task_logger is not None:
            self._task_logger.info(message)


def _find_task_logger(task_name: str | None) -> logging.Logger | None:
    """The per-task logger tune_tir/tune_relax/tune_tasks made for ``task_name``, if any.

    TuneContext keeps its logger in a field TVM does not expose to Python, but MetaSchedule
    names the per-task loggers ``tvm.s_tir.meta_schedule.logging.task_<i>_<name>`` and writes
    each to ``<work_dir>/logs``; the newest one with this task's name is ours.
    """
    if not task_name:
        return None
    suffix = f"_{task_name}"
    found = None
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(_TASK_LOGGER_PREFIX) and name.endswith(suffix):
            found = name
    return logging.getLogger(found) if found else None
