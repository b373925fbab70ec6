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
"""End-to-end runs: a whole Relax model through ``tune_relax`` and its task scheduler.

Per model and seed: droplet at N global trials (one run per droplet variant), evolutionary
search at N and at k*N (k = 3), with the same builder, runner, cost model, scheduler and
seed. Each run writes ``<out>/runs/<run id>/run.json`` when it finishes (a finished run is not
tuned again: the benchmark resumes), with the curve of the scheduler's estimate of the model's
latency (sum of task weight times each task's best) against global trials, and a per-task table:
the trials the scheduler gave, the best latency measured while tuning, and the phase that found
it (from droplet's provenance file; ``evolutionary`` for evolutionary runs).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .environment import measured_commit, tuned_commit
from .models import get_model, tuning_module
from .tuning_runs import (
    check_options,
    log_seconds,
    print_noisy,
    remeasure_attempts,
    remeasure_in_child,
    resolved_options,
    variant_suffix,
)

ROOT = Path(__file__).resolve().parents[1]

SCHEDULERS = ("gradient", "round-robin")


@dataclass(frozen=True)
class ModelRunSpec:
    """One tuning run of a whole model."""

    model: str
    method: str
    trials: int
    seed: int
    per_iter: int
    scheduler: str = "gradient"
    # DropletSearch options of a droplet run, as sorted (name, value) pairs.
    options: tuple = ()

    def __hash__(self) -> int:
        # An option's value may be a dict (``evolutionary``'s keyword arguments); the run id
        # names every field.
        return hash(self.run_id)

    @property
    def run_id(self) -> str:
        """A file-system-safe name."""
        variant = variant_suffix(self.options)
        scheduler = "" if self.scheduler == "gradient" else f"__{self.scheduler}"
        return f"{self.model}__{self.method}{variant}__N{self.trials}__s{self.seed}{scheduler}"

    @property
    def variant(self) -> str:
        """The method with its options, e.g. ``droplet`` or ``droplet on_converge=stop``."""
        options = " ".join(f"{name}={value}" for name, value in self.options)
        return f"{self.method} {options}".strip()


def plan(
    model: str,
    trials: int,
    k: int,
    seeds: tuple[int, ...],
    per_iter: int,
    scheduler: str,
    droplet_variants: list[dict],
) -> list[ModelRunSpec]:
    """Every run of the comparison, seed by seed, so that partial results stay paired."""
    specs = []
    for seed in seeds:
        for options in droplet_variants:
            variant = tuple(sorted(options.items()))
            specs.append(ModelRunSpec(model, "droplet", trials, seed, per_iter, scheduler, variant))
        specs.append(ModelRunSpec(model, "evolutionary", trials, seed, per_iter, scheduler))
        if k != 1:  # with k = 1 the run at k*N is the run at N
            specs.append(ModelRunSpec(model, "evolutionary", k * trials, seed, per_iter, scheduler))
    return specs


def _model_curve_callback(task_names: list[str], weights: list[float]) -> Any:
    """A measure callback recording, after each batch, the model's estimated latency."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class ModelCurve(PyMeasureCallback):
        """Per task: trials given and best mean run time; the weighted sum after each batch."""

        def __init__(self) -> None:
            self.trials = [0] * len(task_names)
            self.best = [math.inf] * len(task_names)
            # (global trials, estimate or None, seconds, task id, its trials, its best or None)
            self.curve: list[tuple] = []
            self.start = time.perf_counter()

        def apply(self, task_scheduler, task_id, measure_candidates, builder_results, results):
            for built, ran in zip(builder_results, results):
                self.trials[task_id] += 1
                if built.error_msg is None and ran.error_msg is None and ran.run_secs:
                    secs = [float(getattr(s, "value", s)) for s in ran.run_secs]
                    self.best[task_id] = min(self.best[task_id], sum(secs) / len(secs))
            estimate = (
                math.fsum(w * b for w, b in zip(weights, self.best))
                if all(math.isfinite(b) for b in self.best)
                else None
            )
            best = self.best[task_id]
            self.curve.append(
                (
                    sum(self.trials),
                    estimate,
                    time.perf_counter() - self.start,
                    task_id,
                    self.trials[task_id],
                    best if math.isfinite(best) else None,
                )
            )

    return ModelCurve()


def _phases(work_dir: Path) -> dict[str, dict[str, Any]]:
    """Per task name, the provenance entry of its fastest measured program."""
    from ms_droplet.adapters.provenance import PROVENANCE_FILE, read_provenance

    best: dict[str, dict[str, Any]] = {}
    for entry in read_provenance(work_dir / PROVENANCE_FILE):
        latency = entry.get("latency_s")
        if latency is None:
            continue
        task = entry["task"]
        if task not in best or latency < best[task]["latency_s"]:
            best[task] = entry
    return best


def execute(spec: ModelRunSpec, out_dir: Path, target: Any) -> dict:
    """Tune one run with ``tune_relax``; write and return its run.json record."""
    from tvm.s_tir import meta_schedule as ms

    from ms_droplet import DropletSearch
    from ms_droplet.job import evaluator_runner, fast_local_builder

    folder = out_dir / "runs" / spec.run_id
    work_dir = folder / "work"
    if work_dir.exists():
        # A run interrupted before its run.json: its records would give the new run a head
        # start that its twins did not have. Tune it again from nothing.
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    mod = tuning_module(get_model(spec.model), target)
    extracted = ms.relax_integration.extract_tasks(mod, target)
    names = [task.task_name for task in extracted]
    weights = [float(task.weight) for task in extracted]
    curve = _model_curve_callback(names, weights)
    strategy = DropletSearch(**dict(spec.options)) if spec.method == "droplet" else "evolutionary"
    start = time.perf_counter()
    ms.relax_integration.tune_relax(
        mod,
        {},
        target,
        str(work_dir),
        max_trials_global=spec.trials,
        num_trials_per_iter=spec.per_iter,
        strategy=strategy,
        seed=spec.seed,
        runner=evaluator_runner(),
        builder=fast_local_builder(),
        measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), curve],
        task_scheduler=spec.scheduler,
    )
    seconds = time.perf_counter() - start
    record = {
        "spec": {**spec.__dict__, "options": dict(spec.options)},
        "run_id": spec.run_id,
        "variant": spec.variant,
        "resolved_options": resolved_options(spec),
        "commit": measured_commit(),
        "work_dir": str(work_dir),
        "tuning_seconds": seconds,
        # When the tuning ended: a wall ratio compares two runs' seconds, and the machine's speed
        # drifts over hours, so the report names pairs that were not tuned in one sitting.
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "droplet_own_seconds": log_seconds(work_dir, r"droplet's own time ([0-9.]+) s"),
        "curve": curve.curve,
        "task_names": names,
        "task_weights": weights,
    }
    record["tasks"] = task_table_rows(record, work_dir)
    (folder / "run.json").write_text(json.dumps(record, indent=1))
    return record


def task_table_rows(record: dict, work_dir: Path) -> list[dict]:
    """Per task: the trials the scheduler gave, the best mean run time, the phase that found it."""
    trials = [0] * len(record["task_names"])
    best: list[float | None] = [None] * len(record["task_names"])
    for _, _, _, task_id, task_trials, task_best in record["curve"]:
        trials[task_id], best[task_id] = task_trials, task_best
    phases = _phases(work_dir) if record["spec"]["method"] == "droplet" else {}
    return [
        {
            "task": name,
            "weight": weight,
            "trials": count,
            "best_us": None if latency is None else latency * 1e6,
            "phase": phases.get(name, {}).get("phase", "none")
            if record["spec"]["method"] == "droplet"
            else "evolutionary",
        }
        for name, weight, count, latency in zip(
            record["task_names"], record["task_weights"], trials, best
        )
    ]


def derive_prefix(spec: ModelRunSpec, longer: dict, out_dir: Path) -> dict:
    """Evolutionary search at N, as the first N trials of its run at k*N.

    Until its budget ends, a run makes the same choices whatever the budget: the task
    scheduler picks tasks by their measured gradients, and ``EvolutionarySearch`` uses its
    ``max_trials`` only to stop. So the first N records of the k*N run's database (records are
    appended batch by batch, in trial order) are the database of a run at N, and its curve up
    to N trials gives that run's time; tuning it again would cost (k-1)/k of the time and
    differ only by measurement noise. ``--separate-n`` tunes it on its own instead.
    """
    folder = out_dir / "runs" / spec.run_id
    work_dir = folder / "work"
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    source = Path(longer["work_dir"])
    shutil.copy(source / "database_workload.json", work_dir / "database_workload.json")
    with open(source / "database_tuning_record.json", encoding="utf-8") as records:
        lines = [line for _, line in zip(range(spec.trials), records)]
    (work_dir / "database_tuning_record.json").write_text("".join(lines))
    curve = [point for point in longer["curve"] if point[0] <= spec.trials]
    record = {
        "spec": {**spec.__dict__, "options": dict(spec.options)},
        "run_id": spec.run_id,
        "variant": spec.variant,
        "commit": longer.get("commit"),
        "work_dir": str(work_dir),
        "tuning_seconds": curve[-1][2] if curve else 0.0,
        # Tuned within the longer run, minutes before it ended.
        "finished_at": longer.get("finished_at"),
        "droplet_own_seconds": None,
        "curve": curve,
        "task_names": longer["task_names"],
        "task_weights": longer["task_weights"],
        "derived_from": longer["run_id"],
    }
    record["tasks"] = task_table_rows(record, work_dir)
    (folder / "run.json").write_text(json.dumps(record, indent=1))
    return record


def run_all(
    specs: list[ModelRunSpec], out_dir: Path, target: Any, separate_n: bool = False
) -> list[dict]:
    """Tune every spec whose run.json is missing; every run's record, in order.

    Evolutionary search at N is derived from its run at k*N (:func:`derive_prefix`) unless
    ``separate_n``.
    """
    done: dict[ModelRunSpec, dict] = {}
    longer = {}
    if not separate_n:
        for spec in specs:
            for other in specs:
                same = (other.model, other.seed, other.scheduler, other.per_iter) == (
                    spec.model,
                    spec.seed,
                    spec.scheduler,
                    spec.per_iter,
                )
                if spec.method == other.method == "evolutionary" and same:
                    if other.trials > spec.trials:
                        longer[spec] = other
    order = sorted(specs, key=lambda spec: spec in longer)  # the longer runs first
    for index, spec in enumerate(order, 1):
        path = out_dir / "runs" / spec.run_id / "run.json"
        if path.exists():
            done[spec] = json.loads(path.read_text())
            # A droplet run tuned under other defaults is not today's run (an older record,
            # without resolved options, is kept as it is).
            check_options(path, done[spec], spec)
            print(f"[{index}/{len(specs)}] {spec.run_id}: done before, kept", flush=True)
        elif spec in longer:
            print(
                f"[{index}/{len(specs)}] {spec.run_id}: the first {spec.trials} trials of "
                f"{longer[spec].run_id}",
                flush=True,
            )
            done[spec] = derive_prefix(spec, done[longer[spec]], out_dir)
        else:
            print(f"[{index}/{len(specs)}] {spec.run_id}: tuning", flush=True)
            done[spec] = execute(spec, out_dir, target)
    return [done[spec] for spec in specs]


def write_summary(path: Path, document: dict) -> None:
    """Write ``document`` to ``path``, keeping the other models of a summary of the same commit
    and seeds there (one summary covers the models measured on one version of ``ms_droplet/``).
    """
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except json.JSONDecodeError:
            existing = {}
        same = (existing.get("commit"), existing.get("seeds")) == (
            document["commit"],
            document["seeds"],
        )
        if same:
            document = {**document, "models": {**existing["models"], **document["models"]}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")


def main(args: Any) -> int:
    """``python -m benchmarks --model NAME``: tune, re-measure, report; write the outputs.

    Writes ``results.json`` (every run, ratio, per-task ratio and re-measured latency),
    ``curves.png`` and ``e2e-summary.json`` into the output folder, and the summary also to
    ``args.summary`` when given.
    """
    import dataclasses

    from ms_droplet.cli import _parse_option
    from ms_droplet.options import resolve_options

    from .e2e_report import (
        attempts_text,
        figures,
        plot,
        summary,
        table,
        task_figures,
        task_ratio_table,
        task_table,
    )
    from .environment import environment
    from .tuning_runs import prepare

    model = get_model(args.model)
    trials = args.budget or model.trials
    seeds = tuple(args.seeds or (0,))
    per_iter = args.per_iter or model.per_iter
    k = args.k or 3
    variants = [{}]
    for text in args.droplet_variant:
        options = dict(_parse_option(item) for item in text.split(","))
        resolve_options(options)  # a bad option fails now, not an hour in
        variants.append(options)
    out = args.out or ROOT / "bench_out" / f"model-{model.name}"
    out.mkdir(parents=True, exist_ok=True)
    target = prepare(())
    specs = plan(model.name, trials, k, seeds, per_iter, args.scheduler, variants)
    if args.only:
        # Tune one method's runs now (e.g. the evolutionary ones while droplet's code is still
        # changing); a later call without --only keeps them and tunes the rest.
        specs = [spec for spec in specs if spec.method == args.only]
    runs = run_all(specs, out, target, separate_n=args.separate_n)
    remeasured = remeasure_in_child(
        out, args.rounds, args.remeasures, args.noisy_spread, module="benchmarks.e2e_remeasure"
    )
    report = figures(runs, remeasured, k)
    tasks = task_figures(runs, remeasured)
    document = summary(report, list(seeds), tuned_commit(runs), k=k)
    results = {
        "environment": environment(),
        "model": dataclasses.asdict(model) | {"build": None},
        "trials": trials,
        "k": k,
        "per_iter": per_iter,
        "scheduler": args.scheduler,
        "report": report,
        "tasks": tasks,
        "summary": document,
        "runs": runs,
        "remeasured": remeasured,
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "e2e-summary.json").write_text(json.dumps(document, indent=1))
    if args.summary:
        write_summary(args.summary, document)
    plot(runs, remeasured, out / "curves.png")
    print(task_table(runs, remeasured))
    print()
    print(task_ratio_table(tasks))
    print()
    print(table(report, k))
    moved = attempts_text(runs, remeasure_attempts(out), k)
    if moved:
        print(moved)
    print_noisy(remeasured, args.noisy_spread)
    mismatched = [key for key, entry in remeasured.items() if not entry["outputs_match"]]
    for key in mismatched:
        print(f"OUTPUT MISMATCH: {key} differs from the untuned build", flush=True)
    print(f"\nresults: {out / 'results.json'}\nplot: {out / 'curves.png'}")
    return 1 if mismatched else 0
