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
"""What a user hands the ``ms-droplet`` command, checked before any tuning starts.

Targets, work_dirs and the database files in them are where people slip: TVM 0.27 dropped the
old target strings, MetaSchedule needs ``num-cores`` on CPU targets, and a database edited by
hand or written for another machine fails deep inside TVM. Each check here raises
:class:`UserInputError` with one message that names the problem and the fix.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._tvm import IRModule, Target

# The two files of the JSON database tune_tir/tune_relax keep in their work_dir.
WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"


class UserInputError(ValueError):
    """A mistake in what the user asked for; the message says what and how to fix it."""


def target_from_text(text: str) -> Target:
    """The TVM target a ``--target`` value names: JSON, a kind or a tag.

    Raises
    ------
    UserInputError
        For the old ``"llvm -mcpu=..."`` form (with the JSON to type instead), invalid JSON,
        an unknown kind, an LLVM ``mcpu`` this LLVM does not know, or a CPU target without the
        ``num-cores`` MetaSchedule needs.
    """
    from . import _tvm

    text = text.strip()
    if not text:
        raise UserInputError('--target is empty: give a JSON dict such as {"kind": "llvm", ...}')
    if text.startswith("{"):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserInputError(f"--target is not valid JSON ({err.msg}): {text}") from None
    elif any(c.isspace() for c in text):
        raise UserInputError(
            f"target strings such as '{text}' are gone from TVM 0.27: give the target as a JSON "
            f"dict, here --target '{json.dumps(_config_of_string(text))}'"
        )
    else:
        if "/" in text:  # a tag such as nvidia/geforce-rtx-3090: TVM expands it
            return _target(text, text)
        config = {"kind": text}
    if not isinstance(config, dict) or "kind" not in config:
        raise UserInputError(
            f'--target must be a JSON dict with a "kind", such as {{"kind": "llvm", '
            f'"num-cores": 4}}; got {text}'
        )
    kinds = [str(kind) for kind in _tvm.Target.list_kinds()]
    if config["kind"] not in kinds:
        close = difflib.get_close_matches(str(config["kind"]), kinds, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UserInputError(
            f"unknown target kind '{config['kind']}'.{hint} TVM knows: {', '.join(sorted(kinds))}"
        )
    target = _target(config, text)
    if target.kind.name == "llvm":
        _check_cpu_target(target, config)
    return target


def _target(config: Any, text: str) -> Target:
    from . import _tvm

    try:
        return _tvm.Target(config)
    except (ValueError, TypeError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserInputError(f"TVM cannot make a target of {text}: {reason}") from None


def _check_cpu_target(target: Target, config: dict[str, Any]) -> None:
    from . import _tvm

    attrs = target.attrs
    mcpu = str(attrs["mcpu"]) if "mcpu" in attrs else ""
    triple = str(attrs["mtriple"]) if "mtriple" in attrs else _tvm.host_triple()
    if mcpu and not _tvm.is_valid_cpu(mcpu, triple):
        raise UserInputError(
            f"LLVM does not know the CPU '{mcpu}' (mcpu) for {triple}; this machine's is "
            f"'{_tvm.host_cpu()}'"
        )
    if "num-cores" not in attrs:
        import psutil

        cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
        fixed = {**config, "num-cores": cores}
        raise UserInputError(
            f"MetaSchedule needs \"num-cores\" in a CPU target: --target '{json.dumps(fixed)}' "
            f"({cores} physical cores on this machine)"
        )


def _config_of_string(text: str) -> dict[str, Any]:
    """The JSON dict an old target string meant: ``"llvm -mcpu=x -num-cores=2"``."""
    words = shlex.split(text)
    config: dict[str, Any] = {"kind": words[0]}
    rest = words[1:]
    index = 0
    while index < len(rest):
        word = rest[index].lstrip("-")
        key, sep, value = word.partition("=")
        if not sep and index + 1 < len(rest) and not rest[index + 1].startswith("-"):
            value, index = rest[index + 1], index + 1
        config[key] = _attribute_value(value) if (sep or value) else True
        index += 1
    return config


def _attribute_value(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        # A comma-separated value is a list attribute (-mattr=+avx2,+fma, -keys=cpu,arm).
        return value.split(",") if "," in value else value


def check_work_dir(work_dir: str | Path) -> Path:
    """Create ``work_dir`` if needed and make sure it can be written; return it.

    Raises
    ------
    UserInputError
        When it is a file, cannot be created, or cannot be written.
    """
    path = Path(work_dir)
    if path.exists() and not path.is_dir():
        raise UserInputError(f"work_dir {path} is a file, not a directory: choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(f"cannot create work_dir {path}: {err.strerror}") from None
    probe = path / ".ms_droplet_write_check"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserInputError(f"cannot write to work_dir {path}: {err.strerror}") from None
    return path


def check_database_files(work_dir: str | Path) -> None:
    """Check the JSON database of a work_dir line by line, before TVM loads it.

    A last line without its newline is a record a killed run left half-written; it is allowed
    (:func:`ms_droplet.workdir.open_database` drops it). Missing files are allowed together (a
    new work_dir), not one without the other.

    Raises
    ------
    UserInputError
        Naming the file and line that is not a MetaSchedule database line.
    """
    workloads, records = Path(work_dir) / WORKLOAD_FILE, Path(work_dir) / RECORD_FILE
    if workloads.exists() != records.exists():
        present, missing = (workloads, records) if workloads.exists() else (records, workloads)
        raise UserInputError(
            f"{missing} is missing beside {present}: a MetaSchedule database is both files; "
            f"restore it or use another work_dir"
        )
    if not workloads.exists():
        return
    count = _check_lines(workloads, _workload_problem, None)
    _check_lines(records, _record_problem, count)


def _check_lines(path: Path, problem_of: Any, workload_count: int | None) -> int:
    """Check each whole line of ``path``; the number of whole lines."""
    content = path.read_bytes()
    lines = content.split(b"\n")
    whole = lines[:-1]  # the piece after the last newline is empty, or cut by a killed run
    for number, line in enumerate(whole, 1):
        if not line.strip():
            continue
        try:
            problem = problem_of(json.loads(line), workload_count)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            problem = f"not JSON ({getattr(err, 'msg', err)})"
        if problem:
            raise UserInputError(
                f"{path}, line {number}: {problem}; the database is corrupt there: remove that "
                f"line (or restore the file) to use this work_dir"
            )
    return len(whole)


def _workload_problem(entry: Any, _: int | None) -> str | None:
    if not (
        isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)
    ):
        return "not a workload entry ([structural hash, module])"
    return None


def _record_problem(entry: Any, workload_count: int | None) -> str | None:
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
        return "not a tuning record ([workload index, [trace, run_secs, target, args]])"
    index = entry[0]
    if not isinstance(index, int) or not 0 <= index < (workload_count or 0):
        return f"workload index {index!r} is not one of the {workload_count} workloads"
    if len(entry[1]) < 4 or not isinstance(entry[1][2], dict):
        return "a tuning record needs a trace, run_secs, a target and argument info"
    return None


def check_target_of_records(
    database: Any, mods: list[IRModule], target: Target, work_dir: str | Path
) -> None:
    """Refuse a work_dir whose records of these tasks were all tuned for another target.

    Resuming there would start from nothing and mix two machines' records in one database;
    the user most likely typed another target (or moved machines) by mistake.

    Raises
    ------
    UserInputError
        Showing the target the records were tuned for.
    """
    from .adapters.database import DatabaseAdapter, target_key

    others: dict[str | None, Any] = {}
    for mod in mods:
        adapter = DatabaseAdapter(database, mod, target)
        if adapter.records():
            return
        if adapter.stats.other_targets:
            for record in adapter.all_records():
                others.setdefault(target_key(record.target), record.target)
    if others:
        recorded = json.dumps(dict(next(iter(others.values())).export()), default=str)
        raise UserInputError(
            f"{work_dir} holds records of this workload for another target ({recorded}), none "
            f"for {json.dumps(dict(target.export()), default=str)}: pass that target with "
            f"--target to resume, or use another work_dir"
        )
