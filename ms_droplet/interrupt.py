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
comes back, before any of its records is written: a batch is recorded whole or not at all. A
second signal stops at once, as Python's default does.

A Ctrl-C typed in a terminal reaches the whole process group, MetaSchedule's builder and runner
workers included: they would die mid-batch, each printing a ``KeyboardInterrupt`` traceback
(the builder starts new workers for every batch, so a Ctrl-C often lands while one is still
importing TVM). While a :class:`GracefulStop` is active, the main thread therefore blocks
SIGINT, so that the threads it starts, and the worker processes those threads start, begin with
SIGINT blocked: the batch in flight completes undisturbed. The SIGINT goes to another thread;
Python's C-level handler writes its number to the wakeup file descriptor, where a listener
thread reads it and acts at once, even while the main thread waits on a batch.
"""

from __future__ import annotations

import _thread
import os
import select
import signal
import sys
import threading
from types import FrameType
from typing import Any

from . import _tvm


class GracefulStop:
    """A context manager that turns SIGINT and SIGTERM into a request to stop.

    ``with GracefulStop() as stop: tune(..., callbacks=[stop.callback(), *defaults])``; after an
    exception out of tuning, :attr:`signal_name` says whether a signal caused it.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}
        self._previous_mask: set[int] | None = None
        self._previous_wakeup_fd = -1
        self._wakeup: tuple[int, int] | None = None
        self._listener: threading.Thread | None = None
        self._interrupt_main = False

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is not threading.main_thread():
            return self
        # A signal ignored on entry stays ignored: a process started with nohup, or with & from
        # a script, is meant to outlive the terminal's Ctrl-C, and its workers with it.
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
            self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handle)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            return self
        if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks, no shielding
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)
            return self
        self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle_in_main)
        self._wakeup = os.pipe()
        for fd in self._wakeup:
            os.set_blocking(fd, False)
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._wakeup[1], warn_on_full_buffer=False)
        self._previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        self._listener = threading.Thread(
            target=self._listen, args=(self._wakeup[0],), name="ms_droplet-sigint", daemon=True
        )
        self._listener.start()
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
        """Ask to stop on a first signal, stop at once on the next.

        The main thread's handler for SIGTERM, and for SIGINT where signals cannot be masked.
        """
        del frame
        if self.signal_name is not None:
            self._restore()
            raise KeyboardInterrupt
        self._request(signum)

    def _handle_in_main(self, signum: int, frame: FrameType | None) -> None:
        """The main thread's SIGINT handler: the listener decides, this only raises for it."""
        del signum, frame
        if self._interrupt_main:
            self._restore()
            raise KeyboardInterrupt

    def _request(self, signum: int) -> None:
        self.signal_name = signal.Signals(signum).name
        print(
            f"ms-droplet: {self.signal_name} received: stopping when the batch in flight comes "
            f"back (send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    def _listen(self, wakeup_fd: int) -> None:
        """Act on each SIGINT as it arrives (runs in the listener thread)."""
        # A recipient for SIGINT, whatever threads the process has: this one.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        while True:
            select.select([wakeup_fd], [], [])
            try:
                received = os.read(wakeup_fd, 512)
            except BlockingIOError:
                continue
            if not received:  # _restore closed the write end: the stop is over
                return
            for _ in range(received.count(signal.SIGINT)):
                if self.signal_name is None:
                    self._request(signal.SIGINT)
                    continue
                # At once: the main thread waits on the batch's workers, so end them first.
                end_worker_processes()
                self._interrupt_main = True
                _thread.interrupt_main(signal.SIGINT)
                return

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._wakeup is None:
            return
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        if self._previous_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._previous_mask)
        # Closing the write end wakes the listener with end of file.
        os.close(self._wakeup[1])
        if self._listener is not None and self._listener is not threading.current_thread():
            self._listener.join()
        os.close(self._wakeup[0])
        self._wakeup = self._listener = None


def end_worker_processes() -> None:
    """End the builder and runner workers (every child process) this process started.

    MetaSchedule shuts its worker pools down when a batch completes; when tuning ends inside a
    batch (a signal, a failure), pools can be left whose workers never see their parent go and
    would outlive the command.
    """
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass


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
