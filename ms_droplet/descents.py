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
"""The descent phase: droplet descents over the decisions of measured traces.

:class:`Descents` keeps one :class:`~ms_droplet.droplet.Droplet` per starting program (a restart
never takes over a descent that still waits for results, so no neighbourhood is abandoned
half-measured), turns the points they propose into candidates (replayed once per distinct trace,
invalid and already-known programs filtered out, the rest ranked by the cost model), and hands
each result back to the descent that proposed it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _tvm
from .adapters.cost_model import CostModelRanker
from .bookkeeping import DATABASE, DESCENT, RESTART, WARM_START, Measured, TaskStats
from .droplet import Droplet, Point
from .space import DecisionSpace


@dataclass
class Descent:
    """A decision space, the droplet walking it, and how its start was chosen."""

    space: DecisionSpace
    droplet: Droplet
    phase: str
    converged: bool = False
    # The design space (sketch) it walks (see _tvm.trace_structure); only restart_other_spaces
    # asks for it, so it stays None without that option.
    structure: str | None = None


@dataclass
class Proposal:
    """A descent's candidate: the replayed schedule of one point."""

    candidate: _tvm.MeasureCandidate
    module_hash: int
    descent: Descent
    point: Point
    # The descent's centre measured again, to judge its neighbours in the same batch.
    control: bool = False


class Descents:
    """Every descent of one task.

    Parameters
    ----------
    mod : IRModule
        The task's module.
    postprocs : List[Postproc]
        The space generator's postprocessors.
    options : Dict[str, Any]
        Resolved DropletSearch options.
    seed : int
        Seed of the first descent (each later one adds its index).
    ranker : CostModelRanker
        Orders replayed neighbours.
    stats : TaskStats
        The task's counters, updated here.
    log : Callable[[str], None]
        Writes a line to the task's log.
    """

    def __init__(
        self,
        mod: _tvm.IRModule,
        postprocs: list[_tvm.Postproc],
        options: dict[str, Any],
        seed: int,
        ranker: CostModelRanker,
        stats: TaskStats,
        log: Callable[[str], None],
    ) -> None:
        self.mod = mod
        self.postprocs = postprocs
        self.options = options
        self.seed = seed
        self.ranker = ranker
        self.stats = stats
        self.log = log
        self.descents: list[Descent] = []
        self.active: Descent | None = None
        # Programs a descent started from, or stood on: no later descent starts there.
        self.started: set[int] = set()
        # Printed trace -> structural hash of its program (None: TVM rejected it), over all
        # descents of the task: descents from different starts meet on the same traces.
        self.replayed: dict[str, int | None] = {}
        # Program hash -> the design space its trace comes from (restart_other_spaces; None:
        # TVM could not simplify the trace).
        self.structures: dict[int, str | None] = {}

    @property
    def waiting(self) -> bool:
        """Whether the active descent waits for results of candidates already proposed."""
        return self.active is not None and bool(self.active.droplet.pending)

    def propose(
        self,
        count: int,
        batch_hashes: set[int],
        seen: dict[int, list[float] | None],
        measured: dict[int, Measured],
        with_control: bool = False,
    ) -> list[Proposal]:
        """Up to ``count`` new candidates; fewer when no descent can propose more now.

        A point whose program is in ``seen`` (measured, failed or issued) or already in the
        batch is answered from what is known instead of being measured again. With
        ``with_control``, the first candidate is the active descent's centre, measured again.
        """
        batch: list[Proposal] = []
        while len(batch) < count:
            if self.active is None or not self.active.droplet.can_propose:
                if not self._switch(measured):
                    break
            if with_control and count - len(batch) >= 2:
                with_control = False
                control = self._control(self.active)
                if control is not None:
                    batch.append(control)
            want = count - len(batch)
            descent = self.active
            pool = want * self.options["rank_pool"] if self._model_ranks() else want
            points = descent.droplet.ask(pool)
            if not points:
                continue
            valid: list[tuple[Point, _tvm.Schedule, int]] = []
            for point in points:
                program_hash, sch = self._identify(descent.space, point)
                if program_hash is None:
                    self.stats.invalid += 1
                    descent.droplet.reject(point)
                    continue
                if program_hash in seen or program_hash in batch_hashes:
                    # Another point (or an earlier run) already stands for this program: reuse
                    # its result rather than measuring the same program twice.
                    self.stats.duplicates += 1
                    known = seen.get(program_hash)
                    if known:
                        descent.droplet.tell(point, known)
                    else:
                        descent.droplet.reject(point)
                    continue
                if sch is None:
                    # Replayed before but never measured (ranked out of an earlier batch).
                    self.stats.replays += 1
                    sch = descent.space.replay(point)
                    if sch is None:
                        descent.droplet.reject(point)
                        continue
                batch_hashes.add(program_hash)
                valid.append((point, sch, program_hash))
            if len(valid) > want:
                order = self.ranker.order([sch for _, sch, _ in valid])
                valid = [valid[i] for i in order]
                descent.droplet.give_back([point for point, _, _ in valid[want:]])
                for _, _, program_hash in valid[want:]:
                    batch_hashes.discard(program_hash)
                valid = valid[:want]
            batch += [
                Proposal(_tvm.make_candidate(sch), program_hash, descent, point)
                for point, sch, program_hash in valid
            ]
        return batch

    def tell(self, proposal: Proposal, samples: list[float] | None) -> bool:
        """Hand a result to the descent that proposed it; ``True`` if the descent moved."""
        moved = proposal.descent.droplet.tell(proposal.point, samples)
        if moved:
            self.stats.moves += 1
            # The descent stands on this program now: no later restart from it.
            self.started.add(proposal.module_hash)
        return moved

    def tell_control(self, proposal: Proposal, samples: list[float] | None) -> None:
        """Hand a fresh measurement of a centre to its descent, before its neighbours'."""
        if proposal.descent.droplet.refresh_centre(proposal.point, samples):
            self.stats.controls += 1

    def centre_latencies(self) -> list[float]:
        """Mean run time of every descent's centre."""
        return [d.droplet.centre_latency for d in self.descents if d.droplet.centre is not None]

    def start_from(self, record: Measured) -> bool:
        """Make a new descent from ``record`` the active one; ``False`` if it cannot descend.

        Called between batches, when no descent waits for results: the descent it replaces
        stays resumable.
        """
        if record.module_hash in self.started:
            return False
        return self._start({record.module_hash: record})

    def any_converged(self) -> bool:
        """Whether some descent has converged."""
        return self.stats.descents_converged > 0

    def drop_active(self) -> None:
        """Forget the active descent (before a return to exploration)."""
        self.active = None

    # ----------------------------------------------------------------------------------------
    def model_learned(self) -> bool:
        """Whether the task's cost model has learned, asked of the active descent's centre.

        The ranker asks the model at most once a batch; without an active descent (nothing to
        ask of), only an earlier answer counts.
        """
        if not self.ranker.active:
            return False
        if self.ranker.learned or self.ranker.asked:
            return self.ranker.learned
        descent = self.active
        if descent is None or descent.droplet.centre is None:
            return False
        sch = descent.space.replay(descent.droplet.centre)
        return sch is not None and self.ranker.learned_on(sch)

    def _model_ranks(self) -> bool:
        """Whether the cost model picks this batch's neighbours (``rank_pool`` > 1).

        Only a model that has learned does: a guessing one would only shuffle the descent's
        order, and the extra replays would be wasted.
        """
        return self.options["rank_pool"] >= 2 and self.model_learned()

    def _control(self, descent: Descent) -> Proposal | None:
        """The descent's centre as a candidate to measure again, or ``None``."""
        centre = descent.droplet.centre
        sch = None if centre is None else descent.space.replay(centre)
        if sch is None:
            return None
        candidate = _tvm.make_candidate(sch)
        return Proposal(candidate, _tvm.module_hash(sch.mod), descent, centre, control=True)

    def _identify(
        self, space: DecisionSpace, point: Point
    ) -> tuple[int | None, _tvm.Schedule | None]:
        """The program hash at ``point`` (None: invalid), and its schedule if it was replayed.

        A trace replayed before gives its program's hash without a second replay (and without a
        schedule).
        """
        if not space.is_valid(point):
            return None, None
        trace = space.trace_of(point)
        text = str(trace)
        if text in self.replayed:
            self.stats.replays_saved += 1
            return self.replayed[text], None
        self.stats.replays += 1
        sch = space.replay_trace(trace)
        program_hash = None if sch is None else _tvm.module_hash(sch.mod)
        self.replayed[text] = program_hash
        return program_hash, sch

    def _switch(self, measured: dict[int, Measured]) -> bool:
        """Make a descent with something to propose active; ``False`` if none can be.

        A descent that only waits for results of the batch being filled is parked, and the
        batch is filled from another one (an earlier descent that can still propose, the
        fastest first, else a new descent from the next-best measured program) rather than sent
        short: every batch costs a round of builds and runs however few candidates it holds.
        """
        previous = self.active
        restart_policy = self.options["on_converge"] == "restart"
        if previous is not None:
            if previous.droplet.converged and not previous.converged:
                previous.converged = True
                self.stats.descents_converged += 1
            if not restart_policy:
                # Only the restart policy runs several descents: the others let this batch go
                # out short while the descent waits, or act on convergence (the task decides).
                if previous.converged:
                    self.active = None
                return False
        self.active = None
        resumable = [d for d in self.descents if d is not previous and d.droplet.can_propose]
        if resumable:
            self.active = min(resumable, key=lambda d: d.droplet.centre_latency)
            return True
        return self._start(measured)

    def _structure(self, record: Measured) -> str | None:
        """The design space ``record`` was sampled from (printed once per program).

        ``None`` when TVM cannot simplify its trace: such a program is skipped by the start
        itself (DecisionSpace reads the same trace), so it must not stop the ordering.
        """
        if record.module_hash not in self.structures:
            try:
                structure: str | None = _tvm.trace_structure(record.trace)
            except Exception:  # a trace TVM cannot simplify: its sketch is unknown
                structure = None
            self.structures[record.module_hash] = structure
        return self.structures[record.module_hash]

    def _start(self, measured: dict[int, Measured]) -> bool:
        """Begin a descent from the fastest measured program not started from yet.

        With ``restart_other_spaces``, a restart tries the programs of design spaces no descent
        has walked first.
        """
        other_spaces = self.options["restart_other_spaces"]
        order = sorted(measured.values(), key=lambda m: m.latency)
        if other_spaces and self.descents:
            walked = {d.structure for d in self.descents}
            # Stable: by latency within the unwalked spaces, then within the walked ones.
            order.sort(key=lambda m: self._structure(m) in walked)
        for record in order:
            if record.module_hash in self.started:
                continue
            self.started.add(record.module_hash)
            try:
                space = DecisionSpace(
                    self.mod, record.trace, self.postprocs, self.seed, self.options["tile_moves"]
                )
            except Exception as err:  # a trace this version cannot read: skip it, keep tuning
                self.log(f"droplet: cannot descend from a schedule: {err}")
                continue
            if not space.coordinates:
                self.log(
                    f"droplet: the schedule of {record.latency * 1e6:.2f} us has no decisions to "
                    f"tune: nothing to descend from it"
                )
                continue
            if record.phase == DATABASE:
                phase = WARM_START
            else:
                phase = RESTART if self.descents else DESCENT
            droplet = Droplet(
                space.sizes,
                significance=self.options["significance"],
                min_improvement=self.options["min_improvement"],
                seed=self.seed + len(self.descents),
                pairs=space.pairs,
                combine=self.options["combine_moves"],
            )
            droplet.restart(space.origin, record.samples)
            descent = Descent(space, droplet, phase)
            if other_spaces:
                descent.structure = self._structure(record)
            self.descents.append(descent)
            self.active = descent
            self.stats.descents_started += 1
            self.log(
                f"droplet: descent #{self.stats.descents_started} ({phase}) from a schedule of "
                f"{record.latency * 1e6:.2f} us over {len(space.coordinates)} decisions"
            )
            return True
        return False
