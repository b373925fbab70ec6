"""DropletSearch driven through MetaSchedule's search-strategy interface on real traces."""

import pytest
import tvm
from conftest import (
    drive,
    recording_model,
    sampled_candidates,
    synthetic_latency,
    te_module,
    tile_latency,
    tune_context,
)
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.schedule import Schedule
from tvm.script import tirx as T

from ms_droplet import DropletSearch, _tvm

# fmt: off


@tvm.script.ir_module
class Matmul:
    @T.prim_func(s_tir=True)
    def main(a: T.handle, b: T.handle, c: T.handle) -> None:
        T.func_attr({"global_symbol": "main"})
        A = T.match_buffer(a, (32, 32), "float32")
        B = T.match_buffer(b, (32, 32), "float32")
        C = T.match_buffer(c, (32, 32), "float32")
        for i, j, k in T.grid(32, 32, 32):
            with T.sblock("matmul"):
                vi, vj, vk = T.axis.remap("SSR", [i, j, k])
                with T.init():
                    C[vi, vj] = 0.0
                C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj]
# fmt: on


def _schedule_matmul(sch: Schedule):
    block = sch.get_sblock("matmul")
    i, j, k = sch.get_loops(block=block)
    i_0, i_1, i_2, i_3 = sch.split(i, sch.sample_perfect_tile(i, n=4))
    j_0, j_1, j_2, j_3 = sch.split(j, sch.sample_perfect_tile(j, n=4))
    k_0, k_1 = sch.split(k, sch.sample_perfect_tile(k, n=2))
    sch.reorder(i_0, j_0, i_1, j_1, k_0, i_2, j_2, k_1, i_3, j_3)


def _schedule_matmul_tiny(sch: Schedule):
    block = sch.get_sblock("matmul")
    i, j, _ = sch.get_loops(block=block)
    sch.split(i, sch.sample_perfect_tile(i, n=2))
    sch.split(j, sch.sample_perfect_tile(j, n=2))


def test_replay_func_style_batches_without_database_or_cost_model():
    """TVM's test_meta_schedule_replay_func protocol, with DropletSearch."""
    context = ms.TuneContext(
        mod=Matmul,
        num_threads=1,
        space_generator=ms.space_generator.ScheduleFn(sch_fn=_schedule_matmul, postprocs=[]),
        search_strategy=DropletSearch(),
    )
    strategy = context.search_strategy
    spaces = context.space_generator.generate_design_space(context.mod)
    strategy.pre_tuning(max_trials=20, num_trials_per_iter=7, design_spaces=spaces)
    num_trials_each_iter = []
    candidates = strategy.generate_measure_candidates()
    while candidates is not None:
        num_trials_each_iter.append(len(candidates))
        results = [ms.runner.RunnerResult(run_secs=[0.11, 0.41, 0.54], error_msg=None)] * len(
            candidates
        )
        strategy.notify_runner_results(candidates, results)
        candidates = strategy.generate_measure_candidates()
    strategy.post_tuning()
    assert num_trials_each_iter == [7, 7, 6]


def _evolutionary_setup(seed=1, **options):
    # A small population keeps the exploration quick; the descent does not depend on it.
    evolutionary = {"population_size": 64, "init_min_unmeasured": 8}
    strategy = DropletSearch(explore_trials=16, seed=seed, evolutionary=evolutionary, **options)
    context = tune_context(te_module("GMM", 0), strategy=strategy, seed=seed)
    design_spaces = context.generate_design_space()
    return strategy, context, design_spaces


def test_failures_stay_with_their_candidates_and_the_best_is_right():
    strategy, _, spaces = _evolutionary_setup()
    fail = lambda module_hash: module_hash % 3 == 0  # noqa: E731 - about a third fail
    batches = drive(
        strategy,
        48,
        8,
        spaces,
        ms.database.MemoryDatabase(),
        ms.cost_model.RandomModel(seed=1),
        fail=fail,
    )
    task = strategy.task
    measured = [entry for batch in batches for entry in batch]
    assert len(measured) == 48 and [len(b) for b in batches] == [8] * 6
    # Never the same program twice.
    assert len({h for h, _ in measured}) == len(measured)
    assert any(s is None for _, s in measured), "the test needs some failures"
    assert task.stats.descended > 0 and task.stats.failures == sum(s is None for _, s in measured)
    for module_hash, samples in measured:
        if samples is None:
            assert module_hash not in task.measured
            assert task.seen[module_hash] is None
        else:
            # Each result was recorded against the program it was measured on.
            assert task.measured[module_hash].samples == samples
            assert task.measured[module_hash].latency == pytest.approx(
                synthetic_latency(module_hash)
            )
    best = min(synthetic_latency(h) for h, s in measured if s is not None)
    assert task.best().latency == pytest.approx(best)
    # No descent ever stood on a failed program.
    for descent in task.descents.descents:
        assert descent.droplet.centre_latency is not None
    strategy.post_tuning()


def test_control_measures_the_centre_again_in_every_descent_batch():
    strategy, _, spaces = _evolutionary_setup(control=True)
    batches = drive(
        strategy, 48, 8, spaces, ms.database.MemoryDatabase(), ms.cost_model.RandomModel(seed=1)
    )
    task = strategy.task
    measured_before, descent_batches = set(), 0
    for number, batch in enumerate(batches):
        repeated = [h for h, _ in batch if h in measured_before]
        # Two exploration batches (explore_trials=16), then each batch repeats one program: the
        # centre its neighbours are judged against.
        assert len(repeated) == (1 if number >= 2 else 0), number
        descent_batches += number >= 2
        measured_before.update(h for h, _ in batch)
    assert descent_batches > 0 and task.stats.controls == descent_batches
    assert sum(len(batch) for batch in batches) == 48
    strategy.post_tuning()


class _CountingExplorer:
    """One of TVM's explorers, counting how often it is asked for a batch."""

    def __init__(self, explorer):
        self.explorer, self.calls = explorer, 0

    def generate_measure_candidates(self):
        self.calls += 1
        return self.explorer.generate_measure_candidates()

    def __getattr__(self, name):
        return getattr(self.explorer, name)


def _drive_with_phases(strategy, spaces, max_trials, per_iter, latency, cost_model=None):
    """Run the task as the scheduler does; the phases of every batch, and TVM's explorers.

    The cost model is a guessing ``RandomModel`` unless ``cost_model`` is given. The explorers
    count their calls: the exploration's EvolutionarySearch, and the ReplayTrace it samples
    with while the model guesses (``None`` with ``sample_while_guessing=False``).
    """
    strategy.pre_tuning(
        max_trials,
        per_iter,
        spaces,
        ms.database.MemoryDatabase(),
        cost_model or ms.cost_model.RandomModel(seed=1),
    )
    task = strategy.task
    explorer = task.exploration.explorer = _CountingExplorer(task.exploration.explorer)
    sampler = task.exploration.sampler
    if sampler is not None:
        sampler = task.exploration.sampler = _CountingExplorer(sampler)
    phases = []
    candidates = strategy.generate_measure_candidates()
    while candidates is not None:
        flights = list(task.in_flight)
        phases.append([flight.phase for flight in flights])
        results = [
            ms.runner.RunnerResult(run_secs=[latency(c, f.phase)] * 2, error_msg=None)
            for c, f in zip(candidates, flights)
        ]
        strategy.notify_runner_results(candidates, results)
        candidates = strategy.generate_measure_candidates()
    return phases, explorer, sampler


def test_explore_share_keeps_the_explorer_in_every_descent_batch():
    strategy, _, spaces = _evolutionary_setup(explore_share=0.25)
    phases, explorer, sampler = _drive_with_phases(
        strategy, spaces, 64, 8, lambda candidate, phase: tile_latency(candidate)
    )
    task = strategy.task
    # Two batches of exploration (explore_trials=16), then 2 of every 8 from the explorer.
    assert [p.count("explore") for p in phases] == [8, 8, 2, 2, 2, 2, 2, 2]
    assert task.stats.explored == 28 and task.stats.descended == 36
    # One call of the explorer a batch-size of explored candidates, as EvolutionarySearch
    # itself runs: 28 explored candidates took 4 calls, not one per batch (8); all of them
    # sampled, the model guessing.
    assert sampler.calls == 4 and explorer.calls == 0
    # No program twice.
    assert len(task.seen) == 64
    strategy.post_tuning()


def test_an_explored_program_faster_than_the_centre_starts_a_descent():
    strategy, _, spaces = _evolutionary_setup(explore_share=0.25)
    fast = 1e-5  # far below anything tile_latency gives (>= 1 ms)

    def latency(candidate, phase):
        # The explorer's candidates in the first mixed batch are the fastest programs.
        if phase == "explore" and strategy.task.descents.descents:
            return fast
        return tile_latency(candidate)

    phases, *_ = _drive_with_phases(strategy, spaces, 40, 8, latency)
    task = strategy.task
    assert phases[2].count("explore") == 2
    assert task.stats.descents_started >= 2
    active = task.descents.active
    # The descent that ran last started from an explored program, not from the first centre.
    assert active.droplet.centre_latency == pytest.approx(fast)
    assert active.phase == "restart"
    strategy.post_tuning()


@pytest.mark.parametrize("case", ["guessing", "learns", "option_off"])
def test_the_exploration_samples_while_the_model_guesses(case):
    import numpy as np

    # adaptive_explore off: no batch after the exploration phase goes to the explorer.
    strategy, _, spaces = _evolutionary_setup(
        sample_while_guessing=case != "option_off", adaptive_explore=False
    )
    rng = np.random.default_rng(0)

    def score(candidate):
        # "learns": the model guesses for the first batch and has learned from the second.
        if case == "learns" and strategy.task.issued >= 8:
            return 1.0 / tile_latency(candidate)
        return rng.uniform()

    model = recording_model(score)
    phases, explorer, sampler = _drive_with_phases(
        strategy, spaces, 32, 8, lambda candidate, phase: tile_latency(candidate), model
    )
    task = strategy.task
    # Two batches of exploration (explore_trials=16), then the descent, whoever explored.
    assert [p.count("explore") for p in phases] == [8, 8, 0, 0]
    assert len(task.seen) == 32
    if case == "guessing":
        # ReplayTrace's random samples, and no genetic search over random scores.
        assert sampler.calls == 2 and explorer.calls == 0
        assert task.exploration.sampler is not None
    elif case == "learns":
        # The second batch's sample showed a learned model: it was dropped, and
        # EvolutionarySearch explored from then on.
        assert sampler.calls == 2 and explorer.calls == 1
        assert task.exploration.sampler is None
    else:
        assert sampler is None and explorer.calls == 2
    strategy.post_tuning()


@pytest.mark.parametrize(
    ("learned", "adaptive"), [(True, True), (False, True), (True, False)], ids=str
)
def test_the_explorer_takes_batches_when_the_descent_stops_gaining(learned, adaptive):
    # Ties taking turns, so that the descent gets a batch once the explorer stops gaining; the
    # default, ties to the explorer, is the next test's.
    strategy, _, spaces = _evolutionary_setup(adaptive_explore=adaptive, stalled_turns="alternate")
    per_iter = 8

    def latency(candidate, phase):
        batch = strategy.task.issued // per_iter
        if phase != "explore":
            return 20e-3  # no neighbour ever beats its centre: the descent gains nothing
        # Two batches of exploration (10 ms, then 8: a gain of 20%), then the explorer's
        # batches in the descent phase halve the best twice (4 ms, 2 ms) and then stop gaining.
        return {1: 10e-3, 2: 8e-3, 4: 4e-3, 5: 2e-3}.get(batch, 20e-3)

    # A model whose predictions repeat counts as learned; TVM's RandomModel guesses.
    model = recording_model(lambda c: 1.0 / tile_latency(c)) if learned else None
    phases, *_ = _drive_with_phases(strategy, spaces, 64, per_iter, latency, model)
    task = strategy.task
    explorer_batches = [number for number, p in enumerate(phases, 1) if "explore" in p]
    if learned and adaptive:
        # Once the model has learned, each batch goes to whichever gained more per second over
        # its latest two batches. Batch 3 descends (the descent's first batch) and gains
        # nothing: batch 4 goes to the explorer (not seen yet), which gains 50% and keeps
        # batches 5 (50%), 6 and 7 (nothing, nothing); neither is ahead then, and the descent
        # takes batch 8, from the explorer's 2 ms program.
        assert explorer_batches == [1, 2, 4, 5, 6, 7]
        assert task.stats.explorer_turns == 4
        assert all(p.count("explore") > 0 for p in phases[3:7])
        assert phases[7].count("explore") == 0
        assert task.descents.active.droplet.centre_latency == pytest.approx(2e-3)
        assert task.best().latency == pytest.approx(2e-3)
    else:
        # A guessing model's explorer samples at random: the descent keeps every batch.
        assert explorer_batches == [1, 2]
        assert task.stats.explorer_turns == 0
        assert task.best().latency == pytest.approx(8e-3)
    assert len(task.seen) == 64
    strategy.post_tuning()


@pytest.mark.parametrize("stalled_turns", ["alternate", "explorer"])
def test_stalled_batches_alternate_or_go_to_the_explorer(stalled_turns):
    strategy, _, spaces = _evolutionary_setup(stalled_turns=stalled_turns)
    per_iter = 8

    def latency(candidate, phase):
        batch = strategy.task.issued // per_iter
        if phase != "explore":
            return 20e-3  # no neighbour ever beats its centre
        # The exploration phase (10 ms, 8 ms), then one explorer batch that finds 4 ms; every
        # later program is slower, so that neither side gains again.
        return {1: 10e-3, 2: 8e-3, 4: 4e-3}.get(batch, 20e-3)

    model = recording_model(lambda c: 1.0 / tile_latency(c))
    phases, *_ = _drive_with_phases(strategy, spaces, 80, per_iter, latency, model)
    task = strategy.task
    explorer_batches = [number for number, p in enumerate(phases, 1) if "explore" in p]
    if stalled_turns == "alternate":
        # The explorer keeps batch 5 on its 50% gain and batch 6 on its latest two batches;
        # from then on neither gains and they alternate, the descent first.
        assert explorer_batches == [1, 2, 4, 5, 6, 8, 10]
    else:
        # The descent started from the explorer's 4 ms program gets batch 5; the explorer
        # then takes batch 6 on its gain, and every batch once neither gains.
        assert explorer_batches == [1, 2, 4, 6, 7, 8, 9, 10]
        assert phases[4].count("explore") == 0
    assert task.best().latency == pytest.approx(4e-3)
    assert task.descents.active.droplet.centre_latency == pytest.approx(4e-3)
    assert len(task.seen) == 80
    strategy.post_tuning()


def test_seeded_runs_propose_the_same_candidates():
    def proposals():
        strategy, _, spaces = _evolutionary_setup(seed=42)
        batches = drive(
            strategy, 40, 8, spaces, ms.database.MemoryDatabase(), ms.cost_model.RandomModel(seed=3)
        )
        assert strategy.task.stats.descended > 0
        strategy.post_tuning()
        return [[h for h, _ in batch] for batch in batches]

    assert proposals() == proposals()


def test_descent_improves_on_exploration():
    strategy, _, spaces = _evolutionary_setup()
    batches = drive(
        strategy,
        64,
        8,
        spaces,
        ms.database.MemoryDatabase(),
        ms.cost_model.RandomModel(seed=1),
        latency=tile_latency,
    )
    task = strategy.task
    explored = [s[0] for b in batches[:2] for _, s in b if s]
    assert task.stats.explored == 16 and task.stats.descended == 48
    assert task.stats.moves > 0
    assert task.best().latency < min(explored)
    strategy.post_tuning()


def _tiny_context(strategy):
    return ms.TuneContext(
        mod=Matmul,
        target=tvm.target.Target({"kind": "llvm", "num-cores": 2}),
        num_threads=1,
        rand_state=5,
        space_generator=ms.space_generator.ScheduleFn(sch_fn=_schedule_matmul_tiny, postprocs=[]),
        search_strategy=strategy,
    )


@pytest.mark.parametrize("policy", ["restart", "explore", "stop"])
def test_on_converge_policies(policy):
    # 32 = 2^5 has 6 two-way tilings per loop: 36 programs in all, fewer than the budget.
    strategy = DropletSearch(explore_trials=4, on_converge=policy)
    context = _tiny_context(strategy)
    batches = drive(strategy, 60, 4, context.generate_design_space())
    trials = sum(map(len, batches))
    hashes = [h for batch in batches for h, _ in batch]
    assert len(set(hashes)) == trials <= 36
    if policy == "stop":
        assert strategy.task.stats.descents_converged == 1
        assert strategy.task.stats.descents_started == 1
        assert trials < 36
    else:
        assert strategy.task.stats.descents_started > 1
    task = strategy.task
    # Every start keeps a descent of its own, and a descent only moves to faster programs.
    assert len(task.descents.descents) == task.stats.descents_started
    starts = set()
    for descent in task.descents.descents:
        start = _tvm.module_hash(descent.space.replay(descent.space.origin).mod)
        starts.add(start)
        assert descent.droplet.centre_latency <= task.measured[start].latency
    assert len(starts) == len(task.descents.descents)
    # A trace replayed once is not replayed again, and its program is one of the 36.
    valid_programs = {h for h in task.descents.replayed.values() if h is not None}
    assert len(valid_programs) <= 36 and set(hashes) <= valid_programs | set(task.measured)
    if policy != "stop":
        assert task.stats.replays_saved > 0
    strategy.post_tuning()


@pytest.mark.parametrize("other_spaces", [False, True])
def test_a_restart_goes_to_a_design_space_no_descent_walked(other_spaces):
    strategy, _, spaces = _evolutionary_setup(restart_other_spaces=other_spaces)
    # GMM's three design spaces (sketches) have three keys; every program of the first is ten
    # times faster than any other, so a restart by latency alone never leaves it.
    assert len({_tvm.trace_structure(space.trace) for space in spaces}) == 3
    first = _tvm.trace_structure(spaces[0].trace)

    def latency(candidate, phase):
        slower = 1.0 if _tvm.trace_structure(candidate.sch.trace) == first else 10.0
        return slower * tile_latency(candidate)

    _drive_with_phases(strategy, spaces, 96, 8, latency)
    task = strategy.task
    assert task.stats.descents_started >= 2
    walked = [
        _tvm.trace_structure(descent.space.trace_of(descent.space.origin))
        for descent in task.descents.descents
    ]
    # The key is kept only where the option asks for it.
    assert all(
        (descent.structure == sketch) == other_spaces
        for descent, sketch in zip(task.descents.descents, walked)
    )
    measured_spaces = {_tvm.trace_structure(m.trace) for m in task.measured.values()}
    assert walked[0] == first and len(measured_spaces) >= 2
    if other_spaces:
        # The first restart went to another sketch that the exploration had measured.
        assert walked[1] != first
    else:
        assert set(walked) == {first}
    strategy.post_tuning()


def test_clone_is_independent_with_the_same_options():
    original = DropletSearch(explore_trials=4, on_converge="stop")
    clone = original.clone()
    assert isinstance(clone, ms.search_strategy.SearchStrategy)
    first = drive(original, 60, 4, _tiny_context(original).generate_design_space())
    second = drive(clone, 60, 4, _tiny_context(clone).generate_design_space())
    # Same options (stop after one converged descent) and same seed: the same run.
    assert [[h for h, _ in b] for b in first] == [[h for h, _ in b] for b in second]
    assert sum(map(len, first)) < 36
    original.post_tuning()
    clone.post_tuning()


def test_unknown_and_invalid_options_are_named():
    with pytest.raises(
        ValueError, match="Unknown DropletSearch option 'explore_trails'.*explore_trials"
    ):
        DropletSearch(explore_trails=3)
    with pytest.raises(ValueError, match="'on_converge'"):
        DropletSearch(on_converge="never")
    with pytest.raises(ValueError, match="'significance'"):
        DropletSearch(significance=1.5)
    with pytest.raises(ValueError, match="'evolutionary'"):
        DropletSearch(evolutionary={"population": 3})


@pytest.mark.parametrize(
    ("given", "population", "eps_greedy"),
    [({}, 128, 0.05), ({"eps_greedy": 0.1}, 128, 0.1), (None, 512, 0.05)],
    ids=["default", "amended", "tvm"],
)
def test_the_explorer_gets_the_evolutionary_settings_over_droplets_defaults(
    given, population, eps_greedy
):
    strategy = DropletSearch(explore_trials=8, evolutionary=given)
    context = tune_context(te_module("GMM", 0), strategy=strategy)
    strategy.pre_tuning(
        16,
        8,
        context.generate_design_space(),
        ms.database.MemoryDatabase(),
        ms.cost_model.RandomModel(seed=1),
    )
    explorer = strategy.task.exploration.explorer
    assert isinstance(explorer, ms.search_strategy.EvolutionarySearch)
    assert explorer.population_size == population
    assert explorer.eps_greedy == pytest.approx(eps_greedy)
    strategy.post_tuning()


def test_misuse_gets_a_clear_error():
    strategy = DropletSearch()
    with pytest.raises(ValueError, match="needs a TuneContext"):
        strategy.pre_tuning(8, 8, [], None, None)
    with pytest.raises(ValueError, match="before pre_tuning"):
        strategy.generate_measure_candidates()


def test_registry_keeps_tvm_behaviour_for_other_names():
    create = ms.search_strategy.SearchStrategy.create
    assert isinstance(create("evolutionary"), ms.search_strategy.EvolutionarySearch)
    assert isinstance(create("replay-trace"), ms.search_strategy.ReplayTrace)
    with pytest.raises(ValueError, match="Unknown SearchStrategy: nope"):
        create("nope")
    droplet = create("droplet", explore_trials=8)
    assert droplet.options["explore_trials"] == 8
    assert ms.search_strategy.create is create or ms.search_strategy.create("droplet")
    context = tune_context(te_module("GMM", 0), strategy="droplet")
    assert isinstance(context.search_strategy, ms.search_strategy.SearchStrategy)


def _head_split_module():
    """The permute of an attention block's heads: [tokens, 3, heads, head size] -> [3, heads,
    tokens, head size]."""
    from tvm import te

    qkv = te.placeholder((64, 3, 4, 32), "float32", name="qkv")
    heads = te.compute((3, 4, 64, 32), lambda s, h, t, d: qkv[t, s, h, d], name="heads")
    return tvm.IRModule({"main": te.create_prim_func([qkv, heads])})


@pytest.mark.tuning
def test_a_space_that_samples_nothing_is_measured_whole_in_its_first_batch(tmp_path):
    from ms_droplet.exploration import every_program
    from ms_droplet.job import evaluator_runner, fast_local_builder, host_target

    # MetaSchedule's CPU design space of a permute samples no decision: it annotates the
    # parallel extent and the vectorize width, and no mutator of TVM changes the latter.
    mod, target = _head_split_module(), host_target()
    context = ms.TuneContext(mod=mod, target=target, space_generator="post-order-apply")
    spaces = context.generate_design_space()
    assert [len(space.trace.decisions) for space in spaces] == [0]
    # A space that samples decisions is left to the explorers.
    matmul = tune_context(te_module("GMM", 0))
    assert every_program(matmul, matmul.generate_design_space()) is None
    programs, logs = {}, {}
    for name, strategy in (("evolutionary", "evolutionary"), ("droplet", DropletSearch())):
        database = ms.tune_tir(
            mod,
            target,
            str(tmp_path / name),
            max_trials_global=32,
            num_trials_per_iter=16,
            strategy=strategy,
            builder=fast_local_builder(),
            runner=evaluator_runner(),
        )
        records = database.get_all_tuning_records()
        assert all(record.run_secs and float(record.run_secs[0]) < 1 for record in records)
        programs[name] = [_tvm.module_hash(r.as_measure_candidate().sch.mod) for r in records]
        logs[name] = "".join(log.read_text() for log in (tmp_path / name / "logs").glob("*task*"))
    # Droplet measures every distinct program in one batch, TVM's default among them, and
    # ends; EvolutionarySearch varies the parallel extent at most, so it finds a few of them.
    (default,) = sampled_candidates(context, 1)
    assert len(programs["droplet"]) == len(set(programs["droplet"])) > 2
    assert set(programs["evolutionary"]) < set(programs["droplet"])
    assert _tvm.module_hash(default.sch.mod) in programs["droplet"]
    count = len(programs["droplet"])
    assert logs["droplet"].count("droplet: batch of") == 1
    assert f"droplet: batch of {count} candidates, {count} explored" in logs["droplet"]


def test_descent_records_replay_as_tvm_replays_database_records():
    # TVM's explorer (and any later run on the same database) replays a record's trace with
    # the postprocessors' instructions dropped, then runs the postprocessors again: a descent's
    # trace must mark where they begin, or the replay applies them twice and TVM fails.
    strategy, context, spaces = _evolutionary_setup()
    drive(
        strategy,
        32,
        8,
        spaces,
        ms.database.MemoryDatabase(),
        ms.cost_model.RandomModel(seed=1),
        latency=tile_latency,
    )
    task = strategy.task
    descended = [m for m in task.measured.values() if m.phase != "explore"]
    assert descended
    for measured in descended:
        assert "EnterPostproc" in [inst.kind.name for inst in measured.trace.insts]
        sch = _tvm.traced_schedule(context.mod, 1)
        measured.trace.apply_to_schedule(sch, remove_postproc=True)
        sch.enter_postproc()
        assert all(postproc.apply(sch) for postproc in context.space_generator.postprocs)
        assert _tvm.module_hash(sch.mod) == measured.module_hash
    strategy.post_tuning()


def test_without_scipy_the_strategy_refuses_before_tuning(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # what an absent SciPy looks like
    with pytest.raises(ImportError, match="needs SciPy"):
        DropletSearch()
