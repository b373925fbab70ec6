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
"""What a task can expect of MetaSchedule's task scheduler: its share of the trials.

The scheduler hands a search strategy only the per-task cap (``max_trials_per_task``, which
``tune_tasks`` sets to the global budget unless told otherwise) and the batch size, then decides
round by round which task gets the next batch. A task alone gets the whole cap; a task tuned
beside others (a Relax model) gets, on average, the cap divided among them, and may get only a
batch or two. The exploration is sized by that expected share, so that every task the scheduler
gives a second batch descends in it.

The scheduler starts every task (``pre_tuning``, all with the same database and cost model)
before it asks any of them for a batch, so the strategies started with the same database and
cost model since the last batch was asked for are the tasks tuned together: a :class:`Cohort`.
No TVM import here.
"""

from __future__ import annotations

import math
from collections.abc import Hashable


class Cohort:
    """The tasks one task scheduler started together, counted as they start.

    Parameters
    ----------
    key : Hashable
        What the tasks of one session share (the identities of its database and cost model).
    """

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.tasks = 0
        self.closed = False


_forming: Cohort | None = None


def join_cohort(key: Hashable) -> Cohort:
    """Count a task starting (``pre_tuning``); the cohort it belongs to.

    A task joins the cohort still forming if it has the same ``key``, or opens a new one (the
    last cohort has begun tuning, or belongs to another session).
    """
    global _forming
    if _forming is None or _forming.closed or _forming.key != key:
        _forming = Cohort(key)
    _forming.tasks += 1
    return _forming


def close(cohort: Cohort) -> None:
    """Mark that ``cohort`` began tuning (its first batch was asked for): no task joins it."""
    cohort.closed = True


def close_forming() -> None:
    """Close the cohort still forming, if any (a task ended: its session is over)."""
    if _forming is not None:
        close(_forming)


def expected_share(max_trials: int, tasks_together: int) -> float:
    """Trials a task can expect: its cap divided among the tasks tuned together."""
    return max_trials / max(1, tasks_together)


def exploration_cap(
    explore_trials: int,
    explore_fraction: float,
    max_trials: int,
    per_iter: int,
    tasks_together: int,
) -> int:
    """Most trials a task explores before its first descent.

    A task alone: at most ``explore_trials`` and at most ``explore_fraction`` of its budget.
    Beside other tasks, where the scheduler decides batch by batch and most tasks of a model
    get two or three: the first batch and half of the second (at most ``explore_trials``). The
    first batch explores whatever the cap, since a descent needs a measured program to start
    from; the second batch's exploration is TVM's explorer with a cost model trained on the
    first, the candidates that gain most (in benchmarks/RESULTS.md, exploring one batch lost
    to exploring two by 1.7x on the CNN model); its other half descends, so that every task
    the scheduler gives a second batch descends in it. A task given more than its share
    explores again later (:class:`~ms_droplet.task.DropletTask`).

    Examples
    --------
    >>> exploration_cap(32, 0.5, 128, 32, 1)  # one kernel, tune_tir
    32
    >>> exploration_cap(32, 0.5, 256, 16, 6)  # a 6-task model, 256 trials in all
    24
    """
    cap = min(explore_trials, math.floor(explore_fraction * max_trials))
    return cap if tasks_together <= 1 else min(cap, per_iter + per_iter // 2)
