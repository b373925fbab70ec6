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
"""One tuning job end to end: tune, compile the best schedule, check it, time it.

Shared by the ``ms-droplet tune`` command and the benchmarks, so that both measure the same way.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import psutil

from . import _tvm
from .interrupt import GracefulStop
from .progress import progress_callback
from .workloads import Workload, output_shape, random_inputs

STRATEGIES = ("droplet", "evolutionary")


@dataclass
class TuneResult:
    """What one job measured."""

    workload: str
    strategy: str
    trials: int
    records: int
    # Records of this workload and target the work_dir held before this job tuned.
    resumed_from: int
    tuning_seconds: float
    latency_us: float
    gflops: float
    max_abs_error: float
    reference: str
    correct: bool

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for JSON."""
        return asdict(self)


def host_target(num_cores: int | None = None) -> Any:
    """The host CPU as an LLVM target with ``mcpu`` set (generic code understates kernels)."""
    import tvm

    cores = num_cores or psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return tvm.target.Target({"kind": "llvm", "mcpu": _tvm.host_cpu(), "num-cores": cores})


def evaluator_config(repeat: int = 3, min_repeat_ms: int = 40) -> Any:
    """The measurement settings every runner of this package uses.

    Several repeats give droplet's significance test something to test; every strategy of a
    comparison gets the same settings.
    """
    from tvm.s_tir import meta_schedule as ms

    return ms.runner.EvaluatorConfig(
        number=3, repeat=repeat, min_repeat_ms=min_repeat_ms, enable_cpu_cache_flush=False
    )


def evaluator_runner(repeat: int = 3, min_repeat_ms: int = 40) -> Any:
    """A local runner that reports ``repeat`` timings per candidate."""
    from tvm.s_tir import meta_schedule as ms

    return ms.runner.LocalRunner(evaluator_config=evaluator_config(repeat, min_repeat_ms))


def rpc_runner(tracker: str, key: str, session_timeout_sec: int = 60) -> Any:
    """A runner that measures on the devices registered with an RPC tracker under ``key``.

    Parameters
    ----------
    tracker : str
        ``HOST:PORT`` of a ``python -m tvm.exec.rpc_tracker``.
    key : str
        The device key the RPC servers registered with (``--key``).
    session_timeout_sec : int
        Seconds one measurement session may take.
    """
    from tvm.s_tir import meta_schedule as ms

    host, sep, port = tracker.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"an RPC tracker is HOST:PORT, got '{tracker}'")
    config = ms.runner.RPCConfig(
        tracker_host=host,
        tracker_port=int(port),
        tracker_key=key,
        session_timeout_sec=session_timeout_sec,
    )
    return ms.runner.RPCRunner(rpc_config=config, evaluator_config=evaluator_config())


def tune(
    workload: Workload,
    target: Any,
    *,
    trials: int,
    per_iter: int,
    strategy: Any,
    work_dir: str,
    seed: int | None = None,
    runner: Any = None,
    builder: Any = None,
    callbacks: Any = "default",
    database: Any = "json",
) -> Any:
    """Tune ``workload`` with MetaSchedule's own entry points; return the database.

    ``runner`` defaults to :func:`evaluator_runner`, ``builder`` to :func:`fast_local_builder`,
    ``database`` to the JSON database of ``work_dir`` (records already there are kept, and
    droplet measures none of their programs again).
    """
    from tvm.s_tir import meta_schedule as ms

    runner = runner if runner is not None else evaluator_runner()
    builder = builder if builder is not None else fast_local_builder()
    common = {
        "max_trials_global": trials,
        "num_trials_per_iter": per_iter,
        "strategy": strategy,
        "seed": seed,
        "runner": runner,
        "builder": builder,
        "measure_callbacks": callbacks,
        "database": database,
    }
    if workload.is_relax:
        return ms.relax_integration.tune_relax(
            relax_tuning_module(workload, target), {}, target, work_dir, **common
        )
    return ms.tir_integration.tune_tir(workload.mod, target, work_dir, **common)


def relax_tuning_module(workload: Workload, target: Any) -> Any:
    """A Relax workload with its weights bound and its operators legalized and fused.

    ``tune_relax`` extracts a task per fused TIR function, and ``compile_relax`` looks kernels
    up after these same passes, so the tuned kernels are the ones the compiled model runs.
    """
    import tvm
    from tvm import relax
    from tvm.relax import pipeline

    params = {k: tvm.runtime.tensor(v) for k, v in (workload.params or {}).items()}
    mod = relax.transform.BindParams("main", params)(workload.mod) if params else workload.mod
    try:
        dispatch = pipeline.library_dispatch_passes(target)
    except (ValueError, AttributeError):
        dispatch = []
    passes = [
        *dispatch,
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]
    with target:
        return tvm.transform.Sequential(passes)(mod)


def compile_best(workload: Workload, database: Any, target: Any) -> Any:
    """Build the best tuned program: a runtime module (TIR) or a Relax VM executable."""
    import tvm
    from tvm.s_tir import meta_schedule as ms

    if workload.is_relax:
        params = {k: tvm.runtime.tensor(v) for k, v in (workload.params or {}).items()}
        return ms.relax_integration.compile_relax(database, workload.mod, target, params)
    sch = ms.tir_integration.compile_tir(database, workload.mod, target)
    if sch is None:
        raise RuntimeError(f"the database holds no valid schedule for {workload.name}")
    return tvm.compile(sch.mod, target=target)


def _reference_output(workload: Workload, inputs: list[np.ndarray], target: Any) -> np.ndarray:
    if workload.numpy_reference is not None:
        return workload.numpy_reference(inputs)
    import tvm

    untuned = tvm.compile(workload.mod, target=target)
    return _run_tir(untuned, workload, inputs)[0]


def _run_tir(
    executable: Any, workload: Workload, inputs: list[np.ndarray], dev: Any = None
) -> tuple:
    import tvm

    dev = dev if dev is not None else tvm.cpu()
    shape, dtype = output_shape(workload)
    args = [tvm.runtime.tensor(x, dev) for x in inputs]
    out = tvm.runtime.tensor(np.zeros(shape, dtype), dev)
    executable["main"](*args, out)
    return out.numpy(), [*args, out]


def run_and_time(
    workload: Workload, executable: Any, target: Any, *, number: int = 10, repeat: int = 5
) -> tuple[np.ndarray, float, list[np.ndarray]]:
    """Run the compiled program; return its output, median latency (s) and its inputs."""
    import tvm

    dev = tvm.cpu()
    inputs = random_inputs(workload)
    if workload.is_relax:
        vm = tvm.relax.VirtualMachine(executable, dev)
        args = [tvm.runtime.tensor(x, dev) for x in inputs]
        output = vm["main"](*args).numpy()
        timer = vm.time_evaluator("main", dev, number=number, repeat=repeat)
        results = timer(*args).results
    else:
        output, args = _run_tir(executable, workload, inputs)
        timer = executable.jit().time_evaluator("main", dev, number=number, repeat=repeat)
        results = timer(*args).results
    return output, float(np.median(results)), inputs


def tune_and_check(
    workload: Workload,
    target: Any,
    *,
    trials: int,
    per_iter: int,
    strategy: Any,
    strategy_name: str,
    work_dir: str,
    seed: int | None = None,
    runner: Any = None,
    builder: Any = None,
    stop: GracefulStop | None = None,
    progress: bool = False,
) -> TuneResult:
    """Tune, compile, check against the reference and time one workload.

    ``trials`` is the job's whole budget: records that ``work_dir`` already holds for this
    workload and target count towards it, so an interrupted job run again with the same
    arguments tunes only what is left (and droplet measures no recorded program again).
    ``stop`` ends the tuning between batches on a signal; ``progress`` shows a bar (plain
    lines when standard error is not a terminal).

    Raises
    ------
    UserInputError
        When ``work_dir`` cannot be written, its database is corrupt, or its records of this
        workload were all tuned for another target.
    """
    from .inputs import check_target_of_records
    from .workdir import count_records, open_database, task_modules

    database = open_database(work_dir)
    mods = task_modules(workload, target)
    resumed_from = count_records(database, mods, target)
    if resumed_from == 0:
        check_target_of_records(database, mods, target, work_dir)
    remaining = max(0, trials - resumed_from)
    callbacks: list[Any] = [stop.callback()] if stop is not None else []
    callbacks += _tvm.default_measure_callbacks()
    if progress:
        callbacks.append(progress_callback(remaining))
    start = time.perf_counter()
    if remaining > 0:
        tune(
            workload,
            target,
            trials=remaining,
            per_iter=per_iter,
            strategy=strategy,
            work_dir=work_dir,
            seed=seed,
            runner=runner,
            builder=builder,
            callbacks=callbacks,
            database=database,
        )
    tuning_seconds = time.perf_counter() - start
    executable = compile_best(workload, database, target)
    output, latency, inputs = run_and_time(workload, executable, target)
    expected = _reference_output(workload, inputs, target)
    error = float(np.max(np.abs(output.astype("float64") - expected.astype("float64"))))
    tolerance = 1e-3 * max(1.0, float(np.max(np.abs(expected))))
    return TuneResult(
        workload=workload.name,
        strategy=strategy_name,
        trials=trials,
        records=count_records(database, task_modules(workload, target), target),
        resumed_from=resumed_from,
        tuning_seconds=tuning_seconds,
        latency_us=latency * 1e6,
        gflops=workload.flops / latency / 1e9,
        max_abs_error=error,
        reference="numpy" if workload.numpy_reference is not None else "untuned TVM build",
        correct=bool(error <= tolerance),
    )


def recorded_trials(workload: Workload, target: Any, work_dir: str) -> int:
    """Records (failures included) of ``workload`` on ``target`` in ``work_dir``'s database."""
    from .workdir import count_records, open_database, task_modules

    return count_records(open_database(work_dir), task_modules(workload, target), target)


def build_without_intrinsics(mod: Any, target: Any, params: Any) -> Any:
    """MetaSchedule's ``default_build`` minus its ``import tvm.s_tir.tensor_intrin``.

    TVM 0.27's default build function imports every tensor intrinsic in each fresh builder
    worker, which parses hundreds of TVMScript functions: about 20 s per batch on a 2-core
    machine, more than building the batch itself. Tensorized programs do not need that registry
    at build time (tensorization has already inlined the intrinsics), so builders that start a
    pool per batch (LocalBuilder does) save that time without changing what is built.
    """
    from tvm.driver import build as tvm_build
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    del params  # MetaSchedule passes None for TIR workloads, as default_build requires
    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm_build(mod, target=target)


def fast_local_builder(max_workers: int | None = None) -> Any:
    """A LocalBuilder using :func:`build_without_intrinsics`."""
    from tvm.s_tir import meta_schedule as ms

    return ms.builder.LocalBuilder(max_workers=max_workers, f_build=build_without_intrinsics)
