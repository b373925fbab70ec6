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
"""``DropletSearch``: the MetaSchedule search strategy behind ``strategy="droplet"``.

Droplet search ("Droplet Search", ACM TACO 2024; "Explore as a Storm, Exploit as a Raindrop",
arXiv 2406.20037) spends a short, capped exploration in MetaSchedule's ``EvolutionarySearch``,
then runs a coordinate descent over the sampling decisions of the fastest schedule measured.
The parts: the options table (``resolve_options``); the database and cost-model adapters
(``DatabaseAdapter``, ``CostModelRanker``); the pure descent over integer points (``Droplet``,
ask/tell, with a Welch test against measurement noise); a trace's decisions as coordinates
(``DecisionSpace``); the descents of one task (``Descents``); the capped explorer
(``Exploration``); one task's state (``DropletTask``); and the strategy itself.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from . import _tvm
from .options import options_docstring, resolve_options
from .task import DropletTask


@_tvm.derived_object
class DropletSearch(_tvm.PySearchStrategy):
    """Capped evolutionary exploration, then droplet coordinate descent over trace decisions.

    Each task first spends at most ``explore_trials`` measured trials (and at most
    ``explore_fraction`` of its budget) in TVM's own ``EvolutionarySearch``. Then, from the
    fastest measured schedule, every decision of its trace (tile sizes, unroll and other
    categorical choices, compute locations, parallel and vectorize extents) becomes a coordinate,
    and a droplet descent measures neighbours in both directions, growing its step when none is
    faster, and moving only when a neighbour is faster beyond measurement noise. Programs already
    measured are never measured again. All of it runs inside the task scheduler's trial budget,
    through the user's builder, runner, database and measure callbacks.

    Parameters
    ----------
    {options}
    """

    def __init__(self, **options: Any) -> None:
        self.options = resolve_options(options)
        # The descent's significance test is SciPy's, imported on first use by the test itself
        # (TVM imports without SciPy). Importing it here makes a missing SciPy fail before any
        # trial is spent, and keeps its import (half a second) out of the search's own time.
        try:
            importlib.import_module("scipy.stats")
        except ImportError as err:
            raise ImportError(
                "DropletSearch needs SciPy for its significance test: pip install scipy"
            ) from err
        if self.options["evolutionary"]:
            try:
                _tvm.EvolutionarySearch(**self.options["evolutionary"])
            except TypeError as err:
                raise ValueError(
                    f"Invalid DropletSearch option 'evolutionary': {err}. It takes the keyword "
                    "arguments of tvm.s_tir.meta_schedule.search_strategy.EvolutionarySearch."
                ) from err
        self.context: _tvm.TuneContext | None = None
        self.task: DropletTask | None = None

    def _initialize_with_tune_context(self, context: _tvm.TuneContext) -> None:
        self.context = context

    def pre_tuning(
        self,
        max_trials: int,
        num_trials_per_iter: int,
        design_spaces: list[_tvm.Schedule],
        database: _tvm.Database | None = None,
        cost_model: _tvm.CostModel | None = None,
    ) -> None:
        """Start a task (see ``SearchStrategy.pre_tuning``)."""
        if self.context is None:
            raise ValueError(
                "DropletSearch.pre_tuning() needs a TuneContext: construct "
                "TuneContext(search_strategy=DropletSearch(...)) first"
            )
        if self.task is not None:
            raise ValueError("DropletSearch.pre_tuning() called twice without post_tuning()")
        self.task = DropletTask(
            self.context,
            self.options,
            int(max_trials),
            int(num_trials_per_iter),
            list(design_spaces),
            database,
            cost_model,
        )

    def post_tuning(self) -> None:
        """End the task (see ``SearchStrategy.post_tuning``)."""
        if self.task is not None:
            self.task.close()
        self.task = None

    def generate_measure_candidates(self) -> list[_tvm.MeasureCandidate] | None:
        """The next batch to measure, or ``None`` when the task is finished."""
        if self.task is None:
            raise ValueError("DropletSearch.generate_measure_candidates() before pre_tuning()")
        start = time.perf_counter()
        try:
            return self.task.generate()
        finally:
            self.task.stats.strategy_seconds += time.perf_counter() - start

    def notify_runner_results(
        self,
        measure_candidates: list[_tvm.MeasureCandidate],
        results: list[_tvm.RunnerResult],
    ) -> None:
        """Hand the measured run times back to the candidates they belong to."""
        if self.task is None:
            raise ValueError("DropletSearch.notify_runner_results() before pre_tuning()")
        start = time.perf_counter()
        try:
            self.task.notify(list(measure_candidates), list(results))
        finally:
            self.task.stats.strategy_seconds += time.perf_counter() - start

    def clone(self) -> _tvm.SearchStrategy:
        """An independent strategy with the same options and no task state."""
        return DropletSearch(**{k: v for k, v in self.options.items()})


DropletSearch.__doc__ = (DropletSearch.__doc__ or "").replace(
    "{options}", options_docstring().replace("\n", "\n    ")
)
