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
"""Provenance: which phase of droplet search produced each measured program.

MetaSchedule's JSON database has no room for it, and its files must stay readable by stock TVM,
so the provenance goes to a side file beside the database's tuning-record file (the work_dir of
``tune_tir``/``tune_relax``): ``droplet_provenance.jsonl``, one JSON object per measured
candidate::

    {"task": "main", "workload": "9f3c...", "program": "1a2b...", "phase": "descent",
     "trial": 17, "latency_s": 0.00123}

``program`` is the structural hash of the post-processed module (replaying a record's trace onto
its workload gives it back), ``workload`` the structural hash of the task's module, ``phase`` one
of ``explore``, ``descent``, ``restart``, ``warm-start`` and ``control`` (a descent's centre
measured again, option ``control``), ``trial`` the task's trial count at that candidate
(1-based), ``latency_s`` the mean run time or ``null`` for a failure. Databases
without files (memory, union, most of a user's ``PyDatabase``) keep no side file.

The database stays the record of what was measured: a run killed between this file's write and
the database's can leave an entry whose program has no record (measured again on resume, it
gets a second entry), so readers match entries to records by program and take the last.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PROVENANCE_FILE = "droplet_provenance.jsonl"


def provenance_path(database: Any) -> Path | None:
    """The side file of a database that lives in files, else ``None``."""
    record_file = getattr(database, "path_tuning_record", None)
    if not record_file:
        return None
    return Path(str(record_file)).parent / PROVENANCE_FILE


class ProvenanceLog:
    """Appends provenance lines for one task.

    Parameters
    ----------
    path : Optional[Path]
        The side file; ``None`` writes nothing.
    task_name : str
        The task's name.
    workload_hash : int
        Structural hash of the task's module.
    """

    def __init__(self, path: Path | None, task_name: str, workload_hash: int) -> None:
        self.path = path
        self.task_name = task_name
        self.workload = f"{workload_hash:016x}"

    def write(self, entries: Iterable[tuple[int, str, int, float | None]]) -> None:
        """Append (program hash, phase, trial, mean latency or None) entries as one write."""
        if self.path is None:
            return
        lines = [
            json.dumps(
                {
                    "task": self.task_name,
                    "workload": self.workload,
                    "program": f"{program:016x}",
                    "phase": phase,
                    "trial": trial,
                    "latency_s": latency,
                }
            )
            + "\n"
            for program, phase, trial, latency in entries
        ]
        try:
            with open(self.path, "a", encoding="utf-8") as side_file:
                side_file.write("".join(lines))
        except OSError as err:  # losing provenance must not lose the tuning run
            logger.warning("cannot write droplet provenance to %s: %s", self.path, err)
            self.path = None


def read_provenance(path: Path) -> Iterator[dict]:
    """The entries of a provenance file, skipping a line cut short by a killed run."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as side_file:
        for line in side_file:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
