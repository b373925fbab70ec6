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
"""Shared helpers: real TVM workloads, targets and tune contexts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def every_tensor_intrinsic():
    """Import every target's tensor intrinsics in each test process before its first test.

    As TVM's first ``TuneContext`` in a process does. The tests that run the CLI or the
    benchmark harness in this process would otherwise register one target kind's intrinsics
    (``_tvm.register_tensor_intrinsics``), and a later test's CUDA context would find none of
    CUDA's, depending on which tests a pytest-xdist worker happened to run before it.
    """
    import tvm.s_tir.tensor_intrin  # noqa: F401


LLVM_TARGET = {"kind": "llvm", "num-cores": 2}
CUDA_TARGET = {
    "kind": "cuda",
    "arch": "sm_80",
    "max_threads_per_block": 1024,
    "max_shared_memory_per_block": 49152,
    "thread_warp_size": 32,
}


def te_module(name: str, index: int):
    """The IRModule of TVM's te_workload table entry NAME:INDEX."""
    import tvm
    from tvm import te
    from tvm.s_tir.meta_schedule.testing import te_workload

    func, configs = te_workload.CONFIGS[name]
    return tvm.IRModule({"main": te.create_prim_func(func(*configs[index]))})


def matmul_module(n: int = 32):
    import tvm
    from tvm import te
    from tvm.s_tir.meta_schedule.testing import te_workload

    return tvm.IRModule({"main": te.create_prim_func(te_workload.matmul(n, n, n))})


def tune_context(mod, target=None, strategy="evolutionary", seed=1):
    import tvm
    from tvm.s_tir import meta_schedule as ms

    return ms.TuneContext(
        mod=mod,
        target=tvm.target.Target(target or LLVM_TARGET),
        space_generator="post-order-apply",
        search_strategy=strategy,
        task_name="main",
        rand_state=seed,
        num_threads=1,
    )


@pytest.fixture
def llvm_target():
    import tvm

    return tvm.target.Target(LLVM_TARGET)


def sampled_candidates(context, count):
    """Post-processed candidates with random decisions, as TVM's ReplayTrace proposes them."""
    from tvm.s_tir import meta_schedule as ms

    strategy = ms.search_strategy.ReplayTrace()
    strategy._initialize_with_tune_context(context)
    strategy.pre_tuning(count, count, context.generate_design_space())
    candidates = list(strategy.generate_measure_candidates())
    strategy.post_tuning()
    return candidates


def commit_records(database, context, candidates, latency=None, target=None):
    """Commit candidates as measured records of the context's workload, as AddToDatabase does.

    ``latency(module_hash)`` gives each run time (default :func:`synthetic_latency`; ``None``
    from it records a failure). Returns {module hash: run time or None}.
    """
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet import _tvm

    latency = latency or synthetic_latency
    workload = database.commit_workload(context.mod)
    recorded = {}
    for candidate in candidates:
        module_hash = _tvm.module_hash(candidate.sch.mod)
        secs = latency(module_hash)
        database.commit_tuning_record(
            ms.database.TuningRecord(
                candidate.sch.trace,
                workload,
                [1e10] if secs is None else [secs, secs],
                target if target is not None else context.target,
                candidate.args_info,
            )
        )
        recorded[module_hash] = secs
    return recorded


def synthetic_latency(module_hash: int) -> float:
    """A deterministic stand-in for a measurement: a fixed run time per program."""
    return 1e-3 * (1.0 + (module_hash % 9973) / 9973.0)


def tile_latency(candidate) -> float:
    """A deterministic run time with structure: best when every innermost tile factor is 8."""
    import math

    trace = candidate.sch.trace
    cost = 1.0
    for inst in trace.insts:
        if inst.kind.name == "SamplePerfectTile" and inst in trace.decisions:
            inner = int(trace.decisions[inst][-1])
            cost += (math.log2(inner) - 3.0) ** 2
    return 1e-3 * cost


def drive(
    strategy,
    max_trials,
    per_iter,
    design_spaces,
    database=None,
    cost_model=None,
    fail=None,
    latency=None,
):
    """Run a strategy's generate/notify loop as the task scheduler does, measuring with
    ``latency(candidate)`` (default: :func:`synthetic_latency` of the program, deterministic)
    and failing the programs ``fail`` selects.

    Returns the list of batches, each a list of (module hash, samples or None).
    """
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet import _tvm

    fail = fail or (lambda module_hash: False)
    strategy.pre_tuning(max_trials, per_iter, design_spaces, database, cost_model)
    batches = []
    candidates = strategy.generate_measure_candidates()
    while candidates is not None:
        batch, results = [], []
        for candidate in candidates:
            module_hash = _tvm.module_hash(candidate.sch.mod)
            if fail(module_hash):
                results.append(ms.runner.RunnerResult(run_secs=None, error_msg="injected"))
                batch.append((module_hash, None))
            else:
                secs = latency(candidate) if latency else synthetic_latency(module_hash)
                results.append(ms.runner.RunnerResult(run_secs=[secs, secs], error_msg=None))
                batch.append((module_hash, [secs, secs]))
        strategy.notify_runner_results(candidates, results)
        batches.append(batch)
        candidates = strategy.generate_measure_candidates()
    return batches


def start_child(args, cwd, **environ):
    """Start Python with ``args`` in a child process, without this PYTHONPATH and without
    ``MS_DROPLET_DEFAULT`` unless ``environ`` sets it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MS_DROPLET_DEFAULT")}
    env.update(environ)
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_child(child):
    """Wait for a child of :func:`start_child`; it must succeed. Its stdout."""
    out, err = child.communicate(timeout=900)
    assert child.returncode == 0, out[-3000:] + err[-3000:]
    return out


def run_child(args, cwd):
    """Run Python with ``args`` in a child process (see :func:`start_child`); its stdout."""
    return finish_child(start_child(args, cwd))


def descent_programs(work_dir):
    """Hashes of the programs the descent proposed, as its log lines name them."""
    hashes, descended = set(), 0
    for log in (Path(work_dir) / "logs").glob("*task_*.log"):
        for line in log.read_text().splitlines():
            match = re.search(r"droplet: batch of \d+ candidates, \d+ explored and (\d+)", line)
            if match:
                descended += int(match.group(1))
            if "descent programs:" in line:
                hashes.update(int(h, 16) for h in line.split("descent programs:")[1].split())
    return hashes, descended


def database_programs(work_dir):
    """The records of a work_dir's JSON database, and the structural hashes of their programs."""
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet import _tvm

    database = ms.database.JSONDatabase(work_dir=str(work_dir))
    records = database.get_all_tuning_records()
    return records, {_tvm.module_hash(r.as_measure_candidate().sch.mod) for r in records}


def recording_model(score=None):
    """A real ``PyCostModel`` that remembers the programs it learned from, in order.

    ``score(candidate)`` is its prediction (higher: faster); random without one.
    """
    import numpy as np
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.cost_model import PyCostModel

    from ms_droplet import _tvm

    @derived_object
    class RecordingModel(PyCostModel):
        def __init__(self):
            super().__init__()
            self.learned = []
            self.rng = np.random.default_rng(0)

        def load(self, path):
            pass

        def save(self, path):
            pass

        def update(self, context, candidates, results):
            self.learned += [_tvm.module_hash(c.sch.mod) for c in candidates]

        def predict(self, context, candidates):
            if score is None:
                return self.rng.uniform(size=len(candidates))
            return np.array([score(c) for c in candidates], dtype="float64")

    return RecordingModel()
