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
"""TVM's ``tune_te``, unchanged, measuring through TVM's RPC tracker, with droplet as its strategy.

Starts an RPC tracker and ``--servers`` RPC servers on 127.0.0.1 only, runs
``python -m tvm.s_tir.meta_schedule.testing.tune_te`` under ``ms-droplet run`` (through
``tune_te_entry.py``, which only fixes tune_te's final print), and checks that the records
landed in the work_dir's database, that droplet's descent proposed some of them, and that the
servers ran the measurements. Everything it started is stopped on the way out, on failure and
Ctrl-C too. Exits 0 only if every check held.

Example
-------
python integration/rpc_tune_te.py --workload GMM --trials 16
python integration/rpc_tune_te.py --strategy evolutionary    # the same run without droplet
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "ms-droplet-loopback"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_text(path: Path, text: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Wait until ``text`` appears in a log, or fail if its process died or time ran out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"'{text}' did not appear in {path}:\n{path.read_text()[-2000:]}")


def start(command: list[str], log: Path) -> subprocess.Popen:
    """Start a process in its own session, its output in ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(processes: list[subprocess.Popen]) -> None:
    """Terminate every process group started, then kill what is left."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def check(
    work_dir: Path, server_logs: list[Path], trials: int, strategy: str, remote: bool
) -> dict:
    """What landed where: records, droplet's proposals, the servers' sessions."""
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet import _tvm

    records = ms.database.JSONDatabase(work_dir=str(work_dir)).get_all_tuning_records()
    programs = {_tvm.module_hash(r.as_measure_candidate().sch.mod) for r in records}
    proposed: set[int] = set()
    logs = "".join(p.read_text() for p in (work_dir / "logs").glob("*task_*.log"))
    for line in logs.splitlines():
        if "descent programs:" in line:
            proposed.update(int(h, 16) for h in line.split("descent programs:")[1].split())
    sessions = [len(re.findall("load_module", p.read_text())) for p in server_logs]
    measured = sum(1 for r in records if _tvm.valid_seconds(r.run_secs) is not None)
    result = {
        "records": len(records),
        "measured": measured,
        "droplet_batches": logs.count("droplet: batch of"),
        "descent_programs": len(proposed),
        "descent_programs_recorded": len(proposed & programs),
        "server_sessions": sessions,
    }
    droplet_ok = (
        result["droplet_batches"] > 0 and proposed and proposed <= programs
        if strategy == "droplet"
        else result["droplet_batches"] == 0
    )
    result["ok"] = bool(
        len(records) == trials
        and measured > 0
        and (sum(sessions) >= measured if remote else sum(sessions) == 0)
        and droplet_ok
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the integration; print a JSON summary; exit 0 only if every check held."""
    parser = argparse.ArgumentParser(prog="rpc_tune_te.py", description=__doc__)
    parser.add_argument("--workload", default="GMM", help="tune_te's workload (index 0)")
    # tune_te measures 64 candidates a batch, and a descent starts from measured programs:
    # the first batch explores, the rest descend.
    parser.add_argument("--trials", type=int, default=72)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--strategy", choices=("droplet", "evolutionary"), default="droplet")
    parser.add_argument(
        "--runner",
        choices=("rpc", "local"),
        default="rpc",
        help="local: tune_te's RPCRunner becomes a LocalRunner (to measure what RPC costs)",
    )
    parser.add_argument(
        "--builder-timeout",
        type=float,
        help="seconds per build of tune_te's LocalBuilder (default: TVM's 30); each worker's "
        "first build imports every target's tensor intrinsics, 38 s on a 2-core Zen 3",
    )
    parser.add_argument("--work-dir", type=Path, help="default: a temporary folder")
    args = parser.parse_args(argv)
    # SIGTERM (a test's timeout, `kill`) leaves through the clean-up below, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="rpc_tune_te_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    logs = work_dir / "rpc_logs"
    logs.mkdir(exist_ok=True)
    tracker_port = free_port()
    tracker = ["--tracker", f"127.0.0.1:{tracker_port}", "--key", KEY]
    started: list[subprocess.Popen] = []
    python = sys.executable
    try:
        tracker_log = logs / "tracker.log"
        started.append(
            start(
                [
                    *(python, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1"),
                    *("--port", str(tracker_port), "--port-end", str(tracker_port + 1)),
                ],
                tracker_log,
            )
        )
        wait_for_text(tracker_log, "bind to", started[-1])
        server_logs = []
        for index in range(args.servers):
            port = free_port()
            server_logs.append(logs / f"server{index}.log")
            started.append(
                start(
                    [
                        *(python, "-m", "tvm.exec.rpc_server", "--host", "127.0.0.1"),
                        *("--port", str(port), "--port-end", str(port + 1), *tracker),
                    ],
                    server_logs[-1],
                )
            )
            wait_for_text(server_logs[-1], "bind to", started[-1])
        launcher = (
            [python, "-m", "ms_droplet.cli", "run", str(HERE / "tune_te_entry.py")]
            if args.strategy == "droplet"
            else [python, str(HERE / "tune_te_entry.py")]
        )
        tune_te_args = [
            *("--workload", args.workload),
            *("--target", json.dumps({"kind": "llvm", "num-cores": 1})),
            *("--num-trials", str(args.trials)),
            *("--rpc-host", "127.0.0.1", "--rpc-port", str(tracker_port), "--rpc-key", KEY),
            *("--work-dir", str(work_dir), "--cpu-flush", "false"),
        ]
        start_time = time.perf_counter()
        if args.runner == "local":
            os.environ["TUNE_TE_LOCAL_RUNNER"] = "1"
        if args.builder_timeout is not None:
            os.environ["TUNE_TE_BUILDER_TIMEOUT"] = str(args.builder_timeout)
        tuning = start([*launcher, *tune_te_args], logs / "tune_te.log")
        started.append(tuning)
        returncode = tuning.wait()
        seconds = time.perf_counter() - start_time
    finally:
        stop(started)
    result = check(work_dir, server_logs, args.trials, args.strategy, args.runner == "rpc")
    result.update(
        {
            "tune_te_exit": returncode,
            "tuning_seconds": seconds,
            "work_dir": str(work_dir),
            "pids": [process.pid for process in started],
        }
    )
    result["ok"] = result["ok"] and returncode == 0
    print(json.dumps(result))
    if not result["ok"]:
        print((logs / "tune_te.log").read_text()[-3000:], file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
