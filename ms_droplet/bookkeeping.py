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
"""What one task has measured and counted: the records every part of a task shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _tvm
from .stats import mean

# Where a measured program came from. A descent's phase says how its start was chosen: the best
# program of this run's exploration ("descent"), a later start after a descent converged
# ("restart"), or a program found in the database before this run ("warm-start").
EXPLORE, DESCENT, RESTART, WARM_START = "explore", "descent", "restart", "warm-start"
# Programs that were in the user's database when the task started.
DATABASE = "database"
# A descent's centre measured again beside its neighbours (option ``control``).
CONTROL = "control"


@dataclass
class Measured:
    """A successfully measured program.

    Parameters
    ----------
    module_hash : int
        Structural hash of the post-processed module.
    trace : Trace
        The trace that produced it.
    samples : List[float]
        Its run times in seconds.
    phase : str
        Where it came from (one of the phase names of this module, or ``DATABASE``).
    """

    module_hash: int
    trace: _tvm.Trace
    samples: list[float]
    phase: str

    @property
    def latency(self) -> float:
        """Mean run time in seconds."""
        return mean(self.samples)


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
    controls: int = 0
    # Descent-phase batches the explorer took because it was gaining more per second than the
    # descent (adaptive_explore).
    explorer_turns: int = 0
    # Programs known from the database when the task started (measured ones, failed ones), and
    # candidates that were not measured because the database already held their program.
    known_measured: int = 0
    known_failed: int = 0
    known_skipped: int = 0
    # Wall-clock seconds spent in generate/notify, the part of it inside TVM's explorer, and
    # the part spent reading the database and warming the cost model at the start.
    strategy_seconds: float = 0.0
    explorer_seconds: float = 0.0
    adapter_seconds: float = 0.0
    phases: list[str] = field(default_factory=list)
