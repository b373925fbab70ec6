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
"""numpy (OpenBLAS) GEMM throughput, the practical ceiling of this machine.

Run as ``python -m benchmarks.reference M N K`` in a child process: the parent removes
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from its environment (this workplace sets them and they
force OpenBLAS's AVX2 kernel on AVX-512 CPUs) and this process reports the kernel OpenBLAS
actually runs, as threadpoolctl names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def measure(m: int, n: int, k: int, repeats: int = 20) -> dict:
    """GFLOP/s of float32 ``(m, k) @ (k, n)`` and the BLAS that ran it."""
    import numpy as np
    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype="float32")
    b = rng.standard_normal((k, n), dtype="float32")
    a @ b  # warm-up: thread pool start and page faults
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    best = sorted(times)[len(times) // 2]
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return {
        "gflops": 2.0 * m * n * k / best / 1e9,
        "blas": {key: blas[0].get(key) for key in ("internal_api", "architecture", "num_threads")}
        if blas
        else None,
    }


def in_child(m: int, n: int, k: int) -> dict:
    """Run :func:`measure` in a child process without the OpenBLAS overrides."""
    env = {key: value for key, value in os.environ.items() if key not in OPENBLAS_OVERRIDES}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.reference", str(m), str(n), str(k)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        check=True,
    )
    return json.loads(done.stdout)


if __name__ == "__main__":
    print(json.dumps(measure(*(int(x) for x in sys.argv[1:4]))))
