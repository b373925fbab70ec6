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
"""Where a benchmark ran: date, commit, CPU and versions, for the report's header."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def environment() -> dict:
    """Date, commit, CPU, machine, TVM and Python versions of this run, and the runtime's threads.

    ``runtime_threads`` is how many threads TVM's runtime runs a parallel loop on here, which the
    runners and the re-measure inherit: without ``TVM_NUM_THREADS`` TVM takes half the logical
    CPUs on x86 (it assumes hyper-threading), so on a 2-core machine without it one thread runs
    kernels compiled for the target's two cores (benchmarks/RESULTS.md, "TVM's runtime threads").
    """
    import tvm

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "cpu": tvm.target.codegen.llvm_get_system_cpu(),
        "machine": platform.processor() or platform.machine(),
        "tvm": tvm.__version__,
        "python": platform.python_version(),
        "runtime_threads": tvm.runtime.num_threads(),
        "TVM_NUM_THREADS": os.environ.get("TVM_NUM_THREADS"),
    }


def tuned_commit(runs: list[dict], variant: str = "droplet") -> str:
    """The commit of ``ms_droplet/`` that ``variant``'s runs were tuned with, as they recorded it.

    A summary may be written long after its runs were tuned (a benchmark resumes finished runs),
    so the commit comes from the runs, not from the checkout that writes the summary. A run's
    variant is its method with its options (end to end), or its method (per kernel, one droplet
    per profile). Runs tuned on different commits give them all, comma-separated; runs that
    recorded none (tuned before runs recorded it) give ``"unknown"``.
    """
    commits = sorted(
        {
            run.get("commit") or "unknown"
            for run in runs
            if run.get("variant", run["spec"]["method"]) == variant
        }
    )
    return ", ".join(commits) if commits else "unknown"


# What a tuning run executes: the package, less the generator of the upstream patch and its PR
# description (imported only by `ms-droplet upstream`), whose edits change no measured figure.
MEASURED_PATHS = ("ms_droplet", ":(exclude)ms_droplet/upstream")


def measured_commit(root: Path = ROOT) -> str:
    """The last commit that changed the measured code, ``+dirty`` when it has uncommitted edits.

    The measured code is ``ms_droplet/`` less ``ms_droplet/upstream/`` (:data:`MEASURED_PATHS`):
    the figures describe the strategy's code, so a later change to it visibly outdates them,
    while a correction of the PR description's text or of the patch's generator does not.
    ``root`` is the repository's working tree.
    """
    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", *MEASURED_PATHS],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *MEASURED_PATHS],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (commit or "unknown") + ("+dirty" if dirty else "")
