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
"""Re-measure every end-to-end run's compiled model in one fresh process, interleaved.

Run as ``python -m benchmarks.e2e_remeasure OUT_DIR [ROUNDS]``: it compiles each run's model
with its database (``compile_relax``, the way a user deploys the tuned model), checks its output
against the untuned build of the same model on the same inputs, times every model round by round
with the Relax VM's ``time_evaluator`` (a round's figure is the fastest of a few repeats, the
latency the median over rounds, as :mod:`.remeasure` does for kernels) and writes
``OUT_DIR/remeasure.json``. In the same rounds it times each task's best program alone (the one
``compile_relax`` takes from the run's database), so that the per-task comparison also rests on
kernels measured together: the tuning-time records are not. In the gradient scheduler's first
round a task's batch is measured while the next task's is searched and built (its log shows no
task updated before the round ends), and on a 2-core machine that slows what it measures:
re-measured alone, evolutionary search's records on the transformer were 3.9 - 6.7% pessimistic
in sum over the tasks, droplet's 0.2 - 1.5% (benchmarks/RESULTS.md).

Ratios of models re-measured together are only as good as the machine was quiet. In the
re-measures of 2026-12-05 and of the morning of 2026-12-06 a model's rounds spread by at most 2%
(interquartile range over median); later on 2026-12-06 the same machine spread them by up to 21%
(2 - 10% for the median model of a process), and one seed's droplet / evolutionary ratio moved by
up to 12% between four processes re-measuring the same models. Neither the median nor the fastest
round held still: a machine slowed for a whole process slows models unequally, and one model's
fastest round can be the process's one quiet moment. ``spread`` is kept with each latency
(:func:`.remeasure.rounds_summary`), and the harness re-measures in another fresh process while
one passes :data:`.remeasure.NOISY_SPREAD` (three processes at most), reports the quietest (the
quietest of four such processes on 2026-12-06, spreads 1.1 - 3.9%, agreed within 1.3% with a
quiet re-measure of the same seeds that morning), and names every model still above it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .models import bound_module, get_model, tuning_module
from .remeasure import rounds_summary

# Repeats (each at least 50 ms long) per round; a round's figure is the fastest of them.
_REPEATS_PER_ROUND = 3
UNTUNED = "untuned"


def _timer(executable: Any, function: str, inputs: list[np.ndarray]) -> tuple[Any, np.ndarray]:
    """A timing function of the compiled model, and its output on ``inputs``."""
    import tvm

    dev = tvm.cpu()
    vm = tvm.relax.VirtualMachine(executable, dev)
    args = [tvm.runtime.tensor(x, dev) for x in inputs]
    output = vm[function](*args).numpy()
    timer = vm.time_evaluator(function, dev, number=1, repeat=_REPEATS_PER_ROUND, min_repeat_ms=50)
    return (lambda: timer(*args).results), output


def _task_timers(database: Any, extracted: list[Any], target: Any) -> dict[str, Any]:
    """A timing function of each task's best program in ``database``, by task name.

    The program is the one ``compile_relax`` builds into the model (``query_schedule`` on the
    task's dispatched module), timed alone on random inputs like a kernel of :mod:`.remeasure`.
    """
    import tvm
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    dev = tvm.cpu()
    rng = np.random.default_rng(0)
    timers = {}
    for task in extracted:
        sch = database.query_schedule(task.dispatched[0], target, workload_name="main")
        if sch is None:
            continue
        args = [
            tvm.runtime.tensor(
                rng.uniform(-1, 1, size=[int(n) for n in info.shape]).astype(str(info.dtype)), dev
            )
            for info in ArgInfo.from_prim_func(sch.mod["main"])
        ]
        # 20 ms a repeat, not the models' 50: a model has ten or so of these kernels to time
        # each round, and a kernel of microseconds still runs a thousand times in 20 ms.
        timer = (
            tvm.compile(sch.mod, target=target)
            .jit()
            .time_evaluator("main", dev, number=1, repeat=_REPEATS_PER_ROUND, min_repeat_ms=20)
        )
        timers[task.task_name] = lambda t=timer, a=args: t(*a).results
    return timers


def remeasure(out_dir: Path, rounds: int) -> dict[str, dict]:
    """Latency (s) and output error of every run's compiled model, and of the untuned build.

    Each run's entry also has ``tasks``: the latency of each task's best program, timed alone.
    """
    import tvm
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet.job import host_target

    target = host_target()
    runs = [json.loads(p.read_text()) for p in sorted((out_dir / "runs").glob("*/run.json"))]
    entries: dict[str, dict] = {}
    references: dict[str, np.ndarray] = {}
    extracted: dict[str, list[Any]] = {}
    for model_name in sorted({run["spec"]["model"] for run in runs}):
        model = get_model(model_name)
        mod, function = bound_module(model)
        timer, output = _timer(tvm.compile(mod, target=target), function, model.inputs())
        references[model_name] = output
        entries[f"{UNTUNED} {model_name}"] = {"timer": timer, "samples": [], "error": 0.0}
        extracted[model_name] = ms.relax_integration.extract_tasks(
            tuning_module(model, target), target
        )
    kernels: dict[tuple[str, str], dict] = {}
    for run in runs:
        model = get_model(run["spec"]["model"])
        mod, function = bound_module(model)
        database = ms.database.JSONDatabase(work_dir=run["work_dir"])
        with target:
            executable = ms.relax_integration.compile_relax(database, mod, target, None)
        timer, output = _timer(executable, function, model.inputs())
        expected = references[model.name]
        error = float(np.max(np.abs(output.astype("float64") - expected)))
        entries[run["run_id"]] = {"timer": timer, "samples": [], "error": error}
        tasks = _task_timers(database, extracted[model.name], target)
        for task_name, task_timer in tasks.items():
            kernels[run["run_id"], task_name] = {"timer": task_timer, "samples": []}
    for _ in range(rounds):
        for entry in [*entries.values(), *kernels.values()]:
            entry["samples"].append(min(entry["timer"]()))
    results = {}
    for key, entry in entries.items():
        model_name = key.split(" ", 1)[1] if key.startswith(UNTUNED) else key.split("__", 1)[0]
        scale = max(1.0, float(np.max(np.abs(references[model_name]))))
        results[key] = rounds_summary(entry["samples"]) | {
            "max_abs_error": entry["error"],
            "outputs_match": bool(entry["error"] <= 1e-3 * scale),
        }
    for (run_id, task_name), entry in kernels.items():
        results[run_id].setdefault("tasks", {})[task_name] = rounds_summary(entry["samples"])
    return results


def main(argv: list[str]) -> int:
    """Entry point: OUT_DIR [ROUNDS]."""
    out_dir = Path(argv[0])
    rounds = int(argv[1]) if len(argv) > 1 else 10
    results = remeasure(out_dir, rounds)
    (out_dir / "remeasure.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
