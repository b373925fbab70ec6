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
"""The exploration phase: TVM's own search strategy, capped and deduplicated.

:class:`Exploration` wraps ``EvolutionarySearch`` (or ``ReplayTrace`` when the task has no
database or cost model, as in TVM's own strategy tests) behind a cap on the trials it may take,
drops the programs that were measured before, and reports to the explorer only the results of its
own candidates. A call of the explorer yields a whole batch; what the cap or a batch's share of
exploration leaves of it is kept for the next batches, so that a task exploring a few candidates a
batch (``explore_share``) runs TVM's genetic search once per batch-size of explored candidates,
as often as EvolutionarySearch itself does, not once a batch.

While the cost model still guesses, the candidates come from ``ReplayTrace`` instead (option
``sample_while_guessing``): EvolutionarySearch keeps the programs its model scores best, and a
model that guesses (TVM's ``XGBModel`` until it has seen ``num_warmup_samples`` measurements)
scores at random, so its genetic search then costs seconds a batch to pick random programs of the
design space, which ReplayTrace samples directly.

A design space that samples no decision (reshapes, transposes and other injective kernels) leaves
TVM's explorers next to nothing to search: ReplayTrace proposes its one program again and again,
and EvolutionarySearch varies its parallel extent at most (no mutator of TVM changes the
vectorize width, which moved the transformer benchmark's permutes by up to 30%). Such a space's
tunable values are the parallel and vectorize annotations the descent varies, a few dozen
combinations, so the exploration measures every distinct program among them in its first batch:
MetaSchedule's task scheduler gives a small task one batch, often its only one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import _tvm
from .space import DecisionSpace

# Consecutive exploration batches that bring nothing new before the explorer counts as spent.
MAX_STALE_EXPLORATIONS = 3
# Most points (annotation combinations) of a design space that samples no decision for it to be
# measured whole: the parallel and vectorize annotations take 7 values each on a CPU.
MAX_ENUMERATED_POINTS = 256
# Who proposed an explored program: TVM's explorer, its sampler while the model guesses, or the
# enumeration of design spaces that sample nothing.
EXPLORER, SAMPLER, ENUMERATION = "explorer", "sampler", "enumeration"


class Exploration:
    """TVM's explorer with a trial cap.

    Parameters
    ----------
    context : TuneContext
        The task's tune context.
    evolutionary : Optional[Dict[str, Any]]
        Keyword arguments of ``EvolutionarySearch``.
    max_trials, num_trials_per_iter : int
        The task's budget and batch size, handed to the explorer's ``pre_tuning``.
    design_spaces : List[Schedule]
        The task's design spaces.
    database : Optional[Database]
        What the explorer seeds from (droplet hands it a target-filtered view).
    cost_model : Optional[CostModel]
        The task's cost model.
    cap : int
        Most trials the exploration may take.
    model_learned_on : Optional[Callable[[Schedule], bool]]
        Whether the cost model has learned, asked of a sampled program; with it, the
        exploration samples with ReplayTrace until the model has learned.
    """

    def __init__(
        self,
        context: _tvm.TuneContext,
        evolutionary: dict[str, Any] | None,
        max_trials: int,
        num_trials_per_iter: int,
        design_spaces: list[_tvm.Schedule],
        database: _tvm.Database | None,
        cost_model: _tvm.CostModel | None,
        cap: int,
        model_learned_on: Callable[[_tvm.Schedule], bool] | None = None,
    ) -> None:
        generator = context.space_generator
        evolutionary_ready = (
            database is not None
            and cost_model is not None
            and generator is not None
            and generator.postprocs is not None
            and generator.mutator_probs is not None
        )
        # The sampler proposes while the model guesses, the explorer once it has learned.
        self.sampler: _tvm.SearchStrategy | None = None
        if evolutionary_ready:
            self.explorer = _tvm.EvolutionarySearch(**(evolutionary or {}))
            if model_learned_on is not None:
                self.sampler = _tvm.ReplayTrace()
        else:
            # TVM's evolutionary search refuses to run without a database and a cost model;
            # replaying the design space's traces with fresh decisions needs neither.
            self.explorer = _tvm.ReplayTrace()
        for strategy in (self.explorer, self.sampler):
            if strategy is not None:
                strategy._initialize_with_tune_context(context)
                strategy.pre_tuning(
                    max_trials, num_trials_per_iter, design_spaces, database, cost_model
                )
        self.model_learned_on = model_learned_on
        # Every program of design spaces that sample nothing, proposed once instead of asking
        # the explorers (None: the design spaces sample decisions, or hold too many points).
        self.enumerated = every_program(context, design_spaces)
        # Programs the sampler or the enumeration proposed (the explorer's are not listed):
        # results go back to the strategy that proposed them.
        self.proposer: dict[int, str] = {}
        self.cap = cap
        self.taken = 0
        self.spent = False
        # Why TVM's explorer stopped early, if it failed.
        self.error: str | None = None
        self.seconds = 0.0
        self._stale = 0
        # Fresh candidates of the explorer's last call that no batch took yet.
        self._kept: list[tuple[_tvm.MeasureCandidate, int]] = []

    def quota(self, in_batch: int = 0) -> int:
        """Trials the exploration may still take, ``in_batch`` of them already being issued."""
        return max(0, self.cap - self.taken - in_batch)

    def propose(
        self, count: int, in_batch: int, is_known: Callable[[int], bool]
    ) -> tuple[list[tuple[_tvm.MeasureCandidate, int]], int]:
        """Up to ``count`` new candidates with their program hashes, and the duplicates dropped.

        ``is_known(module_hash)`` says whether a program was measured, issued or taken into the
        batch already; such candidates are dropped.
        """
        quota = self.quota(in_batch)
        duplicates = 0
        if quota > 0 and self._kept:
            kept, self._kept = self._kept, []
            fresh = [(c, h) for c, h in kept if not is_known(h)]
            duplicates += len(kept) - len(fresh)
            if fresh:
                taken = min(count, quota)
                self._kept = fresh[taken:]
                return fresh[:taken], duplicates
        while quota > 0 and not self.spent:
            start = time.perf_counter()
            try:
                candidates, proposer = self._generate()
            except Exception as err:  # TVM's explorer failing ends exploring, not the tuning
                last_line = (str(err).strip().splitlines() or [""])[-1]
                self.error = f"{type(err).__name__}: {last_line}"
                candidates = None
            self.seconds += time.perf_counter() - start
            if candidates is None:
                self.spent = True
                break
            fresh: list[tuple[_tvm.MeasureCandidate, int]] = []
            hashes: set[int] = set()
            for candidate in candidates:
                program_hash = _tvm.module_hash(candidate.sch.mod)
                if is_known(program_hash) or program_hash in hashes:
                    duplicates += 1
                    continue
                hashes.add(program_hash)
                fresh.append((candidate, program_hash))
            if proposer != EXPLORER:
                self.proposer.update(dict.fromkeys(hashes, proposer))
            if fresh:
                self._stale = 0
                taken = min(count, quota)
                self._kept = fresh[taken:]
                return fresh[:taken], duplicates
            self._stale += 1
            if self._stale >= MAX_STALE_EXPLORATIONS:
                self.spent = True
        return [], duplicates

    def notify(
        self,
        candidates: list[_tvm.MeasureCandidate],
        results: list[_tvm.RunnerResult],
        hashes: list[int],
    ) -> None:
        """Hand the explorer (and the sampler) the results of its own candidates.

        ``hashes`` are the candidates' program hashes, as :meth:`propose` returned them.
        """
        start = time.perf_counter()
        for strategy, source in ((self.explorer, EXPLORER), (self.sampler, SAMPLER)):
            mine = [i for i, h in enumerate(hashes) if self.proposer.get(h, EXPLORER) == source]
            if strategy is not None and mine:
                strategy.notify_runner_results(
                    [candidates[i] for i in mine], [results[i] for i in mine]
                )
        self.seconds += time.perf_counter() - start

    def grant(self, trials: int) -> None:
        """Allow ``trials`` more trials beyond what was taken (a batch's share of exploration)."""
        self.cap = self.taken + trials

    def extend(self, trials: int) -> None:
        """Return to exploration for ``trials`` trials, from a fresh call of the explorer.

        The candidates kept from an earlier call were chosen before everything measured since;
        a return to exploration wants the explorer's view of now.
        """
        self._kept = []
        self.grant(trials)

    def close(self) -> None:
        """End the explorer's task."""
        self.explorer.post_tuning()
        if self.sampler is not None:
            self.sampler.post_tuning()

    def _generate(self) -> tuple[list[_tvm.MeasureCandidate] | None, str]:
        """The next batch to explore, and who proposed it.

        Every program of a space that samples nothing, once (the exploration is then spent);
        else a batch from the sampler while the model guesses, else from the explorer. The first
        sampled batch on which the model has learned is dropped, and the sampler with it: a
        model does not return to guessing.
        """
        if self.enumerated is not None:
            candidates, self.enumerated = self.enumerated, None
            self.spent = True
            return candidates, ENUMERATION
        if self.sampler is not None:
            sampled = self.sampler.generate_measure_candidates()
            if sampled and not self.model_learned_on(sampled[0].sch):
                return sampled, SAMPLER
            self.sampler.post_tuning()
            self.sampler = None
        return self.explorer.generate_measure_candidates(), EXPLORER


def every_program(
    context: _tvm.TuneContext, design_spaces: list[_tvm.Schedule]
) -> list[_tvm.MeasureCandidate] | None:
    """Candidates of every program of ``design_spaces`` if none of them samples a decision.

    ``None`` when a design space samples a decision (the explorers have a space to search),
    when none has an annotation to vary, or when one holds more than
    :data:`MAX_ENUMERATED_POINTS` points. Annotation values past a loop's extent give the same
    program: each program comes once.
    """
    generator = context.space_generator
    if not design_spaces or generator is None or generator.postprocs is None:
        return None
    if any(len(space.trace.decisions) for space in design_spaces):
        return None
    candidates = []
    hashes: set[int] = set()
    # Whether some design space has a value to vary; if none has, the explorers propose what
    # there is.
    varied = False
    for design_space in design_spaces:
        try:
            space = DecisionSpace(context.mod, design_space.trace, list(generator.postprocs))
        except Exception:  # a trace this version cannot read: leave it to the explorers
            return None
        points = space.every_point(MAX_ENUMERATED_POINTS)
        if points is None:
            return None
        varied = varied or bool(space.coordinates)
        # The design space's own program first, then by distance from it: an exploration
        # capped below the number of programs measures TVM's default and its nearest variants.
        points.sort(key=lambda p: sum(abs(a - b) for a, b in zip(p, space.origin)))
        for point in points:
            sch = space.replay(point)
            program_hash = None if sch is None else _tvm.module_hash(sch.mod)
            if program_hash is not None and program_hash not in hashes:
                hashes.add(program_hash)
                candidates.append(_tvm.make_candidate(sch))
    return candidates if varied else None
