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
"""Progress of a tuning run over its global trial budget, one update per measured batch.

A measure callback, so it sees every batch of every task whatever the strategy: on a terminal a
tqdm bar (trials done of the budget, the task just measured and its best), elsewhere (a log
file, CI) one plain line per batch, which tqdm's carriage returns would garble.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from typing import IO, Any

from tqdm import tqdm

from . import _tvm


@dataclass
class TaskProgress:
    """What one task has measured so far."""

    trials: int = 0
    failed: int = 0
    best_seconds: float | None = None


def progress_callback(
    total_trials: int, stream: IO[str] | None = None, bar: bool | None = None
) -> _tvm.MeasureCallback:
    """A measure callback that shows progress over ``total_trials``.

    Parameters
    ----------
    total_trials : int
        The global trial budget of the run.
    stream : IO[str], optional
        Where to write (standard error by default).
    bar : bool, optional
        A bar (``True``) or plain lines (``False``); by default a bar exactly when ``stream``
        is a terminal.
    """
    stream = stream if stream is not None else sys.stderr
    if bar is None:
        bar = stream.isatty()
    return _ProgressCallback(total_trials, stream, bar)


def describe(name: str, progress: TaskProgress, flop: float) -> str:
    """One task's progress as text: trials, failures, best latency and GFLOP/s."""
    text = f"{name}: {progress.trials} trials"
    if progress.failed:
        text += f" ({progress.failed} failed)"
    if progress.best_seconds is not None:
        text += f", best {progress.best_seconds * 1e6:.2f} us"
        if flop > 0:
            text += f" ({flop / progress.best_seconds / 1e9:.2f} GFLOP/s)"
    return text


@_tvm.derived_object
class _ProgressCallback(_tvm.PyMeasureCallback):
    def __init__(self, total_trials: int, stream: IO[str], bar: bool) -> None:
        self.total_trials = total_trials
        self.stream = stream
        self.done = 0
        self.tasks: dict[int, TaskProgress] = {}
        self.bar = None
        if bar:
            # shutil falls back to 80x24 where the terminal reports no size (a bare pty), where
            # tqdm would draw nothing.
            size = shutil.get_terminal_size()
            self.bar = tqdm(
                total=total_trials,
                file=stream,
                unit="trial",
                ncols=size.columns,
                nrows=size.lines,
            )

    def apply(
        self,
        task_scheduler: Any,
        task_id: int,
        measure_candidates: Any,
        builder_results: Any,
        runner_results: Any,
    ) -> None:
        """Count the batch and show the task's best so far."""
        del measure_candidates
        task = task_scheduler.tasks_[task_id]
        progress = self.tasks.setdefault(task_id, TaskProgress())
        for built, ran in zip(builder_results, runner_results):
            progress.trials += 1
            samples = None if built.error_msg else _tvm.run_seconds(ran)
            if samples is None:
                progress.failed += 1
                continue
            latency = sum(samples) / len(samples)
            if progress.best_seconds is None or latency < progress.best_seconds:
                progress.best_seconds = latency
        batch = len(runner_results)
        self.done += batch
        text = describe(f"#{task_id} {task.ctx.task_name}", progress, float(task.flop))
        if self.bar is not None:
            self.bar.update(batch)
            self.bar.set_postfix_str(text, refresh=True)
            if self.done >= self.total_trials:
                self.bar.close()
        else:
            print(f"[{self.done}/{self.total_trials} trials] {text}", file=self.stream, flush=True)
