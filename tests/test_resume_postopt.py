"""Resume, post-optimisation and the cost model, on real work_dirs with real builds and runs."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import (
    commit_records,
    database_programs,
    descent_programs,
    recording_model,
    run_child,
    sampled_candidates,
    te_module,
    tune_context,
)
from tvm.s_tir import meta_schedule as ms

from ms_droplet import DropletSearch
from ms_droplet.adapters import PROVENANCE_FILE, read_provenance
from ms_droplet.interrupt import GracefulStop
from ms_droplet.job import evaluator_runner, fast_local_builder, host_target
from ms_droplet.workdir import RECORD_FILE

pytestmark = pytest.mark.tuning
CLI = ["-m", "ms_droplet.cli"]


def _record_lines(work_dir):
    path = work_dir / RECORD_FILE
    return path.read_text().count("\n") if path.exists() else 0


def test_post_opt_improves_a_stock_evolutionary_run_through_the_database(tmp_path):
    work = tmp_path / "work"
    stock = ["tune", "GMM:0", "--strategy", "evolutionary", "--trials", "16", "--per-iter", "8"]
    run_child([*CLI, *stock, "--work-dir", str(work)], cwd=tmp_path)
    stock_records, stock_programs = database_programs(work)
    assert len(stock_records) == 16 and not (work / PROVENANCE_FILE).exists()
    out = run_child([*CLI, "post-opt", str(work), "--trials", "8", "--per-iter", "4"], tmp_path)
    # The per-task table: task, records before, trials, before us, after us, speed-up.
    header = next(line for line in out.splitlines() if "before us" in line)
    assert header.split() == [
        "task",
        "records",
        "trials",
        "before",
        "us",
        "after",
        "us",
        "speed-up",
    ]
    (line,) = out.splitlines()[out.splitlines().index(header) + 1 :]
    task, *numbers = line.split()
    row = dict(zip(("records_before", "trials", "before_us", "after_us", "speedup"), numbers))
    row = {key: float(value) for key, value in row.items()}
    records, programs = database_programs(work)
    # Records went in through the API (stock TVM reads them back), exactly the budget more.
    assert len(records) == 24 and row["trials"] == 8 and row["records_before"] == 16
    # No recorded program was measured again, and none twice.
    new = programs - stock_programs
    assert len(programs) == 24 and len(new) == 8
    # The table's "before" is the stock run's best; "after" is never worse.
    best_before = min(float(np.mean([float(s) for s in r.run_secs])) for r in stock_records)
    assert task == "Z" and row["before_us"] == pytest.approx(best_before * 1e6, abs=0.01)
    assert row["after_us"] <= row["before_us"] and row["speedup"] >= 1.0
    # Provenance: every new record, each from a descent warm-started on the stock records.
    provenance = list(read_provenance(work / PROVENANCE_FILE))
    assert {int(p["program"], 16) for p in provenance} == new
    assert {p["phase"] for p in provenance} <= {"warm-start", "restart"}
    assert "warm-start" in {p["phase"] for p in provenance}


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(path, text, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.2)
    raise TimeoutError(f"'{text}' never appeared in {path}: {path.read_text()[-2000:]}")


def test_post_opt_measures_through_an_rpc_tracker_on_loopback(tmp_path):
    # A finished run's database: real programs of the workload (their run times made up).
    work = tmp_path / "work"
    work.mkdir()
    context = tune_context(te_module("GMM", 0), target=host_target())
    database = ms.database.JSONDatabase(work_dir=str(work))
    commit_records(database, context, sampled_candidates(context, 8))
    tracker_port, server_port = _free_port(), _free_port()
    tracker = f"127.0.0.1:{tracker_port}"
    loopback = ["--host", "127.0.0.1"]
    servers = {
        "tracker": [*loopback, "--port", str(tracker_port), "--port-end", str(tracker_port + 1)],
        "server": [
            *loopback,
            *("--port", str(server_port), "--port-end", str(server_port + 1)),
            *("--tracker", tracker, "--key", "loopback"),
        ],
    }
    started = []
    try:
        for name, args in servers.items():
            with open(tmp_path / f"{name}.log", "w") as log:
                command = [sys.executable, "-m", f"tvm.exec.rpc_{name}", *args]
                # A session of its own: the server's measurement workers end with it.
                started.append(
                    subprocess.Popen(
                        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
            _wait_for(tmp_path / f"{name}.log", "bind to")
        rpc = ["--rpc-tracker", tracker, "--rpc-key", "loopback"]
        out = run_child(
            [*CLI, "post-opt", str(work), "--trials", "4", "--per-iter", "4", *rpc], tmp_path
        )
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=30)
            _kill_group(process.pid)
    records, programs = database_programs(work)
    assert len(records) == 12 == len(programs)
    # The server ran the candidates: it loaded a module per measurement session.
    assert (tmp_path / "server.log").read_text().count("load_module") >= 4
    assert "speed-up" in out


# The CLI with Python's own SIGINT handler: a suite run in the background has SIGINT ignored,
# which a child inherits and keeps, and the tests send Ctrl-C as a terminal does. (preexec_fn
# could reset it before exec, but it is unsafe in a parent with threads, and TVM's runtime
# starts threads in this one.)
CLI_WITH_CTRL_C = [
    "-c",
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('ms_droplet.cli', run_name='__main__')",
]


def _start_tune(args, cwd, stderr=subprocess.DEVNULL):
    """``ms-droplet ARGS`` in a process group of its own (with its builder and runner workers)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(
        [sys.executable, *CLI_WITH_CTRL_C, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )


def _kill_group(pgid):
    """Kill what is left of a process group: a worker forked while the group was being killed
    escapes the first kill and, its parent gone, would idle forever."""
    for _ in range(50):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _wait_for_records(child, work, count):
    deadline = time.monotonic() + 600
    while _record_lines(work) < count and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)


def test_interrupted_and_killed_tunes_finish_their_budget_measuring_nothing_twice(tmp_path):
    work, trials = tmp_path / "work", 16
    args = ["tune", "GMM:0", "--trials", str(trials), "--per-iter", "4"]
    args += ["--work-dir", str(work), "--json"]
    # Ctrl-C as a terminal sends it: to the whole process group, workers included.
    child = _start_tune(args, tmp_path, stderr=subprocess.PIPE)
    _wait_for_records(child, work, 4)
    os.killpg(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=600)
    stopped_at = _record_lines(work)
    # Nothing of the command outlives it: its builder and runner workers ended with it.
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.killpg(child.pid, 0)
    assert child.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "Traceback" not in err
    assert f"stopped by SIGINT: {stopped_at} of {trials} trials are recorded in {work}" in err
    assert "the same command resumes" in err
    # Whole batches only; the progress went out as plain lines (no terminal).
    assert 4 <= stopped_at < trials and stopped_at % 4 == 0
    assert f"[4/{trials} trials] #0 main: 4 trials" in err
    # Killed outright (SIGKILL): a record cut short, if any, is dropped on the next start.
    child = _start_tune(args, tmp_path)
    _wait_for_records(child, work, stopped_at + 4)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    _kill_group(child.pid)
    killed_at = _record_lines(work)
    assert stopped_at + 4 <= killed_at < trials, "the run must be killed part-way"
    # The same command again: the budget is the whole job's.
    out = run_child([*CLI, *args], cwd=tmp_path)
    result = json.loads(out[out.index("{") :])
    records, programs = database_programs(work)
    assert result["resumed_from"] == killed_at and result["records"] == trials
    assert len(records) == trials and len(programs) == trials, "a program was measured twice"
    assert result["reference"] == "numpy" and result["correct"]
    assert result["latency_us"] > 0 and result["gflops"] > 0
    phases = [p["phase"] for p in read_provenance(work / PROVENANCE_FILE)]
    assert "warm-start" in phases and len(phases) >= trials - stopped_at


def test_a_signal_ignored_on_entry_stays_ignored():
    # As under nohup, or & from a script: Ctrl-C is not the run's to take.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with GracefulStop() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            assert not stop.requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sigterm_is_a_request_to_stop_and_a_second_signal_stops_at_once():
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    # Python's own Ctrl-C handler, whatever this test process was started with (pytest run in
    # the background inherits SIGINT ignored, which GracefulStop leaves alone: test above).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _second_signal_stops_at_once(sleeper)
    finally:
        signal.signal(signal.SIGINT, previous)


def _second_signal_stops_at_once(sleeper: list[str]) -> None:
    with GracefulStop() as stop:
        # A worker started while tuning: the terminal's Ctrl-C, sent to the whole group, does
        # not reach it, and the batch it measures completes.
        worker = subprocess.Popen(sleeper)
        os.kill(worker.pid, signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(timeout=1)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signal_name == "SIGTERM"
        assert stop.exit_code() == 128 + signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            # The listener thread takes the SIGINT: the interrupt comes a moment later, between
            # two sleeps (the main thread, SIGINT blocked, is not woken out of one).
            for _ in range(100):
                time.sleep(0.1)
    # The second signal ended the workers first: the main thread waits on them while tuning.
    assert worker.wait(timeout=10) == -signal.SIGKILL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())


def test_the_cost_model_learns_from_the_descent_through_metaschedule_callbacks(tmp_path):
    model = recording_model()
    ms.tune_tir(
        te_module("GMM", 0),
        host_target(),
        str(tmp_path),
        max_trials_global=16,
        num_trials_per_iter=8,
        strategy=DropletSearch(explore_trials=8),
        builder=fast_local_builder(),
        runner=evaluator_runner(),
        cost_model=model,
    )
    _, programs = database_programs(tmp_path)
    descended, count = descent_programs(tmp_path)
    assert count > 0 and descended <= set(model.learned)
    assert set(model.learned) == programs and len(model.learned) == 16
