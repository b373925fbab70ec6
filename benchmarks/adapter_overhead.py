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
"""``python -m benchmarks.adapter_overhead``: what reading a database costs a droplet task.

For each workload, ``--records`` post-processed programs with random decisions (TVM's
``ReplayTrace``) are committed to a JSON database on disk, as a long tuning run leaves them. The
database is then opened afresh, as a resumed run opens it, and the start of a droplet task is
timed in its parts: TVM opening the JSON files, :class:`ms_droplet.adapters.DatabaseAdapter`
identifying every record's program (replay and structural hash), the explorer's target-filtered
view, and training an XGBoost cost model on the known programs. For scale: one measured trial of
these workloads costs 0.3-1 s of tuning on a 2-core machine.

Example
-------
python -m benchmarks.adapter_overhead --workloads GMM:2 C2D:1 CBR:1 --records 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from .environment import environment

ROOT = Path(__file__).resolve().parents[1]


def measure(workload_name: str, records: int) -> dict:
    """Seconds of each part of a task's start on a database of ``records`` records."""
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet import _tvm
    from ms_droplet.adapters import CostModelRanker, DatabaseAdapter
    from ms_droplet.job import host_target
    from ms_droplet.workloads import parse_workload

    workload = parse_workload(workload_name)
    context = ms.TuneContext(
        mod=workload.mod,
        target=host_target(),
        space_generator="post-order-apply",
        search_strategy="replay-trace",
        task_name="main",
        rand_state=0,
        num_threads=1,
    )
    sampler = ms.search_strategy.ReplayTrace()
    sampler._initialize_with_tune_context(context)
    sampler.pre_tuning(records, records, context.generate_design_space())
    candidates = list(sampler.generate_measure_candidates())
    sampler.post_tuning()
    with tempfile.TemporaryDirectory() as folder:
        database = ms.database.JSONDatabase(work_dir=folder)
        token = database.commit_workload(context.mod)
        for index, candidate in enumerate(candidates):
            database.commit_tuning_record(
                ms.database.TuningRecord(
                    candidate.sch.trace,
                    token,
                    [1e-3 * (1 + index % 97 / 97)] * 3,
                    context.target,
                    candidate.args_info,
                )
            )
        start = time.perf_counter()
        reopened = ms.database.JSONDatabase(work_dir=folder)
        open_seconds = time.perf_counter() - start
        adapter = DatabaseAdapter(reopened, context.mod, context.target, "main")
        start = time.perf_counter()
        known = adapter.load()
        load_seconds = time.perf_counter() - start
        start = time.perf_counter()
        adapter.explorer_view(known)
        view_seconds = time.perf_counter() - start
        ranker = CostModelRanker(context, ms.cost_model.XGBModel(num_warmup_samples=0))
        start = time.perf_counter()
        trained = ranker.warm_up([p.candidate for p in known], [p.samples for p in known])
        warm_up_seconds = time.perf_counter() - start
    distinct = len({_tvm.module_hash(c.sch.mod) for c in candidates})
    return {
        "workload": workload_name,
        "records": len(candidates),
        "distinct_programs": distinct,
        "tvm_open_s": open_seconds,
        "adapter_load_s": load_seconds,
        "adapter_load_ms_per_record": 1e3 * load_seconds / max(1, len(candidates)),
        "explorer_view_s": view_seconds,
        "cost_model_warm_up_s": warm_up_seconds,
        "cost_model_trained_on": trained,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure every workload; print a table; write adapter_overhead.json."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adapter_overhead")
    parser.add_argument("--workloads", nargs="+", default=["GMM:2", "C2D:1", "CBR:1"])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out" / "adapter_overhead")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [measure(workload, args.records) for workload in args.workloads]
    header = (
        f"{'workload':<8} {'records':>7} {'TVM open s':>10} {'load s':>7} {'ms/rec':>6} "
        f"{'view s':>6} {'xgb s':>6}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['workload']:<8} {row['records']:>7} {row['tvm_open_s']:>10.2f} "
            f"{row['adapter_load_s']:>7.2f} {row['adapter_load_ms_per_record']:>6.2f} "
            f"{row['explorer_view_s']:>6.2f} {row['cost_model_warm_up_s']:>6.2f}"
        )
    result = {"environment": environment(), "rows": rows}
    (args.out / "adapter_overhead.json").write_text(json.dumps(result, indent=1))
    print(f"\nresults: {args.out / 'adapter_overhead.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
