"""Candidates that fail to build or run, workloads with nothing to tune, and the report.

A builder and a runner that wrap MetaSchedule's own LocalBuilder and LocalRunner fail the
candidates a rule chooses by program, through ``tune_tir`` and its task scheduler; the work_dir
that run leaves is what ``ms-droplet report`` is checked against.
"""

import json
import shutil

import pytest
import tvm
from conftest import drive, synthetic_latency, te_module
from matplotlib import image
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms

from ms_droplet import DropletSearch, _tvm, cli, job
from ms_droplet.adapters import PROVENANCE_FILE, read_provenance
from ms_droplet.adapters.database import DatabaseAdapter
from ms_droplet.job import evaluator_runner, fast_local_builder, host_target
from ms_droplet.report import read_work_dir
from ms_droplet.workdir import RECORD_FILE, open_database

pytestmark = pytest.mark.tuning

TRIALS = 24


def _fails_to_build(module_hash):
    return module_hash % 5 == 1


def _fails_to_run(module_hash):
    return module_hash % 5 == 2


@derived_object
class FailingBuilder(ms.builder.PyBuilder):
    """LocalBuilder, except that the programs ``_fails_to_build`` chooses fail."""

    def __init__(self):
        self.inner = fast_local_builder()
        self.failed = set()
        self.program_of = {}

    def build(self, build_inputs):
        results = []
        for build_input, result in zip(build_inputs, self.inner.build(build_inputs)):
            module_hash = _tvm.module_hash(build_input.mod)
            if _fails_to_build(module_hash):
                self.failed.add(module_hash)
                result = ms.builder.BuilderResult(None, "injected build failure")
            elif result.artifact_path is not None:
                self.program_of[result.artifact_path] = module_hash
            results.append(result)
        return results


@derived_object
class FailedRun(ms.runner.PyRunnerFuture):
    def done(self):
        return True

    def result(self):
        return ms.runner.RunnerResult(None, "injected run failure")


@derived_object
class FailingRunner(ms.runner.PyRunner):
    """LocalRunner, except that the programs ``_fails_to_run`` chooses fail."""

    def __init__(self, builder):
        self.inner = evaluator_runner()
        self.builder = builder
        self.failed = set()

    def run(self, runner_inputs):
        futures = []
        for runner_input, future in zip(runner_inputs, self.inner.run(runner_inputs)):
            module_hash = self.builder.program_of[runner_input.artifact_path]
            if _fails_to_run(module_hash):
                self.failed.add(module_hash)
                future = FailedRun()
            futures.append(future)
        return futures


@derived_object
class DyingRunner(ms.runner.PyRunner):
    """LocalRunner until its third batch, when its worker pool "dies" (run() raises)."""

    def __init__(self):
        self.inner = evaluator_runner()
        self.batches = 0

    def run(self, runner_inputs):
        self.batches += 1
        if self.batches == 3:
            raise RuntimeError("the runner's worker pool died")
        return self.inner.run(runner_inputs)


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    """A droplet run of GMM:0 where about two candidates in five fail; its work_dir."""
    work_dir = tmp_path_factory.mktemp("failing_run")
    builder = FailingBuilder()
    runner = FailingRunner(builder)
    mod = te_module("GMM", 0)
    ms.tune_tir(
        mod,
        host_target(),
        str(work_dir),
        max_trials_global=TRIALS,
        num_trials_per_iter=8,
        strategy=DropletSearch(explore_trials=8),
        builder=builder,
        runner=runner,
    )
    return work_dir, mod, builder.failed | runner.failed


def test_failed_candidates_stay_failures_of_their_own_programs(failing_run):
    work_dir, mod, injected = failing_run
    database = open_database(work_dir)
    known = DatabaseAdapter(database, ms.TuneContext(mod=mod).mod, host_target()).load()
    assert len(known) == TRIALS, "every trial is a distinct program in the database"
    failed = {program.module_hash for program in known if program.samples is None}
    assert injected and failed == injected
    best = min((p for p in known if p.samples is not None), key=lambda p: sum(p.samples))
    top = database.query_tuning_record(ms.TuneContext(mod=mod).mod, host_target(), "main")
    assert _tvm.module_hash(top.as_measure_candidate().sch.mod) == best.module_hash
    # The side file agrees: a failure is a failure of the program that failed, nothing else.
    entries = list(read_provenance(work_dir / PROVENANCE_FILE))
    assert len(entries) == TRIALS
    assert {e["program"] for e in entries if e["latency_s"] is None} == {
        f"{h:016x}" for h in injected
    }
    assert any(e["phase"] == "descent" for e in entries), "the descent must have run"
    # A progress line per measured batch in the task's log: phase, budget, best, step.
    (log,) = (work_dir / "logs").glob("*task_0*.log")
    lines = [line for line in log.read_text().splitlines() if "droplet: main: measured 8" in line]
    assert len(lines) == TRIALS // 8
    assert "(explore)" in lines[0] and "8/24 trials; best " in lines[0] and "GFLOP/s" in lines[0]
    assert "descent step" in lines[-1] and "24/24 trials" in lines[-1]


def test_report_matches_the_database_and_draws_each_task(failing_run, tmp_path, capsys):
    work_dir, mod, injected = failing_run
    out = tmp_path / "report"
    assert cli.main(["report", str(work_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "report.json").read_text())
    (task,) = summary["tasks"]
    known = DatabaseAdapter(
        open_database(work_dir), ms.TuneContext(mod=mod).mod, host_target()
    ).load()
    latencies = [sum(p.samples) / len(p.samples) for p in known if p.samples is not None]
    assert task["trials"] == TRIALS and task["failed"] == len(injected)
    assert task["best_us"] == pytest.approx(min(latencies) * 1e6)
    flop = _tvm.estimate_flops(ms.TuneContext(mod=mod).mod)
    assert task["gflops"] == pytest.approx(flop / min(latencies) / 1e9)
    assert task["best_phase"] in ("explore", "descent", "restart")
    assert [point["phase"] for point in task["curve"][:8]] == ["explore"] * 8
    # The table shows the same numbers.
    row = next(line for line in printed.splitlines() if line.startswith("main"))
    assert row.split()[1:5] == [
        str(TRIALS),
        str(len(injected)),
        f"{task['best_us']:.2f}",
        f"{task['gflops']:.2f}",
    ]
    picture = image.imread(out / task["png"])
    assert picture.ndim == 3 and picture.shape[0] > 200 and picture.shape[1] > 400


def test_report_reads_a_work_dir_being_written_without_changing_it(failing_run, tmp_path):
    work_dir, _, _ = failing_run
    copy = tmp_path / "live"
    shutil.copytree(work_dir, copy)
    records = copy / RECORD_FILE
    whole = records.read_bytes()
    records.write_bytes(whole + whole.splitlines(keepends=True)[0][:40])  # a line half written
    (task,) = read_work_dir(copy)
    assert len(task.trials) == TRIALS
    assert records.read_bytes().endswith(whole.splitlines(keepends=True)[0][:40])


def test_an_all_failing_neighbourhood_moves_on_and_the_task_ends_cleanly():
    strategy = DropletSearch(explore_trials=8, seed=1)
    context = ms.TuneContext(
        mod=te_module("GMM", 0),
        target=tvm.target.Target({"kind": "llvm", "num-cores": 2}),
        space_generator="post-order-apply",
        search_strategy=strategy,
        task_name="main",
        rand_state=1,
    )
    spaces = context.generate_design_space()
    explored = set()

    def fail(module_hash):  # every program after the first batch fails
        if len(explored) < 8:
            explored.add(module_hash)
            return False
        return module_hash not in explored

    batches = drive(strategy, 40, 8, spaces, fail=fail)
    measured = [entry for batch in batches for entry in batch]
    task = strategy.task
    assert len(measured) == 40 and all(s is None for _, s in measured[8:])
    # The descent went on to larger steps and other starting points instead of stopping.
    assert task.stats.descents_started >= 2
    assert task.best().latency == pytest.approx(
        min(synthetic_latency(h) for h, s in measured if s is not None)
    )
    strategy.post_tuning()


def test_a_workload_with_no_decisions_ends_cleanly_with_a_message(tmp_path):
    database = ms.tune_tir(
        te_module("GMM", 0),
        host_target(),
        str(tmp_path),
        max_trials_global=16,
        num_trials_per_iter=4,
        strategy="droplet",
        space=ms.space_generator.ScheduleFn(sch_fn=lambda sch: None),
        builder=fast_local_builder(),
        runner=evaluator_runner(),
    )
    assert len(database.get_all_tuning_records()) == 1
    (log,) = (tmp_path / "logs").glob("*task_0*.log")
    text = log.read_text()
    assert "has no decisions to tune: nothing to descend from it" in text
    assert "droplet: task finished: 1 trials" in text


def test_a_runner_that_dies_gives_a_clear_error_and_keeps_what_was_measured(tmp_path, monkeypatch):
    work = tmp_path / "work"
    monkeypatch.setattr(job, "evaluator_runner", lambda *args, **kwargs: DyingRunner())
    with pytest.raises(SystemExit) as done:
        cli.main(["tune", "GMM:0", "--trials", "8", "--per-iter", "2", "--work-dir", str(work)])
    message = str(done.value.code)
    assert message.startswith("ms-droplet: tuning failed: the runner's worker pool died")
    assert f"4 trials measured before the failure are recorded in {work}" in message
    assert "the same command resumes" in message
    # The two batches measured before it are in the database, whole.
    assert (work / RECORD_FILE).read_text().count("\n") == 4


def test_report_gives_each_measurement_of_a_program_its_own_phase(failing_run, tmp_path):
    work_dir, _, _ = failing_run
    copy = tmp_path / "again"
    shutil.copytree(work_dir, copy)
    # The first explored program measured once more, as a descent's control would be.
    first = (copy / RECORD_FILE).read_text().splitlines(keepends=True)[0]
    with open(copy / RECORD_FILE, "a") as records:
        records.write(first)
    entry = next(read_provenance(copy / PROVENANCE_FILE))
    with open(copy / PROVENANCE_FILE, "a") as provenance:
        provenance.write(json.dumps({**entry, "phase": "control", "trial": TRIALS + 1}) + "\n")
    (task,) = read_work_dir(copy)
    assert task.trials[0].phase == "explore" and task.trials[-1].phase == "control"
    assert len(task.trials) == TRIALS + 1
