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
"""A measure callback that records the best-so-far latency after every batch."""

from __future__ import annotations

import math
import time

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback


@derived_object
class BestSoFar(PyMeasureCallback):
    """Record (trials, best latency in seconds, elapsed seconds) after every batch.

    It sits beside MetaSchedule's default callbacks and sees exactly what they see.
    """

    def __init__(self, label: str = "", echo: bool = True) -> None:
        self.label = label
        self.echo = echo
        self.curve: list[tuple[int, float, float]] = []
        self.trials = 0
        self.best = math.inf
        self.start = time.perf_counter()

    def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
        """Fold one measured batch into the curve."""
        for built, ran in zip(builder_results, runner_results):
            self.trials += 1
            if built.error_msg is None and ran.error_msg is None and ran.run_secs:
                secs = [float(getattr(s, "value", s)) for s in ran.run_secs]
                self.best = min(self.best, sum(secs) / len(secs))
        elapsed = time.perf_counter() - self.start
        self.curve.append((self.trials, self.best, elapsed))
        if self.echo:
            print(
                f"  [{self.label}] {self.trials} trials, best {self.best * 1e6:.2f} us, "
                f"{elapsed:.0f} s",
                flush=True,
            )
