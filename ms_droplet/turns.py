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
"""Whose turn: the explorer's or the descent's, batch by batch (option ``adaptive_explore``).

Once a task's cost model has learned, TVM's model-guided genetic search and droplet's descent
are two ways to spend a batch, at different costs: a genetic search costs seconds of evolution
before anything is built, a descent batch only the replays of its neighbours. :class:`Turns`
keeps what each one's recent batches gained (the share by which the batch's best beat the task's
best before it) and how long they took (from the batch being chosen to its results), and gives
the next batch to the one that gained more per second. The explorer, not yet seen with a learned
model, gets a batch to show what it gains. Pure Python: the task (:mod:`ms_droplet.task`)
measures and asks.
"""

from __future__ import annotations

from collections import deque

# Whose batch: TVM's explorer, or the descent.
EXPLORER_TURN, DESCENT_TURN = "explorer", "descent"
# Batches of each one that its rate is taken over: the latest ones say what it gains now (both
# gain less as the task converges), two keep one lucky or unlucky batch from deciding alone.
WINDOW = 2


class Turns:
    """What the explorer and the descent gained per second, and whose turn is next.

    Parameters
    ----------
    window : int
        How many of each one's latest batches its rate is taken over.
    ties_to_explorer : bool
        Whether the explorer takes the batches while neither is ahead (option
        ``stalled_turns="explorer"``) rather than the two taking turns.
    """

    def __init__(self, window: int = WINDOW, ties_to_explorer: bool = False) -> None:
        if window < 1:
            raise ValueError(f"Turns needs a window of at least one batch, got {window}")
        self.ties_to_explorer = ties_to_explorer
        self.batches: dict[str, deque[tuple[float, float]]] = {
            EXPLORER_TURN: deque(maxlen=window),
            DESCENT_TURN: deque(maxlen=window),
        }

    def record(self, whose: str, gain: float, seconds: float) -> None:
        """Remember a batch of ``whose``: its gain (0 for none) and its seconds."""
        if whose not in self.batches:
            raise ValueError(
                f"a batch is the {EXPLORER_TURN}'s or the {DESCENT_TURN}'s, not {whose!r}"
            )
        self.batches[whose].append((max(0.0, gain), max(seconds, 1e-9)))

    def rate(self, whose: str) -> float | None:
        """Gain per second over the latest batches of ``whose``; ``None`` before its first."""
        batches = self.batches[whose]
        if not batches:
            return None
        return sum(gain for gain, _ in batches) / sum(seconds for _, seconds in batches)

    def new_descent(self) -> None:
        """A descent started from a program the explorer found.

        With ``ties_to_explorer`` the descent's batches so far are forgotten: they were the
        stalled descent's, and the new one, in another basin, gets the next batch.
        """
        if self.ties_to_explorer:
            self.batches[DESCENT_TURN].clear()

    def explorer_next(self, last: str) -> bool:
        """Whether the explorer takes the next batch, ``last`` having had the last one.

        The descent has the first batch; the explorer then one to show its rate; then the one
        with the higher rate. When neither is ahead (most often both gained nothing in their
        latest batches), they take turns, so that neither is judged on stale batches for ever,
        or, with ``ties_to_explorer``, the explorer takes them.
        """
        descent = self.rate(DESCENT_TURN)
        if descent is None:
            return False
        explorer = self.rate(EXPLORER_TURN)
        if explorer is None:
            return True
        if explorer == descent:
            return self.ties_to_explorer or last == DESCENT_TURN
        return explorer > descent
