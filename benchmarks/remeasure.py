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
"""Re-measure the final best schedule of every run in one fresh process, interleaved.

Run as ``python -m benchmarks.remeasure OUT_DIR``: it reads every ``run.json`` under OUT_DIR,
compiles each run's best schedule from its database, then times all of them round-robin
(``rounds`` rounds, same inputs per workload), numpy's GEMM of every GEMM workload among them
(:mod:`.reference`), and writes ``OUT_DIR/remeasure.json`` with the latency of each.
Tuning-time figures come from different moments of a noisy machine; these come from one
session and are the ones the report compares.

Each round takes the fastest of a few repeats, and the latency is the median of those over the
rounds. On a 2-core machine every interruption of one of the kernel's two threads slows the
whole kernel, so noise only ever adds time: the minimum of a round drops those interruptions,
and the median over rounds drops the rare lucky or unlucky round. (A plain median over single
repeats spread 9% between rounds here, more than the differences a comparison must resolve.)

Each latency keeps the ``spread`` of its rounds (interquartile range over median), which says
how quiet the machine was while re-measuring (:func:`rounds_summary`);
:func:`~benchmarks.tuning_runs.remeasure_in_child` repeats a re-measure in which some spread
passes :data:`NOISY_SPREAD`.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from .reference import blas_info, gemm_shape, gemm_timer

# Repeats (each at least 50 ms long) per round; a round's figure is the fastest of them.
_REPEATS_PER_ROUND = 3
_NUMPY_PREFIX = "numpy "
# Spread of a latency's rounds (interquartile range over median) above which the machine was too
# busy while re-measuring for its ratios to stand: quiet processes spread a model's rounds by 2%
# and a kernel's by 5% at most (2026-12-05, 2026-12-06; benchmarks/RESULTS.md).
NOISY_SPREAD = 0.05


def rounds_summary(samples: list[float]) -> dict[str, Any]:
    """The latency of a re-measure's rounds (their median), their spread, and the rounds."""
    median = statistics.median(samples)
    lower, _, upper = (
        statistics.quantiles(samples, n=4, method="inclusive")
        if len(samples) > 1
        else (median, median, median)
    )
    return {"latency_s": median, "spread": (upper - lower) / median, "samples": samples}


def worst_spread(results: dict[str, dict]) -> float:
    """The largest spread of any latency in one re-measure: how busy the machine was."""
    return max((entry.get("spread", 0.0) for entry in results.values()), default=0.0)


def remeasure(out_dir: Path, rounds: int) -> dict[str, dict]:
    """Latency (s) of every run's best schedule: median over rounds of each round's fastest."""
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.job import _run_tir, host_target
    from ms_droplet.workloads import parse_workload, random_inputs

    entries = {}
    for path in sorted((out_dir / "runs").glob("*/run.json")):
        run = json.loads(path.read_text())
        workload = parse_workload(run["spec"]["workload"])
        # Runs recorded their target from the CUDA comparison on; earlier ones tuned the host.
        target = tvm.target.Target(run["target"]) if "target" in run else host_target()
        on_gpu = target.kind.name == "cuda"
        dev = tvm.cuda(0) if on_gpu else tvm.cpu()
        database = ms.database.JSONDatabase(work_dir=run["work_dir"])
        sch = ms.tir_integration.compile_tir(database, workload.mod, target)
        if sch is None:
            entries[run["run_id"]] = {"error": "no valid schedule in the database"}
            continue
        executable = tvm.compile(sch.mod, target=target)
        _, args = _run_tir(executable, workload, random_inputs(workload), dev)
        timer = executable.jit().time_evaluator(
            "main", dev, number=1, repeat=_REPEATS_PER_ROUND, min_repeat_ms=50
        )
        entries[run["run_id"]] = {"timer": lambda t=timer, a=args: t(*a).results, "samples": []}
        shape = gemm_shape(run["spec"]["workload"])
        reference = numpy_key(run["spec"]["workload"])
        # numpy's GEMM is a reference for a CPU kernel, not for a GPU's.
        if shape is not None and not on_gpu and reference not in entries:
            timer = gemm_timer(*shape, repeats=_REPEATS_PER_ROUND)
            entries[reference] = {"timer": timer, "samples": []}
    for _ in range(rounds):
        for entry in entries.values():
            if "timer" in entry:
                entry["samples"].append(min(entry["timer"]()))
    results = {
        run_id: rounds_summary(e["samples"]) if "samples" in e else e
        for run_id, e in entries.items()
    }
    for key, entry in results.items():
        if key.startswith(_NUMPY_PREFIX):
            entry["blas"] = blas_info()
    return results


def numpy_key(workload: str) -> str:
    """Key of numpy's reference for a GEMM workload in ``remeasure.json``."""
    return _NUMPY_PREFIX + workload


def main(argv: list[str]) -> int:
    """Entry point: OUT_DIR [ROUNDS]."""
    out_dir = Path(argv[0])
    rounds = int(argv[1]) if len(argv) > 1 else 5
    results = remeasure(out_dir, rounds)
    (out_dir / "remeasure.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
