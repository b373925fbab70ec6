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
"""The options of :class:`~ms_droplet.strategy.DropletSearch`, declared once.

Each option's name, default, meaning and check live in :data:`OPTIONS`; the same table validates
what a user passes and writes the strategy's docstring, so the two cannot drift apart.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Option:
    """One user-facing option: its name, default, meaning and validity check."""

    name: str
    default: Any
    doc: str
    check: Callable[[Any], bool]
    expects: str

    def fresh_default(self) -> Any:
        """The default, a dict default as a new dict (each strategy may amend its own)."""
        return dict(self.default) if isinstance(self.default, Mapping) else self.default


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


ON_CONVERGE = ("restart", "explore", "stop")
TILE_MOVES = ("factor", "tiling", "transfer")
STALLED_TURNS = ("alternate", "explorer")

OPTIONS: tuple[Option, ...] = (
    Option(
        "explore_trials",
        32,
        "Most measured trials the exploration phase (TVM's EvolutionarySearch) takes before "
        "the descent starts; without measured programs to start from, the exploration takes "
        "at least one batch. Programs the database already holds for the task on its target "
        "count towards it (warm start: an earlier run explored them), so a resumed or "
        "repeated run explores only what is missing and descends from the best record. "
        "Measured on six CPU kernels, two seeds, 128 trials: 32 and 64 gave the same kernels "
        "within noise, 32 in about 0.7 of evolutionary search's time against 0.8. Under "
        "tune_relax with 16 candidates a batch, 16 (so that a task given two batches descends "
        "in its second) gave the same compiled models as 32 (0.998 and 0.996 of their latency "
        "on a transformer and a CNN).",
        lambda v: _is_int(v) and v >= 0,
        "an int >= 0",
    ),
    Option(
        "explore_fraction",
        0.5,
        "Largest share of the task's trial budget the exploration phase may take, so that small "
        "budgets still leave room for the descent.",
        lambda v: isinstance(v, (int, float)) and 0.0 <= v <= 1.0,
        "a number in [0, 1]",
    ),
    Option(
        "explore_share",
        0.0,
        "Share of every batch after the exploration phase that still goes to TVM's explorer "
        "(rounded down; 0 descends only). An explored program faster than the descent's centre "
        "becomes the start of a new descent at once, so that the descent can leave a basin "
        "that its one-decision moves cannot: a better structure found by the explorer (other "
        "compute locations together, another unrolling) is where descending pays. Off by "
        "default: at 0.25, mixed results on two Relax models and six kernels, for 10 - 30% "
        "more tuning time.",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v < 1.0,
        "a number in [0, 1)",
    ),
    Option(
        "sample_while_guessing",
        True,
        "While the cost model still guesses (two predictions of one program differ: TVM's "
        "XGBModel scores at random until it has seen num_warmup_samples, 100, measurements), "
        "explore with TVM's ReplayTrace (random programs of the design space) rather than "
        "EvolutionarySearch, whose genetic search keeps the programs the model scores best and "
        "so picks random programs too, after seconds of evolution a batch; from the first "
        "batch the model has learned, EvolutionarySearch explores as before.",
        lambda v: isinstance(v, bool),
        "True or False",
    ),
    Option(
        "adaptive_explore",
        True,
        "Once the cost model has learned, give each batch after the exploration phase to TVM's "
        "explorer (its model-guided genetic search) or to the descent, whichever gained more "
        "per second over its latest two batches (a batch gains the share by which its best "
        "beats the task's best before it by more than min_improvement; its seconds run from "
        "choosing it to its results, so that a genetic search's evolution counts against it); "
        "the explorer gets one batch to show its rate, and when neither gains they take turns. "
        "An explored program faster than every descent's centre becomes the next descent's "
        "start. A descent moves one decision at a time and stays in the basin it started in; a "
        "learned model's search jumps between structures: on a CNN's 3x3 convolutions the "
        "explorer gained more per batch, on a transformer's matmul the descent. Without a "
        "learned model (a one-kernel run of 128 trials in batches of 32 never has one) it "
        "changes nothing.",
        lambda v: isinstance(v, bool),
        "True or False",
    ),
    Option(
        "explorer_sees_descents",
        False,
        "TVM's explorer (EvolutionarySearch) seeds each genetic search with the fastest "
        "programs of its database view; with this on, that view holds every program the task "
        "measured, the descents' too, so the explorer starts from the descents' best; off, it "
        "holds what the exploration measured (and what the database knew before), as in "
        "stock MetaSchedule, where the explorer's database holds only its own programs.",
        lambda v: isinstance(v, bool),
        "True or False",
    ),
    Option(
        "stalled_turns",
        "explorer",
        "With adaptive_explore, who gets the batches while neither the explorer nor the "
        "descent gained in its latest batches: 'alternate' gives them turns; 'explorer' gives "
        "them to the explorer, as evolutionary search would spend them, until one gains, and a "
        "descent started from a program the explorer found faster than every descent's centre "
        "gets the next batch.",
        lambda v: v in STALLED_TURNS,
        f"one of {STALLED_TURNS}",
    ),
    Option(
        "on_converge",
        "restart",
        "What to do when a descent converges and budget remains: 'restart' from the next-best "
        "distinct measured schedule (then explore once none is left), 'explore' for another "
        "batch before descending again from the best, or 'stop' to end the task (return None) "
        "and hand its time to the other tasks.",
        lambda v: v in ON_CONVERGE,
        f"one of {ON_CONVERGE}",
    ),
    Option(
        "restart_other_spaces",
        False,
        "A restart goes first to the fastest measured program of a design space (a sketch: "
        "MetaSchedule generates several per task) that no descent has walked yet, and only then "
        "to the next-best program of one already walked. A descent changes decisions, never "
        "the sketch, so without it every descent of a task can stay in the sketch the first "
        "start happened to come from. Off by default: on six CPU kernels, four seeds, 0.981 of "
        "the kernel latency without it (13 of 24 runs faster, Wilcoxon p 0.55), 1.007 on a "
        "Relax transformer (four seeds) and 1.019 on a Relax CNN (two seeds).",
        lambda v: isinstance(v, bool),
        "True or False",
    ),
    Option(
        "significance",
        0.25,
        "Level of the one-sided Welch t-test that accepts a faster neighbour as the new best "
        "(applies when the runner reports two or more repeats per candidate). The repeats of "
        "one measurement share a moment of the machine, so they understate the noise between "
        "measurements, and a strict level rejects real gains: 0.25 beat 0.05 by about 2% on "
        "six CPU kernels, two seeds.",
        lambda v: isinstance(v, (int, float)) and 0.0 < v < 1.0,
        "a number in (0, 1)",
    ),
    Option(
        "min_improvement",
        0.01,
        "Smallest relative speed-up that accepts a neighbour as the new best; guards against "
        "noise when the runner reports a single repeat.",
        lambda v: isinstance(v, (int, float)) and 0.0 <= v < 1.0,
        "a number in [0, 1)",
    ),
    Option(
        "control",
        False,
        "Measure the descent's centre again in every descent batch and judge that batch's "
        "neighbours against this fresh measurement, so that a move compares programs measured "
        "in the same moment rather than across the machine's drift between batches; costs one "
        "trial a batch, and records the centre program more than once. Off by default: no gain "
        "on six CPU kernels, two seeds, for 6% more tuning time.",
        lambda v: isinstance(v, bool),
        "True or False",
    ),
    Option(
        "combine_moves",
        True,
        "Once a descent batch's results are in, first measure the centre with the other moves "
        "of that batch that were faster than the point they moved from added to it (each, and "
        "all at once): a batch measures every move from the centre at the same moment, and "
        "taking the ones that paid off one per batch spends a batch per move. On six CPU "
        "kernels, two seeds, 128 trials, all re-measured together: even with it off overall "
        "(three tuning replicas at 0.944 - 0.997 of evolutionary search at the same budget, "
        "against 0.966), better on the depthwise convolution where the descent lost most "
        "(0.77 - 1.01 against 1.05), worse on a batched GEMM (1.05 - 1.12 against 1.01), for "
        "the same tuning time.",
        lambda v: isinstance(v, bool),
        "True or False",
    ),
    Option(
        "tile_moves",
        "factor",
        "How a tile decision moves: 'factor' scales one tile level by one divisor step of the "
        "loop extent (the outermost level absorbs the change); 'transfer' adds moves that pass "
        "a divisor step from one inner level of a tiling to another (one level up, the other "
        "down), so that a factor can reach the innermost level (a wider vector) in one move "
        "rather than in moves that must each pay off (worse on six CPU kernels, two seeds: "
        "1.027 of evolutionary search against 0.945 for 'factor'); 'tiling' steps through "
        "the valid tilings in lexicographic order, as AutoTVM's droplet walks split knobs.",
        lambda v: v in TILE_MOVES,
        f"one of {TILE_MOVES}",
    ),
    Option(
        "rank_pool",
        4,
        "With a cost model that has learned (two predictions of one program agree; TVM's "
        "XGBModel guesses at random until it has seen num_warmup_samples, 100, measurements), "
        "replay this many times more neighbours than a batch holds and measure the ones the "
        "model ranks best; 1 measures neighbours in the descent's order, as does any value "
        "while the model guesses. Under tune_relax one model learns from every task: on two "
        "Relax models, two seeds, 4 against 1 gave the faster kernel in 7 of the 9 task runs "
        "that descended, the CNN compiled to 1.08 of evolutionary search's latency against "
        "1.16, the transformer to 0.99 against 0.98; 8 against 4 (four and two seeds) left the "
        "transformer as it was (1.000 of 4's latency) and slowed the CNN (1.19). A one-kernel "
        "run of 128 trials in batches of 32 never ranks: its model has seen 96 measurements "
        "when its last batch is chosen.",
        lambda v: _is_int(v) and v >= 1,
        "an int >= 1",
    ),
    Option(
        "seed",
        None,
        "Seed of the descent's own choices; None takes the TuneContext's rand_state.",
        lambda v: v is None or _is_int(v),
        "None or an int",
    ),
    Option(
        "evolutionary",
        MappingProxyType({"population_size": 128}),
        "Keyword arguments for the exploration's EvolutionarySearch (population_size, "
        "eps_greedy, ...), over these defaults; None keeps TVM's (a population of 512). A "
        "call of the genetic search evolves its population through a learned model's "
        "predictions, so its cost grows with the population: once the model has learned, "
        "those calls were most of droplet's tuning time on a Relax CNN (26 - 39 s each on "
        "two cores). On two Relax models, two seeds, a population of 128 against 512 gave "
        "the CNN 0.911 of evolutionary search's latency against 0.921 in 0.505 of its "
        "tuning time against 0.673, the transformer 1.075 against 1.055 in 0.590 against "
        "0.708 (latencies within run-to-run noise). A one-kernel run of 128 trials in batches "
        "of 32 never has a learned model, so it samples instead (sample_while_guessing).",
        lambda v: v is None or isinstance(v, Mapping),
        "None or a dict",
    ),
)

_BY_NAME = {option.name: option for option in OPTIONS}


def resolve_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """Check user options against :data:`OPTIONS` and fill in the defaults.

    Raises
    ------
    ValueError
        On an unknown option name (with the closest known name) or an invalid value.
    """
    unknown = [name for name in given if name not in _BY_NAME]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, _BY_NAME, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ValueError(
            f"Unknown DropletSearch option '{name}'.{hint} "
            f"Known options: {', '.join(sorted(_BY_NAME))}."
        )
    resolved = {option.name: option.fresh_default() for option in OPTIONS}
    for name, value in given.items():
        option = _BY_NAME[name]
        if not option.check(value):
            raise ValueError(
                f"Invalid value {value!r} for DropletSearch option '{name}': "
                f"expected {option.expects}."
            )
        if isinstance(value, Mapping):
            # A dict of keyword arguments amends the default's, so that passing one setting
            # keeps the others.
            resolved[name] = {**(resolved[name] or {}), **value}
        else:
            resolved[name] = value
    return resolved


def options_docstring() -> str:
    """Numpydoc ``Parameters`` entries for every option."""
    lines = []
    for option in OPTIONS:
        lines.append(f"{option.name} : {option.expects}, default {option.fresh_default()!r}")
        lines.append(f"    {option.doc}")
    return "\n".join(lines)
