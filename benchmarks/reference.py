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
"""numpy (OpenBLAS) GEMM, the practical ceiling of this machine, timed beside the kernels.

The re-measurement process (:mod:`.remeasure`) times numpy's GEMM in the same rounds as the
tuned kernels: on a shared machine the speed available moves by tens of percent over minutes
(numpy's 512^3 GEMM measured 120 and 187 GFLOP/s a minute apart here), so only a reference
taken in the same rounds gives a meaningful fraction. That process starts without
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (this workplace sets them, and they force OpenBLAS's AVX2
kernel on AVX-512 CPUs), and the kernel OpenBLAS actually runs is reported as threadpoolctl
names it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def gemm_shape(workload: str) -> tuple[int, int, int] | None:
    """``(m, n, k)`` of a ``GMM:INDEX`` workload of TVM's te_workload table, else None."""
    name, _, index = workload.partition(":")
    if name != "GMM":
        return None
    from tvm.s_tir.meta_schedule.testing import te_workload

    _batch, n, m, k = te_workload.CONFIGS["GMM"][1][int(index)][:4]
    return n, m, k


def blas_info() -> dict | None:
    """The BLAS numpy runs: library, kernel architecture and threads (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return None
    return {key: blas[0].get(key) for key in ("internal_api", "architecture", "num_threads")}


def gemm_timer(
    m: int, n: int, k: int, repeats: int, min_repeat_seconds: float = 0.05
) -> Callable[[], list[float]]:
    """A callable timing float32 ``(m, k) @ (k, n)`` like TVM's ``time_evaluator``.

    Each call returns ``repeats`` mean times per product, each averaged over enough products
    to last ``min_repeat_seconds``.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype="float32")
    b = rng.standard_normal((k, n), dtype="float32")
    a @ b  # warm-up: thread pool start and page faults
    start = time.perf_counter()
    a @ b
    number = max(1, math.ceil(min_repeat_seconds / max(time.perf_counter() - start, 1e-9)))

    def timer() -> list[float]:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(number):
                a @ b
            times.append((time.perf_counter() - start) / number)
        return times

    return timer
