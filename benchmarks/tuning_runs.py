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
"""Tuning runs of the benchmark: one (workload, method, budget, seed) at a time, resumable.

Each run writes ``<out>/runs/<run id>/run.json`` when it finishes; a run whose file exists is
not done again, so an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .environment import measured_commit
from .reference import OPENBLAS_OVERRIDES
from .remeasure import NOISY_SPREAD, worst_spread

METHODS = ("droplet", "evolutionary", "postopt")


@dataclass(frozen=True)
class RunSpec:
    """One tuning run of the benchmark."""

    workload: str
    method: str
    budget: int
    seed: int
    per_iter: int
    # DropletSearch options of a droplet run, as sorted (name, value) pairs.
    options: tuple = ()

    def __hash__(self) -> int:
        # An option's value may be a dict (``evolutionary``'s keyword arguments); the run id
        # names every field.
        return hash(self.run_id)

    @property
    def run_id(self) -> str:
        """A file-system-safe name."""
        return (
            f"{self.workload.replace(':', '-')}__{self.method}{variant_suffix(self.options)}"
            f"__B{self.budget}__s{self.seed}"
        )


def variant_suffix(options: tuple) -> str:
    """``_name-value`` per option for a run id; a dict value as ``key=value`` pairs joined by +."""

    def text(value: Any) -> str:
        if isinstance(value, Mapping):
            return "+".join(f"{key}={value[key]}" for key in sorted(value))
        return str(value)

    return "".join(f"_{name}-{text(value)}" for name, value in options)


def plan(profile: Any, droplet_options: dict | None = None) -> list[RunSpec]:
    """Every run a profile asks for: the equal-budget runs of every workload first.

    Droplet and evolutionary search at B (and the post-pass) come before the k*B runs, so a
    benchmark cut short (``--time-limit``, Ctrl-C) holds whole equal-budget comparisons.
    """
    options = tuple(sorted((droplet_options or {}).items()))
    at_budget, at_k_budget = [], []
    for workload in profile.workloads:
        for seed in profile.seeds:
            B, kB = profile.budget, profile.budget * profile.k
            at_budget.append(RunSpec(workload, "droplet", B, seed, profile.per_iter, options))
            at_budget.append(RunSpec(workload, "evolutionary", B, seed, profile.per_iter))
            if profile.postopt:
                at_budget.append(RunSpec(workload, "postopt", B, seed, profile.per_iter))
            at_k_budget.append(RunSpec(workload, "evolutionary", kB, seed, profile.per_iter))
    return at_budget + at_k_budget


def prepare(workloads: tuple[str, ...], target: str = "host") -> Any:
    """Check the workload names and load TVM's tensor intrinsics; return the TVM target.

    Parameters
    ----------
    workloads : Tuple[str, ...]
        ``NAME:INDEX`` entries.
    target : str
        ``"host"`` or ``"cuda"`` (:data:`~benchmarks.profiles.TARGETS`).

    Raises
    ------
    ValueError
        For an unknown workload, or ``"cuda"`` where TVM sees no CUDA GPU.
    """
    from ms_droplet.job import host_target
    from ms_droplet.workloads import parse_workload

    for workload in workloads:
        parse_workload(workload)  # a bad name fails now, not an hour in
    if target == "cuda":
        tuning_target = cuda_target()
    elif target == "host":
        tuning_target = host_target()
    else:
        raise ValueError(f"unknown benchmark target '{target}': host or cuda")
    # TVM parses tensor intrinsics on the first TuneContext of a process; pay it here (for the
    # target's kind only) so that it lands in no run's tuning time.
    from ms_droplet import _tvm

    _tvm.register_tensor_intrinsics(tuning_target)

    return tuning_target


def cuda_target() -> Any:
    """GPU 0 as a CUDA target, its architecture and thread limits read from the device.

    Raises
    ------
    ValueError
        Where TVM sees no CUDA GPU (no driver, no device, or a TVM built without CUDA).
    """
    import tvm

    try:
        present = bool(tvm.cuda(0).exist)
    except Exception:  # a TVM built without CUDA raises instead of answering
        present = False
    if not present:
        raise ValueError("--target cuda: TVM sees no CUDA GPU on this machine")
    return tvm.target.Target.from_device(tvm.cuda(0))


def run_all(
    specs: list[RunSpec], out_dir: Path, target: Any, time_limit: float | None = None
) -> list[dict]:
    """Tune every spec whose run.json is missing; the records of the runs done, in order.

    With ``time_limit``, no run starts once that many seconds have passed since the call: the
    runs not started are left out of the result (their run.json stays missing, so a later call
    with the same ``out_dir`` tunes them).
    """
    runs = []
    start = time.perf_counter()
    for index, spec in enumerate(specs, 1):
        done = load_run(out_dir, spec)
        if done is not None:
            print(f"[{index}/{len(specs)}] {spec.run_id}: done before, kept", flush=True)
        elif time_limit is not None and time.perf_counter() - start >= time_limit:
            print(f"[{index}/{len(specs)}] {spec.run_id}: not started (time limit)", flush=True)
            continue
        else:
            print(f"[{index}/{len(specs)}] {spec.run_id}: tuning", flush=True)
            done = execute(spec, out_dir, target)
        runs.append(done)
    return runs


# Every re-measure of the last remeasure_in_child call, beside remeasure.json (the quietest).
ATTEMPTS_FILE = "remeasure_attempts.json"


def remeasure_in_child(
    out_dir: Path,
    rounds: int,
    processes: int = 3,
    noisy_spread: float = NOISY_SPREAD,
    module: str = "benchmarks.remeasure",
) -> dict[str, dict]:
    """Re-measure every run in a fresh process, again while one is noisy; the quietest.

    ``module`` is the re-measuring program (:mod:`.remeasure` for kernels,
    :mod:`.e2e_remeasure` for models). A re-measure is noisy when some latency's rounds spread
    by more than ``noisy_spread``; then another process re-measures, ``processes`` at most, and
    the quietest is written back to ``out_dir/remeasure.json`` and returned; every attempt goes
    to ``out_dir/remeasure_attempts.json`` (:func:`remeasure_attempts`).
    """
    env = {key: value for key, value in os.environ.items() if key not in OPENBLAS_OVERRIDES}
    attempts = []
    for attempt in range(1, processes + 1):
        print(
            f"re-measuring every run's best in a fresh process ({attempt} of at most "
            f"{processes})...",
            flush=True,
        )
        subprocess.run(
            [sys.executable, "-m", module, str(out_dir), str(rounds)],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            check=True,
        )
        attempts.append(json.loads((out_dir / "remeasure.json").read_text()))
        spread = worst_spread(attempts[-1])
        print(f"re-measure {attempt}: rounds spread by up to {100 * spread:.3g}%", flush=True)
        if spread <= noisy_spread:
            break
    quietest = min(attempts, key=worst_spread)
    (out_dir / "remeasure.json").write_text(json.dumps(quietest, indent=1))
    (out_dir / ATTEMPTS_FILE).write_text(json.dumps(attempts))
    return quietest


def remeasure_attempts(out_dir: Path) -> list[dict[str, dict]]:
    """Every re-measure of the last :func:`remeasure_in_child` in ``out_dir``, in order.

    The figures come from the quietest; the others show how far they move from one re-measuring
    process to the next, which is often more than the seeds spread (``RESULTS.md``, "The goals
    with 95% confidence intervals").
    """
    path = out_dir / ATTEMPTS_FILE
    return json.loads(path.read_text()) if path.exists() else []


def print_noisy(remeasured: dict[str, dict], noisy_spread: float = NOISY_SPREAD) -> None:
    """Name every latency whose rounds still spread by more than ``noisy_spread``."""
    for key, entry in remeasured.items():
        if entry.get("spread", 0.0) > noisy_spread:
            print(
                f"noisy re-measure: {key}'s rounds spread by {100 * entry['spread']:.0f}% "
                "(interquartile range over median); run the command again to re-measure",
                flush=True,
            )


def run_path(out_dir: Path, spec: RunSpec) -> Path:
    """Folder of one run (work_dir, logs and run.json)."""
    return out_dir / "runs" / spec.run_id


def resolved_options(spec: Any) -> dict | None:
    """Every DropletSearch option a droplet run tunes with, defaults included; None otherwise.

    ``spec`` is a :class:`RunSpec` or an end-to-end run's spec: a ``method`` and ``options``.
    """
    if spec.method != "droplet":
        return None
    from ms_droplet.options import resolve_options

    return resolve_options(dict(spec.options))


# DropletSearch options added after this harness began recording resolved options (95d534e),
# each with the behaviour of the runs recorded before it existed (not its default: an option
# added "on" changed what a run does); and options since removed, each with the value whose
# behaviour is today's. A recorded run is read in today's terms, so that adding an option does not
# outdate every recorded run, while a run from before a new default still differs from it. An
# option missing here outdates the runs recorded before it, as before: the safe failure.
OPTIONS_ADDED = {
    "control": False,
    "explore_share": 0.0,
    "combine_moves": False,
    "adaptive_explore": False,
    "sample_while_guessing": False,
    "restart_other_spaces": False,
    "explorer_sees_descents": True,
    "stalled_turns": "alternate",
}
OPTIONS_REMOVED = {
    "restart_from": "measured",
    "explorer_headroom": 1,
    "two_moves": 0,
    "first_population": None,
    "align_locations": False,
}


def options_in_todays_terms(tuned_with: dict) -> dict:
    """A recorded run's resolved options as today's DropletSearch would name its behaviour."""
    options = {**OPTIONS_ADDED, **tuned_with}
    for name, behaviour_kept in OPTIONS_REMOVED.items():
        # Any other value is a behaviour that is gone: it stays, and so differs from any spec.
        if name in options and options[name] == behaviour_kept:
            del options[name]
    return options


def load_run(out_dir: Path, spec: RunSpec) -> dict | None:
    """The finished run's record, or None.

    Raises
    ------
    ValueError
        When the finished droplet run was tuned with other options than ``spec`` resolves to
        now (a default changed since): keeping it would report the old defaults as the new.
        Options added or removed since the run are read as :data:`OPTIONS_ADDED` and
        :data:`OPTIONS_REMOVED` say.
    """
    path = run_path(out_dir, spec) / "run.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    check_options(path, record, spec)
    return record


def check_options(path: Path, record: dict, spec: Any) -> None:
    """Refuse a finished run that was tuned under other options than ``spec`` resolves to now.

    A run recorded without resolved options (an evolutionary run, or one older than the
    record) is not checked.

    Raises
    ------
    ValueError
        Naming the options that differ, read as :func:`options_in_todays_terms` says.
    """
    tuned_with = record.get("resolved_options")
    wanted = resolved_options(spec)
    if tuned_with is None or wanted is None:
        return
    tuned_with = options_in_todays_terms(tuned_with)
    if tuned_with != wanted:
        changed = sorted(set(wanted) | set(tuned_with))
        changed = [name for name in changed if tuned_with.get(name) != wanted.get(name)]
        raise ValueError(
            f"{path} was tuned with DropletSearch options {tuned_with}, but this run asks for "
            f"{wanted} (they differ in {', '.join(changed)}; did a default change?). Use "
            f"another --out folder, or delete {path.parent} to tune it again."
        )


def log_seconds(work_dir: Path, pattern: str) -> float | None:
    """Sum of the seconds ``pattern``'s group catches in a work_dir's task logs; None if none."""
    total, found = 0.0, False
    for log in (work_dir / "logs").glob("*task_*.log"):
        for match in re.finditer(pattern, log.read_text()):
            total += float(match.group(1))
            found = True
    return total if found else None


def execute(spec: RunSpec, out_dir: Path, target: Any) -> dict:
    """Tune one run with the shared builder, runner, cost model and seed; write run.json."""
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet import DropletSearch
    from ms_droplet.job import evaluator_runner, fast_local_builder, tune
    from ms_droplet.workloads import parse_workload

    from .recorder import BestSoFar

    folder = run_path(out_dir, spec)
    work_dir = folder / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    workload = parse_workload(spec.workload)
    recorder = BestSoFar(label=spec.run_id)
    callbacks = [*ms.measure_callback.MeasureCallback.create("default"), recorder]
    tuned_trials = spec.budget
    post_trials = 0
    if spec.method == "postopt":
        # TVM's post-pass measures on its own, after tuning: split the same total budget.
        post_trials = spec.budget // 2
        tuned_trials = spec.budget - post_trials
    strategy = DropletSearch(**dict(spec.options)) if spec.method == "droplet" else "evolutionary"
    error = None
    start = time.perf_counter()
    tune(
        workload,
        target,
        trials=tuned_trials,
        per_iter=spec.per_iter,
        strategy=strategy,
        work_dir=str(work_dir),
        seed=spec.seed,
        runner=evaluator_runner(),
        builder=fast_local_builder(),
        callbacks=callbacks,
    )
    if post_trials:
        try:
            ms.post_optimization.PostOpt(str(work_dir), target, trials=post_trials).run()
        except Exception as err:  # TVM's post-pass is untested upstream; report, go on
            error = f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    record = {
        "spec": {**spec.__dict__, "options": dict(spec.options)},
        "run_id": spec.run_id,
        "resolved_options": resolved_options(spec),
        "commit": measured_commit(),
        "target": json.loads(str(target)),
        "work_dir": str(work_dir),
        "tuning_seconds": seconds,
        # When the tuning ended: the report flags wall ratios of runs tuned hours apart.
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "curve": recorder.curve,
        "droplet_own_seconds": log_seconds(work_dir, r"droplet's own time ([0-9.]+) s"),
        "post_trials": post_trials,
        "error": error,
    }
    (folder / "run.json").write_text(json.dumps(record, indent=1))
    return record
