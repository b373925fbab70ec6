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
"""The task's MetaSchedule cost model as a partner of the descent.

:class:`CostModelRanker` orders a descent's replayed neighbours by the model's predicted speed so
that a batch goes to the most promising ones, and trains the model on the programs the database
already knows when a task starts (a resumed or post-optimised run ranks with a trained model from
its first batch). Any ``CostModel`` works (xgb, mlp, random, a user's ``PyCostModel``), and so
does none: without a model the descent's own order stands, and so it does while the model is
still guessing (two predictions of the same candidates differ): TVM's ``XGBModel`` predicts
uniform random scores until it has seen ``num_warmup_samples`` (100) measurements, which in a
one-kernel run of 128 trials is most of the run. The model keeps learning from every measured
candidate, the descent's included, through MetaSchedule's ``UpdateCostModel`` measure callback,
as for any strategy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .. import _tvm

logger = logging.getLogger(__name__)

# Known programs the model is trained on when a task starts: enough for XGBoost to rank well,
# few enough that feature extraction stays a small share of a task's start.
WARM_UP_RECORDS = 256


class CostModelRanker:
    """Ranks candidates with a cost model, or keeps their order without one.

    Parameters
    ----------
    context : TuneContext
        The task's tune context (the model predicts per task).
    cost_model : Optional[CostModel]
        The task's cost model.
    """

    def __init__(self, context: _tvm.TuneContext, cost_model: _tvm.CostModel | None) -> None:
        self.context = context
        self.cost_model = cost_model
        # Whether the model gave the same scores twice: from then on its scores are used.
        self.learned = False
        # Questions (learned_on, order) answered with "still guessing".
        self.guessed = 0
        # Whether learned_on() was asked since new_batch(): a model only learns between batches
        # (MetaSchedule's UpdateCostModel callback), so one question a batch is enough.
        self.asked = False

    @property
    def active(self) -> bool:
        """Whether a model ranks candidates."""
        return self.cost_model is not None

    def learned_on(self, schedule: _tvm.Schedule) -> bool:
        """Whether the model has learned: two predictions of ``schedule`` agree.

        Once they do, the model counts as learned for good (a model that has learned does not
        return to guessing), and no further question is asked; until then, one question per
        batch (:meth:`new_batch`).
        """
        if self.cost_model is None:
            return False
        if not self.learned and not self.asked:
            self.asked = True
            self._learned_scores([_tvm.make_candidate(schedule)])
        return self.learned

    def new_batch(self) -> None:
        """Allow :meth:`learned_on` to ask the model again (it may have learned since)."""
        self.asked = False

    def order(self, schedules: Sequence[_tvm.Schedule]) -> list[int]:
        """Indices of ``schedules``, predicted fastest first.

        The given order stands without a model, and while the model is still guessing: its
        order would only shuffle the descent's.
        """
        identity = list(range(len(schedules)))
        if self.cost_model is None or len(schedules) < 2:
            return identity
        scores = self._learned_scores([_tvm.make_candidate(sch) for sch in schedules])
        if scores is None:
            return identity
        # Scores are predicted throughput: higher is faster. sorted() is stable, so ties keep
        # the descent's order.
        return sorted(identity, key=lambda i: -scores[i])

    def _learned_scores(self, candidates: list[_tvm.MeasureCandidate]) -> list[float] | None:
        """The model's scores of ``candidates``; ``None`` while it guesses, or if it fails.

        Until the model is known to have learned it predicts twice: a model that is still
        guessing scores at random (TVM's XGBModel until it has seen num_warmup_samples (100)
        measurements, RandomModel always), so its two predictions differ.
        """
        try:
            scores = self._predict(candidates)
            if not self.learned:
                self.learned = self._predict(candidates) == scores
        except Exception as err:  # a failing model ranks nothing; the search goes on
            logger.debug("cost model could not predict: %s", err)
            return None
        if not self.learned:
            self.guessed += 1
            return None
        return scores

    def _predict(self, candidates: list[_tvm.MeasureCandidate]) -> list[float]:
        return [float(s) for s in self.cost_model.predict(self.context, candidates)]

    def warm_up(
        self, candidates: Sequence[_tvm.MeasureCandidate], samples: Sequence[list[float] | None]
    ) -> int:
        """Train the model on known measurements (at most :data:`WARM_UP_RECORDS`).

        Returns the number of records the model was given (0 without a model or on failure).
        """
        if self.cost_model is None or not candidates:
            return 0
        candidates, samples = list(candidates)[:WARM_UP_RECORDS], list(samples)[:WARM_UP_RECORDS]
        results = [
            _tvm.RunnerResult(run_secs=times, error_msg=None)
            if times is not None
            else _tvm.RunnerResult(run_secs=None, error_msg="failed in an earlier run")
            for times in samples
        ]
        try:
            self.cost_model.update(self.context, candidates, results)
        except Exception as err:  # the model stays as it was; the search goes on without it
            logger.warning("cost model could not learn from the database: %s", err)
            return 0
        return len(candidates)
