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
"""Stopping a tuning run cleanly on Ctrl-C (SIGINT) or SIGTERM.

MetaSchedule's task scheduler runs in C++ and commits a batch's records to the database one by
one in its first measure callback. Python only sees a signal when the scheduler calls back into
Python, so :class:`GracefulStop` turns the first SIGINT or SIGTERM into a request, and its
measure callback, placed before MetaSchedule's own, ends the tuning when the batch in flight
comes back, before any of its records is written: a batch is recorded whole or not at all (a
Ctrl-C typed in a terminal also reaches the builder and runner workers, whose batch is then
measured wrong). A second signal stops at once, as Python's default does.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

from . import _tvm

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """A context manager that turns SIGINT and SIGTERM into a request to stop.

    ``with GracefulStop() as stop: tune(..., callbacks=[stop.callback(), *defaults])``; after an
    exception out of tuning, :attr:`signal_name` says whether a signal caused it.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()

    @property
    def requested(self) -> bool:
        """Whether a signal asked the run to stop."""
        return self.signal_name is not None

    def callback(self) -> _tvm.MeasureCallback:
        """The measure callback that ends tuning once a stop is requested (put it first)."""
        return _StopBeforeRecording(self)

    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal received (128 + its number)."""
        return 128 + int(getattr(signal, self.signal_name or "SIGINT"))

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.signal_name is not None:
            self._restore()
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        print(
            f"ms-droplet: {self.signal_name} received: stopping when the batch in flight comes "
            f"back (send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


class TuningStopped(RuntimeError):
    """Raised by the stop callback; TVM re-raises it as a RuntimeError with this message."""


@_tvm.derived_object
class _StopBeforeRecording(_tvm.PyMeasureCallback):
    """Ends tuning, before the batch's records are written, once a stop is requested."""

    def __init__(self, stop: GracefulStop) -> None:
        self.stop = stop

    def apply(self, task_scheduler: Any, task_id: int, *results: Any) -> None:
        """Raise :class:`TuningStopped` if a signal arrived; else let the batch be recorded."""
        del task_scheduler, results
        if self.stop.requested:
            raise TuningStopped(
                f"tuning stopped by {self.stop.signal_name}; task {task_id}'s batch in flight "
                f"was dropped"
            )
