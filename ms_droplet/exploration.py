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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import _tvm

# Consecutive exploration batches that bring nothing new before the explorer counts as spent.
MAX_STALE_EXPLORATIONS = 3


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
        # Programs the sampler proposed: their results go back to it.
        self.sampled: set[int] = set()
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
                candidates, sampled = self._generate()
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
            if sampled:
                self.sampled.update(hashes)
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
        for strategy, own in ((self.explorer, False), (self.sampler, True)):
            mine = [i for i, h in enumerate(hashes) if (h in self.sampled) == own]
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

    def _generate(self) -> tuple[list[_tvm.MeasureCandidate] | None, bool]:
        """A batch from the sampler while the model guesses, else from the explorer.

        Also whether the sampler proposed it. The first sampled batch on which the model has
        learned is dropped, and the sampler with it: a model does not return to guessing.
        """
        if self.sampler is not None:
            sampled = self.sampler.generate_measure_candidates()
            if sampled and not self.model_learned_on(sampled[0].sch):
                return sampled, True
            self.sampler.post_tuning()
            self.sampler = None
        return self.explorer.generate_measure_candidates(), False
