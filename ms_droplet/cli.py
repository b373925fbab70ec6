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
"""The ``ms-droplet`` command.

``ms-droplet tune GMM:2 --trials 128`` tunes a workload of TVM's ``te_workload`` table (or the
built-in Relax model ``mlp``) on the host CPU, compiles the best schedule, checks its output
against numpy and prints the tuned latency and GFLOP/s; with ``--work-dir`` an interrupted job
run again resumes. ``ms-droplet post-opt WORK_DIR --trials 64`` improves a finished
MetaSchedule run with droplet descent from each task's best records. ``ms-droplet report
WORK_DIR`` tables and plots what any work_dir holds. ``ms-droplet run
SCRIPT.py`` (or ``-m MODULE``) runs TVM's own tuning code unchanged with droplet as its strategy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from .inputs import UserInputError

_PYTHON_CONSTANTS = {"True": True, "False": False, "None": None}


def _parse_option(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got '{text}'")
    # Python's spellings too: the option table (and its errors) speak of True, False and None.
    if value in _PYTHON_CONSTANTS:
        return name, _PYTHON_CONSTANTS[value]
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ms-droplet``."""
    parser = argparse.ArgumentParser(prog="ms-droplet", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tune = commands.add_parser("tune", help="tune one workload and report its tuned latency")
    tune.add_argument("workload", help="NAME:INDEX of te_workload.CONFIGS (e.g. GMM:2), or mlp")
    tune.add_argument("--trials", type=int, default=128, help="trial budget (default 128)")
    tune.add_argument(
        "--per-iter",
        type=int,
        default=16,
        help="candidates per batch (default 16: the descent learns from every batch, so "
        "smaller batches than MetaSchedule's 64 serve it better)",
    )
    tune.add_argument("--strategy", choices=("droplet", "evolutionary"), default="droplet")
    tune.add_argument(
        "--option",
        action="append",
        type=_parse_option,
        default=[],
        metavar="NAME=VALUE",
        help="a DropletSearch option, e.g. --option explore_trials=32 (repeatable)",
    )
    tune.add_argument("--target", help="target as JSON (default: the host CPU with mcpu set)")
    tune.add_argument(
        "--work-dir",
        help="where logs and the database go (default: a temp dir); records already there "
        "count towards --trials, so the same command run again resumes an interrupted job",
    )
    tune.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tune.add_argument(
        "--stock-builder",
        action="store_true",
        help="build with MetaSchedule's default LocalBuilder (imports every tensor intrinsic "
        "in each worker: about 20 s more per batch on 2 cores)",
    )
    tune.add_argument("--json", action="store_true", help="print the result as JSON")

    post = commands.add_parser(
        "post-opt",
        help="droplet descent from the best records of every task of a finished work_dir",
    )
    post.add_argument("work_dir", help="a MetaSchedule work_dir (database_*.json inside)")
    post.add_argument("--trials", type=int, required=True, help="new trials, all tasks together")
    post.add_argument("--per-iter", type=int, default=16, help="candidates per batch (16)")
    post.add_argument("--target", help="target as JSON (default: the target of the records)")
    post.add_argument(
        "--option",
        action="append",
        type=_parse_option,
        default=[],
        metavar="NAME=VALUE",
        help="a DropletSearch option (explore_trials defaults to 0 here)",
    )
    post.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    post.add_argument("--task-scheduler", choices=("gradient", "round-robin"), default="gradient")
    post.add_argument(
        "--rpc-tracker",
        metavar="HOST:PORT",
        help="measure through this RPC tracker instead of on this machine",
    )
    post.add_argument("--rpc-key", help="device key registered with the RPC tracker")
    post.add_argument("--json", action="store_true", help="print the table as JSON")

    report = commands.add_parser(
        "report",
        help="per-task table, tuning curves (PNG) and JSON of any MetaSchedule work_dir, even "
        "one a run is still writing",
    )
    report.add_argument("work_dir", help="a MetaSchedule work_dir (database_*.json inside)")
    report.add_argument(
        "--out", help="where the PNGs and report.json go (default: WORK_DIR/report)"
    )
    report.add_argument("--json", action="store_true", help="print the table as JSON")

    run = commands.add_parser(
        "run",
        help="run a Python script or module (as python would) with droplet as the default "
        "strategy of every evolutionary search it builds; options from MS_DROPLET_OPTIONS",
    )
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m")
    run.add_argument("program", nargs=argparse.REMAINDER, help="SCRIPT.py [ARGS...] or ARGS")

    export = commands.add_parser(
        "export-patch",
        help="write the git patch that adds droplet search to an apache/tvm checkout",
    )
    export.add_argument(
        "--tvm-source",
        required=True,
        help="an apache/tvm checkout (a tree with python/tvm: an installed tvm/ copied to "
        "DIR/python/tvm works too, without the documentation change)",
    )
    export.add_argument("--out", required=True, help="the patch file to write")
    export.add_argument(
        "--pr-description",
        metavar="FILE",
        help="also write the draft pull-request description (Markdown, with the figures of "
        "benchmarks/results/*-summary.json)",
    )
    return parser


def _strategy(name: str, options: list[tuple[str, Any]]) -> Any:
    if name == "evolutionary":
        if options:
            raise UserInputError("--option applies to the droplet strategy only")
        return "evolutionary"
    from .strategy import DropletSearch

    try:
        return DropletSearch(**dict(options))
    except ValueError as err:
        raise UserInputError(str(err)) from None


def _target(text: str | None) -> Any:
    from .inputs import target_from_text
    from .job import host_target

    return host_target() if text is None else target_from_text(text)


def tune_command(args: argparse.Namespace) -> int:
    """Run ``ms-droplet tune``."""
    from . import _tvm
    from .interrupt import GracefulStop, end_worker_processes
    from .job import recorded_trials, tune_and_check
    from .workloads import parse_workload

    try:
        workload = parse_workload(args.workload)
    except ValueError as err:
        raise UserInputError(str(err)) from None
    if args.trials < 1 or args.per_iter < 1:
        raise UserInputError("--trials and --per-iter must be positive")
    target = _target(args.target)
    if target.kind.name != "llvm":
        raise UserInputError(
            f"`ms-droplet tune` checks results on the host CPU; target kind "
            f"'{target.kind.name}' is not supported by this command (use the Python API)"
        )
    _tvm.register_tensor_intrinsics(target)
    strategy = _strategy(args.strategy, args.option)
    with tempfile.TemporaryDirectory(prefix="ms_droplet_") as scratch, GracefulStop() as stop:
        work_dir = args.work_dir or scratch
        try:
            result = tune_and_check(
                workload,
                target,
                trials=args.trials,
                per_iter=args.per_iter,
                strategy=strategy,
                strategy_name=args.strategy,
                work_dir=work_dir,
                seed=args.seed,
                builder="local" if args.stock_builder else None,
                stop=stop,
                progress=True,
            )
        except UserInputError:
            raise
        except Exception as err:
            end_worker_processes()
            recorded = recorded_trials(workload, target, work_dir)
            where = (
                f"in {work_dir}; the same command resumes from them"
                if args.work_dir
                else "in a temporary work_dir, now removed (pass --work-dir to keep a run and "
                "resume it)"
            )
            if stop.requested:
                print(
                    f"ms-droplet: stopped by {stop.signal_name}: {recorded} of {args.trials} "
                    f"trials are recorded {where}",
                    file=sys.stderr,
                )
                return stop.exit_code()
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
            raise SystemExit(
                f"ms-droplet: tuning failed: {reason}\n  {recorded} trials measured before "
                f"the failure are recorded {where}"
            ) from err
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        if result.resumed_from:
            print(
                f"resumed: {result.resumed_from} of the {result.trials} trials were recorded "
                f"in {args.work_dir} already"
            )
        print(
            f"{result.workload} with {result.strategy}: {result.records} trials recorded, "
            f"{result.records - result.resumed_from} of them measured in "
            f"{result.tuning_seconds:.1f} s\n"
            f"  tuned latency: {result.latency_us:.2f} us ({result.gflops:.2f} GFLOP/s)\n"
            f"  check against {result.reference}: max abs error {result.max_abs_error:.2e} "
            f"({'OK' if result.correct else 'MISMATCH'})"
        )
    return 0 if result.correct else 1


def post_opt_command(args: argparse.Namespace) -> int:
    """Run ``ms-droplet post-opt``."""
    from .job import rpc_runner
    from .options import resolve_options
    from .postopt import gains_table, post_optimize

    if args.trials < 1 or args.per_iter < 1:
        raise UserInputError("--trials and --per-iter must be positive")
    try:
        resolve_options(dict(args.option))
    except ValueError as err:
        raise UserInputError(str(err)) from None
    runner = None
    if args.rpc_tracker or args.rpc_key:
        if not (args.rpc_tracker and args.rpc_key):
            raise UserInputError("--rpc-tracker and --rpc-key go together")
        try:
            runner = rpc_runner(args.rpc_tracker, args.rpc_key)
        except ValueError as err:
            raise UserInputError(str(err)) from None
    target = None if args.target is None else _target(args.target)
    try:
        gains = post_optimize(
            args.work_dir,
            args.trials,
            target=target,
            per_iter=args.per_iter,
            runner=runner,
            task_scheduler=args.task_scheduler,
            options=dict(args.option),
            seed=args.seed,
        )
    except (FileNotFoundError, ValueError) as err:
        raise UserInputError(str(err)) from None
    if args.json:
        print(json.dumps([gain.as_dict() for gain in gains], indent=2))
    else:
        print(gains_table(gains))
    return 0


def report_command(args: argparse.Namespace) -> int:
    """Run ``ms-droplet report``."""
    from pathlib import Path

    from .report import read_work_dir, table, write_report

    tasks = read_work_dir(args.work_dir)
    if not tasks:
        raise UserInputError(f"{args.work_dir} holds no tuning records yet")
    out_dir = Path(args.out) if args.out else Path(args.work_dir) / "report"
    summary = write_report(tasks, args.work_dir, out_dir)
    if args.json:
        print(json.dumps([task.summary() for task in tasks], indent=2))
    else:
        print(table(tasks))
        print(f"\ncurves and {summary.name}: {out_dir}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Run ``ms-droplet run``: the program in this process, droplet being the default."""
    import importlib.util
    import os
    import runpy

    from .default import DEFAULT_VARIABLE, install, options_from_environment

    if args.module is None and not args.program:
        raise UserInputError("give SCRIPT.py [ARGS...] or -m MODULE [ARGS...]")
    # Everything is checked before this process changes: a mistake leaves it as it was.
    if args.module is not None:
        sys.path.insert(0, os.getcwd())  # as `python -m` does
        try:
            found = importlib.util.find_spec(args.module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise UserInputError(f"no module named '{args.module}' (from {os.getcwd()})")
    elif not os.path.isfile(args.program[0]):
        raise UserInputError(f"no such script: {args.program[0]}")
    try:
        options = options_from_environment({**os.environ, DEFAULT_VARIABLE: "1"})
    except ValueError as err:
        raise UserInputError(str(err)) from None
    # Child processes the program starts (its own workers, a second tuning script) inherit it.
    os.environ[DEFAULT_VARIABLE] = "1"
    install(options)
    if args.module is not None:
        sys.argv = [args.module, *args.program]
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)
    else:
        script, *rest = args.program
        sys.argv = [script, *rest]
        sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
        runpy.run_path(script, run_name="__main__")
    return 0


def export_patch_command(args: argparse.Namespace) -> int:
    """Run ``ms-droplet export-patch``."""
    from pathlib import Path

    from .upstream import UpstreamSourceError, git_patch, patched_files
    from .upstream.description import pr_description
    from .upstream.fold import FoldError

    for output in (args.out, args.pr_description):
        if output is not None and not Path(output).resolve().parent.is_dir():
            raise UserInputError(f"{output}: its folder does not exist")
    try:
        changes = patched_files(Path(args.tvm_source))
        description = pr_description() if args.pr_description else None
    except (UpstreamSourceError, FoldError) as err:
        raise UserInputError(str(err)) from None
    Path(args.out).write_text(git_patch(changes))
    for path, (old, new) in sorted(changes.items()):
        action = "adds" if old is None else "changes"
        print(f"{action:7} {path} ({len(new.splitlines())} lines)")
    patch = Path(args.out).resolve()
    print(f"patch: {patch} (try it: cd {args.tvm_source} && git apply --check {patch})")
    if description is not None:
        Path(args.pr_description).write_text(description)
        print(f"pull-request description: {args.pr_description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ms-droplet`` command.

    A mistake in what the user asked for ends the command with one line on standard error
    naming it, and exit code 2, before anything is tuned.
    """
    args = build_parser().parse_args(argv)
    commands = {
        "tune": tune_command,
        "post-opt": post_opt_command,
        "run": run_command,
        "report": report_command,
        "export-patch": export_patch_command,
    }
    try:
        return commands[args.command](args)
    except UserInputError as err:
        print(f"ms-droplet: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
