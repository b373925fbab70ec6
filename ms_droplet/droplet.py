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
"""Droplet search: batched coordinate descent over integer coordinates.

This module is the pure search core. It never builds, runs or times anything and imports nothing
from TVM: it is *asked* for points and *told* their measured run times (the ask/tell style of
Optuna's samplers), which maps directly onto MetaSchedule's ``generate_measure_candidates`` /
``notify_runner_results`` pair.

A point is a tuple of option indices, one per coordinate; coordinate ``d`` takes values in
``range(sizes[d])``. The descent keeps a *centre* (the best point so far) and a *step*. Each round
proposes the neighbours ``centre +- step * e_d`` of every coordinate ``d``. A measured neighbour
that is faster than the centre beyond noise (:func:`~ms_droplet.stats.is_significantly_faster`)
becomes the centre at once, the step resets to 1 and the next round starts with a speculative
point one more move along the direction that just paid off. When a round is used up without an
improvement the step doubles (the "speculation" of the Droplet papers: larger moves are tried
while results of smaller ones are still pending). When the step outgrows every coordinate and
nothing is pending, the descent has converged; the caller may :meth:`Droplet.restart` it from
another point, and points visited before are never proposed again.

With ``combine``, a round whose results are all in also proposes the moves that paid off
together: every measured single-coordinate move that was faster than the point it moved from
is added to the centre reached from that point (each on its own, and all of them at once). A
batch measures a whole round at the same moment, so the moves that each gained a little are
known together; taking them one per round spends a batch per move.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence

from .stats import is_significantly_faster, mean

Point = tuple[int, ...]


class Droplet:
    """Coordinate descent over a box of integer coordinates, driven by ask/tell.

    Parameters
    ----------
    sizes : Sequence[int]
        Number of options of every coordinate (each at least 1).
    significance : float
        Level of the one-sided test that accepts a faster neighbour.
    min_improvement : float
        Smallest relative gain that accepts a faster neighbour.
    seed : int
        Seed of the order in which coordinates are visited within a round.
    pairs : Sequence[Tuple[int, int]]
        Pairs of coordinates that also move together, one up and the other down by the same
        step, after the single-coordinate moves of a round: two levels of one loop tiling, so
        that a factor can pass from one level to another in one move where two single moves
        would each have to pay off on their own.
    combine : bool
        Once a round's results are in, first propose the centre plus the other faster moves of
        that round (see the module docstring).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        significance: float = 0.25,
        min_improvement: float = 0.01,
        seed: int = 0,
        pairs: Sequence[tuple[int, int]] = (),
        combine: bool = False,
    ) -> None:
        if any(size < 1 for size in sizes):
            raise ValueError(f"every coordinate needs at least one option, got sizes {sizes}")
        self.pairs: tuple[tuple[int, int], ...] = tuple((int(a), int(b)) for a, b in pairs)
        if any(a == b or not (0 <= a < len(sizes) and 0 <= b < len(sizes)) for a, b in self.pairs):
            raise ValueError(f"pairs must name two different coordinates of {len(sizes)}")
        self.sizes: tuple[int, ...] = tuple(sizes)
        self.significance = significance
        self.min_improvement = min_improvement
        self._rng = random.Random(seed)
        self._visited: set[Point] = set()
        # Results told so far: a later descent (after a restart) reuses them instead of
        # proposing the same point again.
        self._results: dict[Point, list[float]] = {}
        self._pending: set[Point] = set()
        self._queue: deque[Point] = deque()
        self._centre: Point | None = None
        self._centre_samples: list[float] = []
        self._step = 1
        self._max_step = max((size - 1 for size in self.sizes), default=0)
        self.moves = 0
        self.combine = combine
        # The centre each pending point was asked from, and per such centre the faster
        # single-coordinate moves measured from it: coordinate -> (mean run time, delta).
        self._asked_from: dict[Point, Point] = {}
        self._gains: dict[Point, dict[int, tuple[float, int]]] = {}
        self._combined: set[Point] = set()

    # ----------------------------------------------------------------------------------------
    # State
    # ----------------------------------------------------------------------------------------
    @property
    def centre(self) -> Point | None:
        """The current best point, or ``None`` before :meth:`restart`."""
        return self._centre

    @property
    def centre_latency(self) -> float | None:
        """Mean run time of the centre, or ``None`` before :meth:`restart`."""
        return mean(self._centre_samples) if self._centre_samples else None

    @property
    def step(self) -> int:
        """The current step length."""
        return self._step

    @property
    def pending(self) -> frozenset[Point]:
        """Points handed out by :meth:`ask` whose results have not been told yet."""
        return frozenset(self._pending)

    @property
    def can_propose(self) -> bool:
        """Whether :meth:`ask` may still return points from the current centre."""
        return self._centre is not None and (bool(self._queue) or self._step * 2 <= self._max_step)

    @property
    def converged(self) -> bool:
        """Whether the descent can propose nothing more from its centre and awaits no result."""
        return not self._pending and not self.can_propose

    def is_visited(self, point: Point) -> bool:
        """Whether ``point`` was proposed, told, rejected or started from before."""
        return tuple(point) in self._visited

    # ----------------------------------------------------------------------------------------
    # Ask / tell
    # ----------------------------------------------------------------------------------------
    def restart(self, point: Sequence[int], samples: Sequence[float]) -> None:
        """Start (or restart) the descent from a measured point.

        Parameters
        ----------
        point : Sequence[int]
            The starting point.
        samples : Sequence[float]
            Its measured run times (non-empty).
        """
        point = self._check(point)
        if not samples:
            raise ValueError("a descent must start from a successfully measured point")
        self._visited.add(point)
        self._pending.discard(point)
        self._results[point] = list(samples)
        self._move(point, samples, previous=None)

    def ask(self, count: int) -> list[Point]:
        """Propose up to ``count`` unvisited points, best guesses first.

        When the current round is used up while results are still pending, the step grows
        speculatively. Fewer than ``count`` points come back only when the descent has nothing
        left to propose from its centre.
        """
        if self._centre is None:
            raise RuntimeError("Droplet.ask() before Droplet.restart()")
        self._queue_combinations()
        proposals: list[Point] = []
        while len(proposals) < count:
            if not self._queue and not self._grow():
                break
            point = self._queue.popleft()
            if point in self._visited:
                known = self._results.get(point)
                if known is not None and point != self._centre:
                    self._consider(point, known)
                continue
            self._visited.add(point)
            self._pending.add(point)
            self._asked_from[point] = self._centre
            proposals.append(point)
        return proposals

    def give_back(self, points: Sequence[Point]) -> None:
        """Return asked points that the caller decided not to measure now.

        They go back to the front of the queue, in the given order, and may be asked again.
        """
        for point in reversed([tuple(p) for p in points]):
            if point in self._pending:
                self._pending.discard(point)
                self._asked_from.pop(point, None)
                self._visited.discard(point)
                self._queue.appendleft(point)

    def reject(self, point: Sequence[int]) -> None:
        """Drop an asked point that cannot be measured (invalid or a duplicate in flight)."""
        point = tuple(point)
        self._pending.discard(point)
        self._asked_from.pop(point, None)
        self._visited.add(point)

    def tell(self, point: Sequence[int], samples: Sequence[float] | None) -> bool:
        """Report the run times of a point; ``None`` or empty means it failed.

        Returns
        -------
        moved : bool
            Whether the point became the new centre.
        """
        point = tuple(point)
        self._pending.discard(point)
        self._visited.add(point)
        base = self._asked_from.pop(point, None)
        if samples:
            self._results[point] = list(samples)
            if base is not None:
                self._note_gain(base, point, samples)
        moved = self._consider(point, samples)
        self._queue_combinations()
        return moved

    def refresh_centre(self, point: Sequence[int], samples: Sequence[float] | None) -> bool:
        """Judge what follows against a fresh measurement of the centre (a control).

        Ignored (``False``) when ``point`` is no longer the centre or the measurement failed.
        """
        point = tuple(point)
        if point != self._centre or not samples:
            return False
        self._centre_samples = list(samples)
        self._results[point] = list(samples)
        return True

    def _consider(self, point: Point, samples: Sequence[float] | None) -> bool:
        """Move to ``point`` if it is faster than the centre beyond noise."""
        if not samples or self._centre is None:
            return False
        if not is_significantly_faster(
            samples,
            self._centre_samples,
            significance=self.significance,
            min_improvement=self.min_improvement,
        ):
            return False
        self._move(point, samples, previous=self._centre)
        return True

    # ----------------------------------------------------------------------------------------
    # Internals
    # ----------------------------------------------------------------------------------------
    def _check(self, point: Sequence[int]) -> Point:
        point = tuple(int(x) for x in point)
        if len(point) != len(self.sizes) or any(
            not 0 <= x < size for x, size in zip(point, self.sizes)
        ):
            raise ValueError(f"point {point} lies outside the box {self.sizes}")
        return point

    def _move(self, point: Point, samples: Sequence[float], previous: Point | None) -> None:
        self._centre = point
        self._centre_samples = list(samples)
        self._step = 1
        self._queue.clear()
        if previous is not None:
            self.moves += 1
            # Speculate that the move that just paid off pays off once more.
            ahead = tuple(2 * c - p for c, p in zip(point, previous))
            if self._inside(ahead):
                self._queue.append(ahead)
        self._queue.extend(self._neighbours(point, 1))

    def _grow(self) -> bool:
        """Start the next round at a doubled step; ``False`` once no step fits in the box."""
        while True:
            self._step *= 2
            if self._step > self._max_step:
                return False
            self._queue.extend(self._neighbours(self._centre, self._step))
            if self._queue:
                return True

    def _note_gain(self, base: Point, point: Point, samples: Sequence[float]) -> None:
        """Remember ``point`` if it is a single-coordinate move that was faster than ``base``."""
        if not self.combine:
            return
        moved = [dim for dim, (a, b) in enumerate(zip(base, point)) if a != b]
        base_samples = self._results.get(base)
        if len(moved) != 1 or not base_samples:
            return
        latency = mean(samples)
        # Any gain counts, not only an accepted one: the moves reached from the centre are its
        # neighbours anyway (this only orders them first), and the moves together are one
        # more point, which the test judges like any other.
        if latency >= mean(base_samples):
            return
        dim = moved[0]
        gains = self._gains.setdefault(base, {})
        if dim not in gains or latency < gains[dim][0]:
            gains[dim] = (latency, point[dim] - base[dim])

    def _queue_combinations(self) -> None:
        """Put the combined moves of finished rounds at the front of the queue.

        A round is finished when no point is pending. Its faster moves combine with the centre
        when the centre is their base or one move away from it (the move the round accepted).
        """
        if not self.combine or self._pending or self._centre is None:
            return
        centre = self._centre
        combined: list[Point] = []
        for base, gains in self._gains.items():
            if base in self._combined:
                continue
            moved = [dim for dim, (a, b) in enumerate(zip(base, centre)) if a != b]
            if len(moved) > 1:
                continue
            self._combined.add(base)
            others = sorted(
                (latency, dim, delta) for dim, (latency, delta) in gains.items() if dim not in moved
            )
            together = list(centre)
            for _, dim, delta in others:
                together[dim] += delta
            singles = []
            for _, dim, delta in others:
                point = list(centre)
                point[dim] += delta
                singles.append(tuple(point))
            combined += [tuple(together), *singles]
        fresh = []
        for point in combined:
            if self._inside(point) and point not in self._visited and point not in fresh:
                fresh.append(point)
        self._queue.extendleft(reversed(fresh))

    def _inside(self, point: Point) -> bool:
        return all(0 <= x < size for x, size in zip(point, self.sizes))

    def _neighbours(self, centre: Point, step: int) -> list[Point]:
        dims = list(range(len(self.sizes)))
        self._rng.shuffle(dims)
        out = []
        for dim in dims:
            for delta in (step, -step):
                value = centre[dim] + delta
                if 0 <= value < self.sizes[dim]:
                    out.append((*centre[:dim], value, *centre[dim + 1 :]))
        for up, down in self.pairs:
            for delta in (step, -step):
                point = list(centre)
                point[up] += delta
                point[down] -= delta
                if 0 <= point[up] < self.sizes[up] and 0 <= point[down] < self.sizes[down]:
                    out.append(tuple(point))
        # Visited points stay only when their result is known: the descent may move to them.
        return [p for p in out if p not in self._visited or p in self._results]
