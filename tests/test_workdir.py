"""Work_dirs on disk: a record cut short by a kill, counting per task and target, and the
errors post-optimisation gives before it tunes anything."""

import pytest
import tvm
from conftest import commit_records, sampled_candidates, te_module, tune_context
from tvm.s_tir import meta_schedule as ms

from ms_droplet import post_optimize
from ms_droplet.workdir import RECORD_FILE, count_records, open_database, recorded_tasks

OTHER_TARGET = {"kind": "llvm", "num-cores": 2, "mcpu": "skylake-avx512"}


def _work_dir_with_records(folder, count=6, target=None):
    context = tune_context(te_module("GMM", 0))
    folder.mkdir(parents=True, exist_ok=True)
    database = ms.database.JSONDatabase(work_dir=str(folder))
    commit_records(database, context, sampled_candidates(context, count), target=target)
    return context


def test_a_record_cut_short_by_a_kill_is_dropped_and_the_rest_load(tmp_path):
    context = _work_dir_with_records(tmp_path)
    records = tmp_path / RECORD_FILE
    whole = records.read_text()
    records.write_text(whole + whole.splitlines()[0][:40])  # a kill in the middle of a write
    with pytest.raises(Exception, match="Unexpected token"):
        ms.database.JSONDatabase(work_dir=str(tmp_path))
    database = open_database(tmp_path)
    assert records.read_text() == whole
    assert count_records(database, [context.mod], context.target) == 6


def test_records_are_counted_per_workload_and_target(tmp_path):
    context = _work_dir_with_records(tmp_path)
    database = ms.database.JSONDatabase(work_dir=str(tmp_path))
    other_workload = tune_context(te_module("GMM", 1))
    commit_records(database, other_workload, sampled_candidates(other_workload, 3))
    commit_records(
        database, context, sampled_candidates(context, 2), target=tvm.target.Target(OTHER_TARGET)
    )
    assert count_records(database, [context.mod], context.target) == 6
    assert count_records(database, [context.mod, other_workload.mod], context.target) == 9
    tasks = recorded_tasks(database, context.target)
    assert sorted(task.records for task in tasks) == [3, 6]
    # Both workloads' only block is "Z": the names tell them apart.
    assert sorted(task.name for task in tasks) == ["Z_0", "Z_1"]
    assert all(task.best_seconds > 0 for task in tasks)


def test_post_opt_names_what_is_wrong_before_tuning(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no MetaSchedule database"):
        post_optimize(tmp_path / "nowhere", 8)
    with pytest.raises(ValueError, match="trials >= 1"):
        post_optimize(tmp_path, 0)
    _work_dir_with_records(tmp_path / "other", target=tvm.target.Target(OTHER_TARGET))
    # Code for another CPU is not measured on this one.
    with pytest.raises(ValueError, match="tuned for mcpu 'skylake-avx512'.*--rpc-tracker"):
        post_optimize(tmp_path / "other", 8)
    with pytest.raises(ValueError, match="no record for target .*cuda"):
        post_optimize(tmp_path / "other", 8, target={"kind": "cuda", "arch": "sm_80"})
    database = ms.database.JSONDatabase(work_dir=str(tmp_path / "other"))
    context = tune_context(te_module("GMM", 0))
    commit_records(database, context, sampled_candidates(context, 2))
    with pytest.raises(ValueError, match="several targets"):
        post_optimize(tmp_path / "other", 8)
