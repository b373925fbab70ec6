"""Database and cost-model adapters on real databases of real traces, driven as TVM drives them."""

import pytest
import tvm
import tvm_ffi
from conftest import (
    commit_records,
    drive,
    recording_model,
    sampled_candidates,
    synthetic_latency,
    te_module,
    tile_latency,
    tune_context,
)
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.database import PyDatabase

from ms_droplet import DropletSearch, _tvm
from ms_droplet.adapters import CostModelRanker, DatabaseAdapter, target_key

OTHER_TARGET = {"kind": "llvm", "num-cores": 2, "mcpu": "skylake-avx512"}


@derived_object
class ListDatabase(PyDatabase):
    """A user's database: records in a Python list, workloads compared structurally."""

    def __init__(self):
        super().__init__()
        self.workloads = []
        self.records = []

    def has_workload(self, mod):
        return any(tvm_ffi.structural_equal(w.mod, mod) for w in self.workloads)

    def commit_workload(self, mod):
        for workload in self.workloads:
            if tvm_ffi.structural_equal(workload.mod, mod):
                return workload
        workload = ms.database.Workload(mod)
        self.workloads.append(workload)
        return workload

    def commit_tuning_record(self, record):
        self.records.append(record)

    def get_all_tuning_records(self):
        return list(self.records)

    def get_top_k(self, workload, top_k):
        valid = [r for r in self.records if r.workload.same_as(workload) and r.run_secs]
        return sorted(valid, key=lambda r: sum(float(s) for s in r.run_secs))[:top_k]

    def __len__(self):
        return len(self.records)


DATABASES = {
    "json": lambda folder: ms.database.JSONDatabase(work_dir=str(folder)),
    "memory": lambda folder: ms.database.MemoryDatabase(),
    "py": lambda folder: ListDatabase(),
}


def _setup(target=None, seed=1, **options):
    # A small population keeps the exploration quick; the descent does not depend on it.
    evolutionary = {"population_size": 64, "init_min_unmeasured": 8}
    strategy = DropletSearch(explore_trials=16, seed=seed, evolutionary=evolutionary, **options)
    context = tune_context(te_module("GMM", 0), target=target, strategy=strategy, seed=seed)
    return strategy, context, context.generate_design_space()


def _origin_program(descent):
    return _tvm.module_hash(descent.space.replay(descent.space.origin).mod)


@pytest.mark.parametrize("kind", sorted(DATABASES))
@pytest.mark.parametrize(("known", "explored"), [(24, 0), (8, 8)])
def test_known_programs_warm_start_and_are_never_measured_again(tmp_path, kind, known, explored):
    strategy, context, spaces = _setup()
    database = DATABASES[kind](tmp_path)
    candidates = sampled_candidates(context, known + 1)
    recorded = commit_records(database, context, candidates[:known])
    failed = commit_records(database, context, candidates[known:], latency=lambda h: None)
    batches = drive(strategy, 32, 8, spaces, database, ms.cost_model.RandomModel(seed=1))
    task = strategy.task
    measured = [h for batch in batches for h, _ in batch]
    # The whole budget went to new programs: none known before, none twice.
    assert len(measured) == 32 == len(set(measured))
    assert not set(measured) & (set(recorded) | set(failed))
    assert task.stats.known_measured == len(recorded) and task.stats.known_failed == len(failed)
    assert all(task.seen[h] is None for h in failed)
    # Warm start: the exploration is shortened by the programs measured before (cap 16), and
    # the first descent starts from the fastest of them.
    assert task.stats.explored == explored
    first = task.descents.descents[0]
    if explored == 0:
        assert first.phase == "warm-start"
        assert _origin_program(first) == min(recorded, key=recorded.get)
    best = min({**recorded, **{h: s[0] for b in batches for h, s in b if s}}.values())
    assert task.best().latency == pytest.approx(best)
    strategy.post_tuning()


def test_records_of_another_target_neither_seed_nor_answer(tmp_path):
    strategy, context, spaces = _setup()
    database = ms.database.JSONDatabase(work_dir=str(tmp_path))
    other = tvm.target.Target(OTHER_TARGET)
    assert target_key(other) != target_key(context.target)
    # Faster than anything this target measures: they would win every comparison.
    recorded = commit_records(
        database, context, sampled_candidates(context, 24), latency=lambda h: 1e-6, target=other
    )
    batches = drive(strategy, 32, 8, spaces, database, ms.cost_model.RandomModel(seed=1))
    task = strategy.task
    measured = {h for batch in batches for h, _ in batch}
    assert task.adapter.stats.other_targets == len(recorded)
    assert task.stats.known_measured == 0 and task.stats.explored == 16
    assert all(descent.phase != "warm-start" for descent in task.descents.descents)
    # A program recorded for the other target is known here only if measured here.
    assert {h for h in recorded if h in task.seen} <= measured
    assert task.best().latency > 1e-6 and task.best().phase != "database"
    # What TVM's explorer seeds from holds this run's measurements only.
    view = task.adapter.view
    seeds = view.get_top_k(view.commit_workload(context.mod), 100)
    assert seeds and {_tvm.module_hash(r.as_measure_candidate().sch.mod) for r in seeds} <= measured
    strategy.post_tuning()


@pytest.mark.parametrize("sees_descents", [True, False])
def test_the_explorer_seeds_from_the_descents_programs_only_when_told(tmp_path, sees_descents):
    strategy, context, spaces = _setup(explorer_sees_descents=sees_descents)
    database = ms.database.JSONDatabase(work_dir=str(tmp_path))
    drive(strategy, 32, 8, spaces, database, ms.cost_model.RandomModel(seed=1))
    task = strategy.task
    by_phase = {}
    for program in task.measured.values():
        by_phase.setdefault(program.phase == "explore", set()).add(program.module_hash)
    explored, descended = by_phase[True], by_phase[False]
    assert len(explored) == 16 and descended
    view = task.adapter.view
    seeds = {
        _tvm.module_hash(record.as_measure_candidate().sch.mod)
        for record in view.get_top_k(view.commit_workload(context.mod), 100)
    }
    # Stock MetaSchedule's explorer knows only its own programs; droplet's, by default, the
    # descents' too, whose best are then the genetic search's first parents.
    assert explored <= seeds
    assert (descended <= seeds) if sees_descents else not (descended & seeds)
    strategy.post_tuning()


@pytest.mark.parametrize("union", ["union", "ordered-union"])
def test_a_union_database_warm_starts_from_the_record_it_answers(tmp_path, union):
    strategy, context, spaces = _setup()
    for name in "ab":
        (tmp_path / name).mkdir()
    first, second = (ms.database.JSONDatabase(work_dir=str(tmp_path / n)) for n in "ab")
    candidates = sampled_candidates(context, 16)
    # Faster than anything the run measures, so that the first descent starts from the best.
    faster = lambda module_hash: synthetic_latency(module_hash) / 100  # noqa: E731
    in_first = commit_records(first, context, candidates[:8], latency=faster)
    in_second = commit_records(second, context, candidates[8:], latency=faster)
    if union == "union":
        database = ms.database.UnionDatabase(first, second)
        expected = min({**in_first, **in_second}.items(), key=lambda kv: kv[1])[0]
    else:
        database = ms.database.OrderedUnionDatabase(first, second)
        expected = min(in_first.items(), key=lambda kv: kv[1])[0]
    batches = drive(strategy, 24, 8, spaces, database, ms.cost_model.RandomModel(seed=1))
    task = strategy.task
    # Union databases answer query_tuning_record alone: the best record is what is known.
    assert task.adapter.stats.only_best and task.stats.known_measured == 1
    assert expected not in {h for batch in batches for h, _ in batch}
    assert task.measured[expected].phase == "database"
    first_descent = task.descents.descents[0]
    assert first_descent.phase == "warm-start" and _origin_program(first_descent) == expected
    strategy.post_tuning()


def test_a_database_of_1000_records_loads_within_its_measured_cost(tmp_path):
    context = tune_context(te_module("GMM", 0))
    database = ms.database.JSONDatabase(work_dir=str(tmp_path))
    recorded = commit_records(database, context, sampled_candidates(context, 1000))
    # A resumed run opens the files afresh.
    reopened = ms.database.JSONDatabase(work_dir=str(tmp_path))
    adapter = DatabaseAdapter(reopened, context.mod, context.target)
    known = adapter.load()
    assert adapter.stats.records == 1000
    assert {program.module_hash for program in known} == set(recorded)
    assert [p.samples[0] for p in known] == sorted(recorded[p.module_hash] for p in known)
    # About 1 ms a record on this workload (python -m benchmarks.adapter_overhead); ten times
    # that would mean per-record work crept in (a second replay, a quadratic lookup).
    assert adapter.stats.seconds < 10.0


def test_the_ranker_orders_by_the_model_and_learns_from_the_database(tmp_path):
    context = tune_context(te_module("GMM", 0))
    candidates = sampled_candidates(context, 12)
    model = recording_model(lambda c: 1.0 / tile_latency(c))
    ranker = CostModelRanker(context, model)
    order = ranker.order([c.sch for c in candidates])
    assert [tile_latency(candidates[i]) for i in order] == sorted(map(tile_latency, candidates))
    assert CostModelRanker(context, None).order([c.sch for c in candidates]) == list(range(12))
    # A task that starts on a database trains the model on the programs it knows.
    strategy, context, spaces = _setup(rank_pool=3)
    database = ms.database.MemoryDatabase()
    known = sampled_candidates(context, 4)
    structured = {_tvm.module_hash(c.sch.mod): tile_latency(c) for c in known}
    recorded = commit_records(database, context, known, latency=structured.get)
    model = recording_model(lambda c: 1.0 / tile_latency(c))
    batches = drive(strategy, 16, 8, spaces, database, model, latency=tile_latency)
    assert set(recorded) <= set(model.learned[: len(recorded)])
    measured = [h for batch in batches for h, _ in batch]
    assert len(set(measured)) == 16 and strategy.task.stats.descended > 0
    assert len({h for b in batches for h, _ in b}) == 16
    strategy.post_tuning()


def test_the_ranker_keeps_the_descents_order_while_the_model_guesses():
    context = tune_context(te_module("GMM", 0))
    candidates = sampled_candidates(context, 12)
    schedules = [c.sch for c in candidates]
    given = list(range(12))
    # TVM's XGBModel predicts uniform random scores until it has seen num_warmup_samples (100)
    # measurements; RandomModel always does.
    for model in (ms.cost_model.XGBModel(num_tuning_cores=1), ms.cost_model.RandomModel()):
        ranker = CostModelRanker(context, model)
        assert ranker.order(schedules) == given
        assert ranker.guessed == 1 and not ranker.learned
    # A model that has learned ranks by its own (repeatable) predictions.
    model = ms.cost_model.XGBModel(num_tuning_cores=1, num_warmup_samples=0)
    results = [_tvm.RunnerResult(run_secs=[tile_latency(c)], error_msg=None) for c in candidates]
    model.update(context, candidates, results)
    predicted = [float(s) for s in model.predict(context, candidates)]
    by_model = sorted(given, key=lambda i: -predicted[i])
    assert by_model != given
    ranker = CostModelRanker(context, model)
    assert ranker.order(schedules) == by_model
    assert ranker.learned and ranker.guessed == 0


@pytest.mark.parametrize("learned", [False, True])
def test_the_descent_replays_a_pool_only_for_a_model_that_has_learned(learned):
    strategy, context, spaces = _setup(rank_pool=3)
    if learned:
        model = recording_model(lambda c: 1.0 / tile_latency(c))
    else:
        # TVM's XGBModel, which no measure callback teaches here: it guesses throughout.
        model = ms.cost_model.XGBModel(num_tuning_cores=1)
    batches = drive(
        strategy, 40, 8, spaces, ms.database.MemoryDatabase(), model, latency=tile_latency
    )
    task = strategy.task
    assert task.stats.descended > 0 and task.ranker.learned == learned
    # Replayed neighbours beyond those measured (or found known) are the pool the model ranked.
    measured_or_known = task.stats.descended + task.stats.duplicates
    if learned:
        assert task.stats.replays > measured_or_known and task.ranker.guessed == 0
    else:
        assert task.stats.replays <= measured_or_known
        # Asked once a batch at most: a model learns only between batches.
        assert 0 < task.ranker.guessed <= len(batches)
    strategy.post_tuning()
