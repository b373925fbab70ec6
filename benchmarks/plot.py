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
"""PNG plot of best latency against trials, one panel per workload."""

from __future__ import annotations

import math
from pathlib import Path


def plot(runs: list[dict], path: Path, remeasured: dict[str, dict] | None = None) -> None:
    """Draw every run's best-so-far curve (as measured while tuning) into ``path``.

    With ``remeasured`` (run id -> ``{"latency_s": ...}``), a hollow marker at the end of each
    curve shows the latency of the same schedule in the shared re-measurement: the curves keep
    the luckiest of many noisy measurements, the markers are what the report compares.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = sorted({run["spec"]["workload"] for run in runs})
    cols = min(3, len(workloads)) or 1
    rows = math.ceil(len(workloads) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, workload in zip(axes.flat, workloads):
        for run in runs:
            spec = run["spec"]
            if spec["workload"] != workload or not run["curve"]:
                continue
            trials = [point[0] for point in run["curve"]]
            best = [point[1] * 1e6 if math.isfinite(point[1]) else None for point in run["curve"]]
            label = f"{spec['method']} B={spec['budget']} s{spec['seed']}"
            (line,) = ax.plot(trials, best, marker=".", label=label)
            latency = (remeasured or {}).get(run["run_id"], {}).get("latency_s")
            if latency:
                ax.plot(
                    [trials[-1]],
                    [latency * 1e6],
                    marker="o",
                    markersize=8,
                    markerfacecolor="none",
                    color=line.get_color(),
                )
        ax.set_title(workload)
        ax.set_xlabel("trials")
        ax.set_ylabel("best latency (us); o: re-measured")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(workloads) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
