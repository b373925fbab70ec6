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
"""Benchmark profiles: which workloads, budgets and seeds a run covers."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Profile:
    """One benchmark setting.

    Parameters
    ----------
    workloads : Tuple[str, ...]
        ``NAME:INDEX`` entries of TVM's ``te_workload.CONFIGS``.
    budget : int
        B, the trials droplet gets.
    k : int
        Evolutionary search also runs with k * B trials.
    seeds : Tuple[int, ...]
        One run of every method per seed.
    per_iter : int
        Candidates per batch, the same for every method.
    postopt : bool
        Also run TVM's built-in ``post_optimization`` droplet post-pass at B trials in total.
    remeasure_rounds : int
        Interleaved rounds of the final re-measurement.
    target : str
        ``"host"`` (this CPU, ``mcpu`` from LLVM) or ``"cuda"`` (GPU 0, its architecture and
        limits read from the device).
    """

    workloads: tuple[str, ...]
    budget: int
    k: int
    seeds: tuple[int, ...] = (0,)
    per_iter: int = 32
    postopt: bool = True
    remeasure_rounds: int = 10
    target: str = "host"
    notes: str = field(default="", compare=False)


# The default suite: GEMM, conv2d 1x1, depthwise, conv1d, fused conv3x3+bn+relu, and a
# memory-bound reduction; with C2D:2 (conv2d 3x3) and GMM:3 for the full suite.
STANDARD_SUITE = ("GMM:2", "C2D:1", "DEP:0", "C1D:0", "CBR:1", "NRM:1")
FULL_SUITE = ("GMM:2", "GMM:3", "C2D:1", "C2D:2", "DEP:0", "C1D:0", "CBR:1", "NRM:1")

TARGETS = ("host", "cuda")

PROFILES = {
    # Proves the harness end to end in seconds of tuning; what CI runs.
    "tiny": Profile(("GMM:0",), budget=4, k=2, per_iter=4, postopt=False, remeasure_rounds=2),
    # Two small workloads, a few minutes on 2 cores.
    "quick": Profile(("GMM:0", "NRM:0"), budget=16, k=2, per_iter=8, remeasure_rounds=3),
    # Six workloads, B=128, k=4: under two hours on 2 cores.
    "standard": Profile(STANDARD_SUITE, budget=128, k=4, per_iter=32),
    # GEMM and conv2d on GPU 0: the CUDA comparison, sized for minutes of a lent GPU.
    "cuda": Profile(("GMM:2", "C2D:1"), budget=64, k=4, seeds=(0, 1), postopt=False, target="cuda"),
    # The published protocol's scale, for larger machines.
    "full": Profile(FULL_SUITE, budget=300, k=10, seeds=(0, 1, 2), per_iter=64),
}


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that pick a profile and override its workloads, budget, seeds and batch."""
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--workloads", nargs="+", help="NAME:INDEX list (overrides the profile)")
    parser.add_argument("--budget", type=int, help="B, droplet's trials")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--per-iter", type=int, dest="per_iter")
    parser.add_argument("--out", type=Path, help="output folder (default bench_out/<profile>)")
    parser.add_argument(
        "--target", choices=TARGETS, help="where to tune and measure (default: the profile's)"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="start no tuning run after this many seconds; report the runs done (a later call "
        "with the same --out resumes)",
    )


def profile_from_args(args: argparse.Namespace) -> Profile:
    """The chosen profile with the command line's overrides applied."""
    overrides = {
        name: getattr(args, name)
        for name in ("budget", "per_iter", "target")
        if getattr(args, name) is not None
    }
    if args.workloads:
        overrides["workloads"] = tuple(args.workloads)
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    return dataclasses.replace(PROFILES[args.profile], **overrides)
