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
"""The state of one task under droplet search: explore, descend, route results.

:class:`DropletTask` lives from ``pre_tuning`` to ``post_tuning`` of one task. It reads what the
user's database already knows about the task (:mod:`ms_droplet.adapters.database`), takes
exploration batches from TVM's own search (:mod:`ms_droplet.exploration`: ReplayTrace's random
samples while the cost model guesses, EvolutionarySearch once it has learned) until the
exploration cap, then batches from droplet descents over the best measured traces
(:mod:`ms_droplet.descents`), with ``explore_share`` of each still from the explorer, and whole
batches back to the explorer while it gains more per second than the descent
(``adaptive_explore``, :mod:`ms_droplet.turns`). Every
candidate it issues is remembered with the phase that produced it, so that each runner result
goes back to the candidate it belongs to, failures included, and lands in the provenance side
file (:mod:`ms_droplet.adapters.provenance`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from . import _tvm
from .adapters.cost_model import CostModelRanker
from .adapters.database import DatabaseAdapter, KnownProgram
from .adapters.provenance import ProvenanceLog, provenance_path
from .bookkeeping import CONTROL, DATABASE, EXPLORE, Measured, TaskStats
from .descents import Descents, Proposal
from .exploration import MAX_STALE_EXPLORATIONS, Exploration
from .stats import mean
from .tasklog import TaskLog
from .turns import DESCENT_TURN, EXPLORER_TURN, Turns

# The task's states: exploring, descending, finished.
EXPLORING, DESCENDING, DONE = "explore", "descend", "done"


@dataclass
class InFlight:
    """A candidate handed to the scheduler: its program, phase, trial number and proposal."""

    candidate: _tvm.MeasureCandidate
    module_hash: int
    phase: str
    trial: int = 0
    proposal: Proposal | None = None


class DropletTask:
    """Per-task search state of :class:`DropletSearch`.

    Parameters
    ----------
    context : TuneContext
        The task's tune context (module, target, space generator, logger).
    options : Dict[str, Any]
        Resolved options (see ``resolve_options``).
    max_trials : int
        The task's trial budget.
    num_trials_per_iter : int
        The batch size.
    design_spaces : List[Schedule]
        The task's design spaces.
    database : Optional[Database]
        Where measured records go, and what is known already; ``None`` explores with
        ReplayTrace.
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
        task_name = str(context.task_name or "")
        self.log = TaskLog(task_name)
        self.seed = options["seed"] if options["seed"] is not None else int(context.rand_state)
        self.ranker = CostModelRanker(context, cost_model)
        # Program hash -> run times (None: failed, or issued and not measured yet), and the
        # programs measured successfully, this run's and those the database knew before.
        self.seen: dict[int, list[float] | None] = {}
        self.measured: dict[int, Measured] = {}
        self.adapter: DatabaseAdapter | None = None
        start = time.perf_counter()
        known = self._read_database(database, task_name)
        explore_cap = min(
            options["explore_trials"], math.floor(options["explore_fraction"] * max_trials)
        )
        # Warm start: the programs the database knows were explored already, in an earlier run.
        explore_cap = max(0, explore_cap - self.stats.known_measured)
        if known and self.ranker.active and (explore_cap > 0 or options["rank_pool"] > 1):
            # The model ranks for this task from its first batch (TVM's explorer always ranks
            # with it, the descent with rank_pool > 1): teach it what the database knows.
            trained = self.ranker.warm_up(
                [program.candidate for program in known], [program.samples for program in known]
            )
            self.log(f"droplet: cost model trained on {trained} programs of the database")
        explorer_database = self.adapter.explorer_view(known) if self.adapter else None
        self.stats.adapter_seconds = time.perf_counter() - start
        self.exploration = Exploration(
            context,
            options["evolutionary"],
            max_trials,
            num_trials_per_iter,
            design_spaces,
            explorer_database,
            cost_model,
            explore_cap,
            self.ranker.learned_on if options["sample_while_guessing"] else None,
        )
        generator = context.space_generator
        postprocs = list(generator.postprocs) if generator.postprocs is not None else []
        self.descents = Descents(
            context.mod, postprocs, options, self.seed, self.ranker, self.stats, self.log
        )
        self.provenance = ProvenanceLog(
            provenance_path(database), task_name, _tvm.module_hash(context.mod)
        )
        self.phase = EXPLORING if explore_cap > 0 else DESCENDING
        self.stats.phases.append(self.phase)
        self.issued = 0
        self.in_flight: list[InFlight] = []
        # Whose batches after the exploration phase are: the explorer's or the descent's
        # (adaptive_explore); whose the batch in flight is (None: an exploration-phase batch),
        # and when it was chosen.
        self.turns = Turns(ties_to_explorer=options["stalled_turns"] == "explorer")
        self.turn: str | None = None
        self.batch_started = 0.0
        # FLOPs of one run of the workload, counted at the first report (0: not countable).
        self.flop: float | None = None

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
        self.ranker.new_batch()
        self.batch_started = time.perf_counter()
        last, self.turn = self.turn, (None if self.phase == EXPLORING else DESCENT_TURN)
        batch: list[InFlight] = []
        hashes: set[int] = set()
        # Whether this batch's share of exploration (the explore_share option) was taken.
        shared = False
        # Each pass fills the batch or changes phase, so a few passes always suffice. A batch
        # may mix the last exploration candidates with the first descent ones, so that batches
        # keep the size the scheduler asked for.
        for _ in range(2 * MAX_STALE_EXPLORATIONS + 4):
            need = count - len(batch)
            if need <= 0 or self.phase == DONE:
                break
            if self.phase == EXPLORING:
                in_batch = sum(1 for flight in batch if flight.phase == EXPLORE)
                fresh = self._explored(need, in_batch, hashes)
                batch += fresh
                if len(batch) < count and (
                    self.exploration.spent or self.exploration.quota(in_batch + len(fresh)) == 0
                ):
                    self._enter(DESCENDING)
                elif len(batch) < count:
                    break
            else:
                if not shared:
                    shared = True
                    if not any(flight.phase == EXPLORE for flight in batch):
                        taken = self._explorer_turn(last, count, hashes)
                        self.turn = EXPLORER_TURN if taken else DESCENT_TURN
                        batch += taken or self._explore_share(count, hashes)
                    need = count - len(batch)
                    if need <= 0:
                        break
                # With the control option, each batch that descends measures the centre again.
                with_control = self.options["control"] and not any(f.proposal for f in batch)
                proposals = self.descents.propose(
                    need, hashes, self.seen, self.measured, with_control
                )
                batch += [
                    InFlight(
                        p.candidate,
                        p.module_hash,
                        CONTROL if p.control else p.descent.phase,
                        proposal=p,
                    )
                    for p in proposals
                ]
                if len(proposals) == need or self.descents.waiting:
                    break  # full, or the descent waits for the results of this very batch
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
        explored_candidates, explored_results, explored_hashes = [], [], []
        provenance = []
        best_before = self.best()
        for flight, candidate in zip(in_flight, candidates):
            if not candidate.same_as(flight.candidate):
                raise ValueError("notify_runner_results() got candidates in a different order")
        # Controls first: the centre's fresh measurement is what this batch's neighbours face.
        order = sorted(range(len(in_flight)), key=lambda i: in_flight[i].phase != CONTROL)
        for index in order:
            flight, candidate, result = in_flight[index], candidates[index], results[index]
            samples = _tvm.run_seconds(result)
            if flight.phase == CONTROL:
                self.descents.tell_control(flight.proposal, samples)
                known = self.measured.get(flight.module_hash)
                if samples is not None and known is not None:
                    # The program's estimate pools every measurement of it.
                    known.samples = known.samples + samples
                    self.seen[flight.module_hash] = known.samples
                provenance.append(
                    (flight.module_hash, CONTROL, flight.trial, _mean_or_none(samples))
                )
                continue
            self.seen[flight.module_hash] = samples
            if samples is None:
                self.stats.failures += 1
            else:
                self.measured[flight.module_hash] = Measured(
                    flight.module_hash, candidate.sch.trace, samples, flight.phase
                )
            explorer_sees = flight.proposal is None or self.options["explorer_sees_descents"]
            if self.adapter is not None and explorer_sees:
                self.adapter.add_to_view(candidate, samples)
            if flight.proposal is None:
                explored_candidates.append(candidate)
                explored_results.append(result)
                explored_hashes.append(flight.module_hash)
            else:
                self.descents.tell(flight.proposal, samples)
            provenance.append(
                (flight.module_hash, flight.phase, flight.trial, _mean_or_none(samples))
            )
        self.exploration.notify(explored_candidates, explored_results, explored_hashes)
        self.provenance.write(provenance)
        if self.turn is not None and best_before is not None:
            self.turns.record(
                self.turn,
                self._gain(in_flight, best_before.latency),
                time.perf_counter() - self.batch_started,
            )
        explores_after_phase = self.options["explore_share"] or self.options["adaptive_explore"]
        if self.phase == DESCENDING and explored_candidates and explores_after_phase:
            self._descend_from_explored()
        self._report_batch(in_flight, provenance)

    def close(self) -> None:
        """End the task (``post_tuning``)."""
        self.exploration.close()
        best = self.best()
        self.log(
            f"droplet: task finished: {self.issued} trials ({self.stats.explored} explored, "
            f"{self.stats.descended} descended), {self.stats.descents_started} descents, "
            f"{self.stats.moves} moves, {self.stats.explorer_turns} batches given back to the "
            f"explorer, {self.stats.duplicates} duplicates skipped, "
            f"{self.stats.invalid} invalid, {self.stats.failures} failed; best "
            + (f"{best.latency * 1e6:.2f} us ({best.phase})" if best else "none")
            + (
                f"; the cost model was still guessing {self.ranker.guessed} times it was asked "
                "(the explorer sampled, the descent kept its order)"
                if self.ranker.guessed
                else ""
            )
            + f"; droplet's own time {self.own_seconds:.4f} s"
            + (f" ({self.stats.adapter_seconds:.2f} s of it at the start)" if self.adapter else "")
        )

    @property
    def own_seconds(self) -> float:
        """Seconds DropletSearch itself spent, TVM's explorer excluded.

        Its generate/notify calls, plus reading the database (and training the cost model on
        what it holds) when the task starts.
        """
        return self.stats.strategy_seconds - self.exploration.seconds + self.stats.adapter_seconds

    def best(self) -> Measured | None:
        """The fastest program measured so far (the database's included)."""
        return min(self.measured.values(), key=lambda m: m.latency, default=None)

    # ----------------------------------------------------------------------------------------
    def _read_database(self, database: _tvm.Database | None, task_name: str) -> list[KnownProgram]:
        """Learn what ``database`` knows of this task on its target; the known programs."""
        if database is None:
            return []
        self.adapter = DatabaseAdapter(database, self.context.mod, self.context.target, task_name)
        known = self.adapter.load()
        for program in known:
            self.seen[program.module_hash] = program.samples
            if program.samples is None:
                self.stats.known_failed += 1
                continue
            self.stats.known_measured += 1
            self.measured[program.module_hash] = Measured(
                program.module_hash, program.trace, program.samples, DATABASE
            )
        load = self.adapter.stats
        if known or load.other_targets:
            self.log(
                f"droplet: the database knows {self.stats.known_measured} measured and "
                f"{self.stats.known_failed} failed programs of this task for this target "
                f"({load.other_targets} records of other targets ignored)"
                + (f", {'; '.join(load.notes)}" if load.notes else "")
                + f"; read in {load.seconds:.2f} s"
            )
        return known

    def _explored(self, count: int, in_batch: int, hashes: set[int]) -> list[InFlight]:
        """Up to ``count`` new candidates from TVM's explorer, added to ``hashes``."""
        fresh, duplicates = self.exploration.propose(
            count, in_batch, lambda h: h in self.seen or h in hashes
        )
        if self.exploration.error:
            self.log(f"droplet: TVM's explorer failed, descending only: {self.exploration.error}")
            self.exploration.error = None
        self.stats.duplicates += duplicates
        hashes.update(program_hash for _, program_hash in fresh)
        return [InFlight(candidate, h, EXPLORE) for candidate, h in fresh]

    def _explore_share(self, count: int, hashes: set[int]) -> list[InFlight]:
        """The explorer's candidates for a descent batch (``explore_share`` of ``count``)."""
        slots = math.floor(self.options["explore_share"] * count)
        if slots <= 0 or self.exploration.spent:
            return []
        self.exploration.grant(slots)
        return self._explored(slots, 0, hashes)

    def _explorer_turn(self, last: str | None, count: int, hashes: set[int]) -> list[InFlight]:
        """This batch's candidates from the explorer if it takes the batch, else none.

        Option ``adaptive_explore``: whose turn it is :class:`Turns` decides from what the
        explorer and the descent gained per second in their latest batches (``last`` had the
        last batch); when neither is ahead, the explorer takes the batch (``stalled_turns``,
        ``"explorer"`` by default) or they alternate. An explored program that beats every
        descent's centre becomes the next descent's start. Only once the cost model has
        learned: TVM's explorer keeps the candidates its model predicts fastest, so before that
        it samples at random, which a descent beats. The explorer proposes fewer than ``count``
        when some of its candidates were measured by the descent (it knows only its own
        measurements): the descent fills the batch.
        """
        if not self.options["adaptive_explore"] or self.exploration.spent:
            return []
        if not self.turns.explorer_next(last or DESCENT_TURN) or not self.descents.model_learned():
            return []
        self.exploration.extend(count)
        fresh = self._explored(count, 0, hashes)
        if fresh:
            self.stats.explorer_turns += 1
            explorer, descent = self.turns.rate(EXPLORER_TURN), self.turns.rate(DESCENT_TURN)
            self.log(
                "droplet: the explorer takes this batch (gains per second: "
                + ("not seen yet" if explorer is None else f"{explorer:.2%}")
                + f", the descent's {descent:.2%})"
            )
        return fresh

    def _gain(self, batch: list[InFlight], best_before: float) -> float:
        """The share by which ``batch``'s best measured program beat ``best_before``.

        A gain under ``min_improvement`` counts as none: it is within what the same program
        measured twice may differ by.
        """
        measured = [self.seen.get(f.module_hash) for f in batch if f.phase != CONTROL]
        fastest = min((mean(samples) for samples in measured if samples), default=math.inf)
        gain = 1.0 - fastest / best_before
        return gain if gain > self.options["min_improvement"] else 0.0

    def _descend_from_explored(self) -> None:
        """Start a descent from an explored program that beats every descent's centre."""
        best = self.best()
        if best is None or best.phase != EXPLORE:
            return
        centres = self.descents.centre_latencies()
        threshold = 1.0 - self.options["min_improvement"]
        if centres and best.latency >= threshold * min(centres):
            return
        if self.descents.start_from(best):
            self.turns.new_descent()
            self.log(
                f"droplet: the explorer found {best.latency * 1e6:.2f} us, faster than every "
                f"descent's centre: descending from it"
            )

    def _after_descent(self) -> bool:
        """Decide what follows when no descent can propose; ``False`` ends the task."""
        policy = self.options["on_converge"]
        if policy == "stop" and self.descents.any_converged():
            return False
        if self.exploration.spent:
            return False
        # Return to exploration for one more batch, then descend from the best again.
        self.exploration.extend(self.per_iter)
        self.descents.drop_active()
        self._enter(EXPLORING)
        return True

    def _issue(self, batch: list[InFlight]) -> list[_tvm.MeasureCandidate]:
        for index, flight in enumerate(batch, self.issued + 1):
            flight.trial = index
            self.seen.setdefault(flight.module_hash, None)
        self.in_flight = batch
        self.issued += len(batch)
        explored = sum(1 for flight in batch if flight.proposal is None)
        self.exploration.taken += explored
        self.stats.explored += explored
        self.stats.descended += len(batch) - explored
        descended = [f"{f.module_hash:016x}" for f in batch if f.proposal is not None]
        self._progress(len(batch), explored, descended)
        return [flight.candidate for flight in batch]

    def _report_batch(
        self, batch: list[InFlight], measured: list[tuple[int, str, int, float | None]]
    ) -> None:
        """One line per measured batch: phase, trials of the budget, best, descent step."""
        if self.flop is None:
            try:
                self.flop = _tvm.estimate_flops(self.context.mod)
            except Exception:  # a workload TVM cannot count FLOPs of: latency only
                self.flop = 0.0
        phases = sorted({flight.phase for flight in batch})
        failed = sum(1 for *_, latency in measured if latency is None)
        best = self.best()
        line = (
            f"droplet: {self.log.task_name}: measured {len(batch)} ({'+'.join(phases)}), "
            f"{failed} failed; "
            f"{self.issued}/{self.max_trials} trials; best "
        )
        if best is None:
            line += "none yet"
        else:
            line += f"{best.latency * 1e6:.2f} us"
            if self.flop > 0:
                line += f" ({self.flop / best.latency / 1e9:.2f} GFLOP/s)"
            line += f", found by {best.phase}"
        active = self.descents.active
        if active is not None and any(flight.proposal is not None for flight in batch):
            line += f"; descent step {active.droplet.step}"
        self.log(line)

    def _progress(self, size: int, explored: int, descended: list[str]) -> None:
        self.log(
            f"droplet: batch of {size} candidates, {explored} explored and "
            f"{len(descended)} descended ({self.issued}/{self.max_trials} trials)"
            + (f"; descent programs: {' '.join(descended)}" if descended else "")
        )

    def _enter(self, phase: str) -> None:
        self.phase = phase
        if not self.stats.phases or self.stats.phases[-1] != phase:
            self.stats.phases.append(phase)


def _mean_or_none(samples: list[float] | None) -> float | None:
    return None if samples is None else math.fsum(samples) / len(samples)
