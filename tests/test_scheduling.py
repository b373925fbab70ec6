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
"""How a task sizes its exploration from what the task scheduler will give it."""

import pytest

from ms_droplet import scheduling


@pytest.mark.parametrize(
    ("explore_trials", "fraction", "max_trials", "per_iter", "tasks", "cap"),
    [
        (32, 0.5, 128, 32, 1, 32),  # one kernel (tune_tir): as before
        (32, 0.5, 40, 16, 1, 20),  # one kernel, small budget: half of it
        (32, 0.5, 256, 16, 6, 24),  # a model's six tasks: a batch and a half
        (32, 0.5, 2000, 16, 5, 24),  # whatever the budget: the scheduler decides the rest
        (16, 0.5, 256, 16, 6, 16),  # explore_trials still caps it
        (32, 0.5, 256, 32, 6, 32),
        (0, 0.5, 256, 16, 6, 0),  # post-optimisation: no exploration
    ],
)
def test_exploration_cap_follows_the_share(
    explore_trials, fraction, max_trials, per_iter, tasks, cap
):
    assert scheduling.exploration_cap(explore_trials, fraction, max_trials, per_iter, tasks) == cap


def test_tasks_started_together_form_one_cohort_until_the_first_batch():
    first = scheduling.join_cohort("session A")
    assert scheduling.join_cohort("session A") is first
    assert first.tasks == 2
    # Another session's task (another database and cost model) does not join it.
    other = scheduling.join_cohort("session B")
    assert other is not first and other.tasks == 1
    scheduling.close(other)
    # Once a session asked for a batch, a task starting later opens a new cohort.
    later = scheduling.join_cohort("session B")
    assert later is not other and later.tasks == 1
    scheduling.close_forming()
    assert scheduling.join_cohort("session B") is not later
    assert scheduling.expected_share(256, 6) == pytest.approx(42.67, abs=0.01)
    assert scheduling.expected_share(64, 0) == 64
