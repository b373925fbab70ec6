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
"""The decisions of a schedule trace as coordinates of a search space.

A :class:`DecisionSpace` is built from one measured trace. Every tunable decision of the trace
becomes a coordinate with an ordered list of valid values:

* ``SamplePerfectTile``: by default every inner factor is a coordinate over the divisors of the
  loop extent and the outermost factor takes the rest, so that one move scales one tile level;
  points whose factors do not divide the extent are invalid and never replayed (TVM would
  silently repair them into a duplicate); with ``tile_moves="transfer"`` every two inner factors
  of one tile also form a pair that moves in opposite directions. ``SamplePartitionedTile`` (and
  ``SamplePerfectTile``
  with ``tile_moves="tiling"``): one coordinate over the valid tilings in lexicographic order;
* ``SampleCategorical``: the indices of its candidates (unroll depths, GPU thread extents...);
* ``SampleComputeLocation``: the locations TVM accepts for the block at that point of the trace;
* ``Annotate`` with ``meta_schedule.parallel`` / ``meta_schedule.vectorize``: powers of two up to
  the design space's limit (what MetaSchedule's MutateParallel varies).

A point (one index per coordinate) replays onto a fresh schedule of the task's module, followed by
the space generator's postprocessors, exactly as MetaSchedule's own strategies replay traces.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import _tvm
from .options import TILE_MOVES
from .tiles import divisors, perfect_tilings

# Compute-location indices beyond this are never probed: they index loops of the consumer's
# loop nest, which is far shallower for every MetaSchedule design space.
_MAX_COMPUTE_LOCATION = 48
# The lowest compute location: -2 inlines the block, -1 computes it at the root.
_MIN_COMPUTE_LOCATION = -2
# Parallel/vectorize limits are varied up to at least this value (MetaSchedule's CPU default is
# num_cores * 16 for parallel and 64 for vectorize).
_MIN_ANNOTATION_LIMIT = 64


@dataclass(frozen=True)
class Coordinate:
    """One tunable decision of a trace.

    Parameters
    ----------
    inst_index : int
        Position of the instruction in the simplified trace.
    kind : str
        The instruction kind (``SamplePerfectTile``, ``Annotate``...).
    values : Tuple[Any, ...]
        The valid values, in the order the descent walks them.
    factor : int
        For a tile split into factors, which factor this coordinate holds (1 for the second
        outermost, up to n - 1 for the innermost; the outermost factor is what is left of the
        loop extent); -1 for a coordinate that holds a whole decision.
    """

    inst_index: int
    kind: str
    values: tuple[Any, ...]
    factor: int = -1


def _annotation_values(current: int) -> tuple[int, ...]:
    limit = max(current, _MIN_ANNOTATION_LIMIT)
    values = {current}
    power = 1
    while power <= limit:
        values.add(power)
        power *= 2
    return tuple(sorted(values))


class DecisionSpace:
    """Coordinates of a trace's decisions, and the replay of points into schedules.

    Parameters
    ----------
    mod : IRModule
        The task's module (unscheduled).
    trace : Trace
        A trace of a schedule of ``mod`` (post-processing instructions are dropped).
    postprocs : Sequence[Postproc]
        The space generator's postprocessors, already initialised with the tune context.
    seed : int
        Seed of the schedules replayed (replays fix every decision, so it only matters to
        postprocessors that sample).
    tile_moves : str
        ``"factor"``: every inner factor of a ``SamplePerfectTile`` is a coordinate over the
        divisors of the loop extent, and the outermost factor takes what is left (a move scales
        one tile level up or down by one divisor step; points whose inner factors do not divide
        the extent are invalid). ``"transfer"``: the same coordinates, and every two inner
        factors of one tile form a pair (:attr:`pairs`) that the descent also moves in
        opposite directions. ``"tiling"``: the whole tiling is one coordinate over all valid
        tilings in lexicographic order (the split-knob order of AutoTVM's droplet).
    """

    def __init__(
        self,
        mod: _tvm.IRModule,
        trace: _tvm.Trace,
        postprocs: Sequence[_tvm.Postproc],
        seed: int = 0,
        tile_moves: str = "factor",
    ) -> None:
        if tile_moves not in TILE_MOVES:
            raise ValueError(f"tile_moves must be one of {TILE_MOVES}, got {tile_moves!r}")
        self.mod = mod
        self.postprocs = list(postprocs)
        self.seed = seed
        self.tile_moves = tile_moves
        # Replays start from copies of this one (see _tvm.reseeded_copy).
        self._unscheduled = _tvm.traced_schedule(mod, seed)
        trace = trace.simplified(remove_postproc=True)
        self.insts = list(trace.insts)
        self.decisions = dict(trace.decisions.items())
        location_values = self._probe_compute_locations(trace)
        coords: list[Coordinate] = []
        origin: list[int] = []
        # instruction index -> (loop extent, number of factors, coordinate index of each factor)
        self._tiles: dict[int, tuple[int, int, dict[int, int]]] = {}
        for index, inst in enumerate(self.insts):
            if tile_moves != "tiling" and inst.kind.name == "SamplePerfectTile":
                self._add_factor_coordinates(index, inst, coords, origin)
                continue
            values, current = self._values_of(inst, location_values)
            if values is None or len(values) < 2 or current not in values:
                continue
            coords.append(Coordinate(index, inst.kind.name, values))
            origin.append(values.index(current))
        self.coordinates: tuple[Coordinate, ...] = tuple(coords)
        self.origin: tuple[int, ...] = tuple(origin)
        # Coordinate pairs of two inner levels of one tiling, for Droplet(pairs=...).
        self.pairs: tuple[tuple[int, int], ...] = ()
        if tile_moves == "transfer":
            self.pairs = tuple(
                pair
                for _, _, slots in self._tiles.values()
                for pair in itertools.combinations(sorted(slots.values()), 2)
            )

    def _add_factor_coordinates(
        self, index: int, inst: _tvm.Instruction, coords: list, origin: list
    ) -> None:
        if inst not in self.decisions:
            return
        factors = [_tvm.int_value(x) for x in self.decisions[inst]]
        extent = 1
        for factor in factors:
            extent *= factor
        max_innermost = _tvm.int_value(list(inst.attrs)[1])
        choices = divisors(extent)
        slots: dict[int, int] = {}
        for position in range(1, len(factors)):
            values = choices
            if position == len(factors) - 1 and max_innermost > 0:
                values = [d for d in choices if d <= max_innermost]
            if len(values) < 2:
                continue
            slots[position] = len(coords)
            coords.append(Coordinate(index, inst.kind.name, tuple(values), position))
            origin.append(values.index(factors[position]))
        if slots:
            self._tiles[index] = (extent, len(factors), slots)

    def is_valid(self, point: Sequence[int]) -> bool:
        """Whether every tile's inner factors at ``point`` divide its loop extent."""
        return self._tile_factors(point) is not None

    def _tile_factors(self, point: Sequence[int]) -> dict[int, list[int]] | None:
        tiles = {}
        for index, (extent, n_factors, slots) in self._tiles.items():
            current = [_tvm.int_value(x) for x in self.decisions[self.insts[index]]]
            inner = 1
            for position in range(1, n_factors):
                if position in slots:
                    slot = slots[position]
                    current[position] = self.coordinates[slot].values[point[slot]]
                inner *= current[position]
            if extent % inner:
                return None
            current[0] = extent // inner
            tiles[index] = current
        return tiles

    # ----------------------------------------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of valid values of every coordinate."""
        return tuple(len(c.values) for c in self.coordinates)

    def every_point(self, limit: int) -> list[tuple[int, ...]] | None:
        """Every valid point of the space, or ``None`` when its box holds more than ``limit``."""
        if math.prod(self.sizes) > limit:
            return None
        return [p for p in itertools.product(*map(range, self.sizes)) if self.is_valid(p)]

    def trace_of(self, point: Sequence[int]) -> _tvm.Trace:
        """The trace whose decisions are the values at ``point`` (which must be valid)."""
        tiles = self._tile_factors(point)
        if tiles is None:
            raise ValueError(f"point {tuple(point)} has tile factors that do not divide the loop")
        insts = list(self.insts)
        decisions = dict(self.decisions)
        for index, factors in tiles.items():
            decisions[insts[index]] = factors
        for coord, index in zip(self.coordinates, point):
            value = coord.values[index]
            inst = insts[coord.inst_index]
            if coord.factor >= 0:
                continue  # set above, with the whole tile
            if coord.kind == "Annotate":
                insts[coord.inst_index] = _tvm.with_annotation_value(inst, value)
            else:
                decisions[inst] = list(value) if isinstance(value, tuple) else value
        return _tvm.Trace(insts, decisions)

    def replay(self, point: Sequence[int]) -> _tvm.Schedule | None:
        """A post-processed schedule for ``point``, or ``None`` if TVM rejects it."""
        if not self.is_valid(point):
            return None
        return self.replay_trace(self.trace_of(point))

    def replay_trace(self, trace: _tvm.Trace) -> _tvm.Schedule | None:
        """A post-processed schedule for a trace from :meth:`trace_of`, or ``None``.

        Callers that key programs by the printed trace (two points, of this space or of another
        over the same module, with the same text replay to the same program; printing costs
        about a tenth of a replay) build the trace once and replay it here.
        """
        sch = _tvm.reseeded_copy(self._unscheduled, self.seed)
        try:
            trace.apply_to_schedule(sch, remove_postproc=True)
            # Mark where the postprocessors' own instructions begin, as TVM's strategies do:
            # whoever replays the recorded trace (EvolutionarySearch seeding from the database,
            # a later run) drops them and runs the postprocessors afresh. Without the mark the
            # replay re-runs them on top of their own output, and TVM fails on it.
            sch.enter_postproc()
            for postproc in self.postprocs:
                if not postproc.apply(sch):
                    return None
        except Exception:  # any TVM error makes this one candidate invalid, not the search
            return None
        return sch

    # ----------------------------------------------------------------------------------------
    def _values_of(
        self, inst: _tvm.Instruction, location_values: dict[int, tuple[int, ...]]
    ) -> tuple[tuple[Any, ...] | None, Any]:
        kind = inst.kind.name
        attrs = list(inst.attrs)
        if kind == "Annotate":
            key = str(attrs[0]) if attrs else ""
            value = list(inst.inputs)[1]
            # An IntImm in a trace recorded in this process, a plain int in one read back from
            # a database's JSON: both are the annotation's limit.
            if key in (_tvm.PARALLEL_ANNOTATION, _tvm.VECTORIZE_ANNOTATION) and isinstance(
                value, (int, _tvm.IntImm)
            ):
                current = _tvm.int_value(value)
                return _annotation_values(current), current
            return None, None
        if inst not in self.decisions:
            return None, None
        decision = self.decisions[inst]
        if kind in ("SamplePerfectTile", "SamplePartitionedTile"):
            current = tuple(_tvm.int_value(x) for x in decision)
            extent = 1
            for factor in current:
                extent *= factor
            if kind == "SamplePerfectTile":
                n_splits, max_innermost = (_tvm.int_value(a) for a in attrs[:2])
                values = perfect_tilings(extent, n_splits, max_innermost)
            else:
                n_splits, partition_pos, innerpart = (_tvm.int_value(a) for a in attrs[:3])
                values = perfect_tilings(extent, n_splits, -1, partition_pos, innerpart)
            return values, current
        if kind == "SampleCategorical":
            return tuple(range(len(attrs[0]))), _tvm.int_value(decision)
        if kind == "SampleComputeLocation":
            index = self.insts.index(inst)
            return location_values.get(index), _tvm.int_value(decision)
        return None, None

    def _probe_compute_locations(self, trace: _tvm.Trace) -> dict[int, tuple[int, ...]]:
        """Valid values of every ``SampleComputeLocation``, found by asking TVM.

        TVM maps a location it does not offer to the nearest valid one below it (to the root,
        -1, when none is), so a value is valid exactly when a schedule keeps it. Asking from
        the top down, each answer is the next valid value: one probe per valid value, where
        asking every value up to the bound took one per possible loop (this runs on every
        restart of a descent).
        """
        kinds = {inst.kind.name for inst in self.insts}
        if "SampleComputeLocation" not in kinds:
            return {}
        sch = _tvm.reseeded_copy(self._unscheduled, self.seed)
        found: dict[int, tuple[int, ...]] = {}
        position = {id_: i for i, id_ in enumerate(map(_tvm.object_handle, self.insts))}

        def kept(block: Any, value: int) -> int:
            probe = sch.copy()
            probe.sample_compute_location(block, decision=value)
            return _tvm.int_value(probe.trace.decisions[probe.trace.insts[-1]])

        def provider(inst: Any, inputs: Any, attrs: Any, decision: Any) -> Any:
            if inst.kind.name == "SampleComputeLocation":
                valid = []
                value = _MAX_COMPUTE_LOCATION - 1
                while value >= _MIN_COMPUTE_LOCATION:
                    answer = kept(inputs[0], value)
                    if answer > value:  # the root fallback above a value below every location
                        break
                    valid.append(answer)
                    value = answer - 1
                found[position[_tvm.object_handle(inst)]] = tuple(reversed(valid))
            return decision

        try:
            trace.apply_to_schedule(sch, remove_postproc=True, decision_provider=provider)
        except Exception:  # an unreplayable trace simply offers no location coordinate
            return {}
        return found
