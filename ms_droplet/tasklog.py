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
"""Log lines of one task, written where MetaSchedule writes that task's own log."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)
_TASK_LOGGER_PREFIX = "tvm.s_tir.meta_schedule.logging.task_"


class TaskLog:
    """Writes a task's lines to this module's logger and to MetaSchedule's task log.

    TuneContext keeps its logger in a field TVM does not expose to Python, but MetaSchedule
    names the per-task loggers ``tvm.s_tir.meta_schedule.logging.task_<i>_<name>`` and writes
    each to ``<work_dir>/logs``; the newest one with this task's name is the task's.

    Parameters
    ----------
    task_name : str
        The tune context's task name.
    """

    def __init__(self, task_name: str) -> None:
        self.task_name = task_name
        self.task_logger = _find_task_logger(task_name)

    def __call__(self, message: str) -> None:
        """Write one line."""
        logger.info(message)
        if self.task_logger is not None:
            self.task_logger.info(message)


def _find_task_logger(task_name: str) -> logging.Logger | None:
    if not task_name:
        return None
    suffix = f"_{task_name}"
    found = None
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(_TASK_LOGGER_PREFIX) and name.endswith(suffix):
            found = name
    return logging.getLogger(found) if found else None
