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
"""The one module that touches TVM internals.

Everything ms_droplet needs from TVM and MetaSchedule is imported or wrapped here, so that a TVM
API move (MetaSchedule moved from ``tvm.meta_schedule`` to ``tvm.s_tir.meta_schedule`` in 0.27)
touches a single file.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

import tvm_ffi
from tvm.ir import IRModule
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.arg_info import ArgInfo
from tvm.s_tir.meta_schedule.cost_model import CostModel
from tvm.s_tir.meta_schedule.database import Database, MemoryDatabase, TuningRecord
from tvm.s_tir.meta_schedule.measure_callback import MeasureCallback, PyMeasureCallback
from tvm.s_tir.meta_schedule.postproc import Postproc
from tvm.s_tir.meta_schedule.runner import RunnerResult
from tvm.s_tir.meta_schedule.search_strategy import (
    EvolutionarySearch,
    MeasureCandidate,
    PySearchStrategy,
    ReplayTrace,
    SearchStrategy,
)
from tvm.s_tir.meta_schedule.search_strategy import search_strategy as search_strategy_module
from tvm.s_tir.meta_schedule.tune_context import TuneContext
from tvm.s_tir.schedule import Instruction, Schedule, Trace
from tvm.target import Target, codegen
from tvm.tirx import IntImm, PrimFunc

__all__ = [
    "ArgInfo",
    "CostModel",
    "Database",
    "EvolutionarySearch",
    "IRModule",
    "Instruction",
    "MeasureCallback",
    "MeasureCandidate",
    "MemoryDatabase",
    "Postproc",
    "PrimFunc",
    "PyMeasureCallback",
    "PySearchStrategy",
    "ReplayTrace",
    "RunnerResult",
    "Schedule",
    "SearchStrategy",
    "Target",
    "Trace",
    "TuneContext",
    "TuningRecord",
    "block_names",
    "default_measure_callbacks",
    "derived_object",
    "estimate_flops",
    "host_cpu",
    "host_triple",
    "is_valid_cpu",
    "make_candidate",
    "module_hash",
    "ms",
    "object_handle",
    "register_tensor_intrinsics",
    "reseeded_copy",
    "run_seconds",
    "search_strategy_module",
    "structural_equal",
    "traced_schedule",
    "valid_seconds",
]

# Annotations whose integer value MetaSchedule's MutateParallel (and the vectorize rule) varies;
# they are ``Annotate`` inputs, not sampling decisions.
PARALLEL_ANNOTATION = "meta_schedule.parallel"
VECTORIZE_ANNOTATION = "meta_schedule.vectorize"


def module_hash(mod: IRModule) -> int:
    """Structural hash of a scheduled module: equal programs, equal hashes."""
    return int(tvm_ffi.structural_hash(mod)) & 0xFFFFFFFFFFFFFFFF


def _schedule_seed(seed: int) -> int:
    # TVM takes seeds in [1, 2^31 - 1].
    return seed % 2147483646 + 1


def traced_schedule(mod: IRModule, seed: int) -> Schedule:
    """A fresh traced schedule as MetaSchedule's own strategies create for replay."""
    return Schedule(mod, seed=_schedule_seed(seed), debug_mask=0, error_render_level="none")


def reseeded_copy(sch: Schedule, seed: int) -> Schedule:
    """A copy of ``sch`` whose random state is ``seed``'s, as :func:`traced_schedule` sets it.

    Copying a fresh schedule costs a few microseconds where creating one analyses the module
    again (0.1 - 0.4 ms), and replays run by the thousand.
    """
    copy = sch.copy()
    copy.seed(_schedule_seed(seed))
    return copy


def make_candidate(sch: Schedule) -> MeasureCandidate:
    """Wrap a post-processed schedule as a measure candidate (as ReplayTrace does)."""
    return MeasureCandidate(sch, ArgInfo.from_entry_func(sch.mod, remove_preproc=True))


def run_seconds(result: RunnerResult) -> list[float] | None:
    """Run times of a successful measurement, or ``None`` for a failed one."""
    if result.error_msg is not None:
        return None
    return valid_seconds(result.run_secs)


def valid_seconds(run_secs: Sequence[Any] | None) -> list[float] | None:
    """Run times in seconds (``FloatImm`` or float), or ``None`` unless all are plausible.

    The local runner reports failures that slip past ``error_msg`` as huge or non-positive
    times, and MetaSchedule's database records a failure as a single 1e10.
    """
    if run_secs is None:
        return None
    samples = [float(getattr(s, "value", s)) for s in run_secs]
    if not samples or any(not 0.0 < s < 1e9 for s in samples):
        return None
    return samples


def host_cpu() -> str:
    """LLVM's name of this machine's CPU (the ``mcpu`` of a host target)."""
    return str(codegen.llvm_get_system_cpu())


def host_triple() -> str:
    """LLVM's target triple of this machine."""
    return str(codegen.llvm_get_system_triple())


def is_valid_cpu(cpu: str, triple: str) -> bool:
    """Whether this LLVM knows ``cpu`` as an ``mcpu`` for ``triple``."""
    return bool(codegen.llvm_is_valid_cpu(cpu, triple))


# The tensor intrinsics a target kind's schedule rules can tensorize with: TVM's x86 (VNNI,
# AVX-512), Arm and RISC-V intrinsics for LLVM, its tensor-core intrinsics for CUDA.
_TENSOR_INTRINSIC_MODULES = {
    "llvm": ("x86", "arm_cpu", "riscv_cpu"),
    "cuda": ("cuda",),
}
_TENSOR_INTRIN_PACKAGE = "tvm.s_tir.tensor_intrin"
# What the package's __init__ imports (TVM 0.27): a kind without an entry above needs them all.
_ALL_TENSOR_INTRINSIC_MODULES = ("cuda", "arm_cpu", "x86", "rocm", "hexagon", "riscv_cpu")
# The modules imported under the package without its __init__; empty while none are.
_modules_without_init: set[str] = set()


def register_tensor_intrinsics(target: Target) -> None:
    """Register the tensor intrinsics of ``target``'s kind only, as the process's intrinsics.

    Every ``TuneContext`` imports ``tvm.s_tir.tensor_intrin``, which parses the TVMScript of
    every target's intrinsics on its first import in a process: 20 - 40 s on a 2-core machine,
    most of it CUDA's, where tuning a small CPU kernel takes seconds. For a process that tunes for
    one target (``ms-droplet tune``, the benchmark harness), this imports the package without
    its ``__init__`` and only the modules of the target's kind (about 2 s for LLVM), so that the
    contexts' import finds it done. The contexts' import then adds nothing, so a process that
    tunes for another kind later must call this again for that kind first (it adds the kind's
    modules; a kind without an entry gets every module). A package TVM imported whole is left
    as it is.
    """
    modules = _TENSOR_INTRINSIC_MODULES.get(target.kind.name)
    if not _modules_without_init:
        if _TENSOR_INTRIN_PACKAGE in sys.modules:
            return
        if modules is None:
            importlib.import_module(_TENSOR_INTRIN_PACKAGE)
            return
        spec = importlib.util.find_spec(_TENSOR_INTRIN_PACKAGE)
        sys.modules[_TENSOR_INTRIN_PACKAGE] = importlib.util.module_from_spec(spec)
    for module in modules or _ALL_TENSOR_INTRINSIC_MODULES:
        importlib.import_module(f"{_TENSOR_INTRIN_PACKAGE}.{module}")
        _modules_without_init.add(module)


def estimate_flops(mod: IRModule) -> float:
    """Floating-point operations of one run of a module (what MetaSchedule reports GFLOP/s of)."""
    from tvm.s_tir.analysis import estimate_tir_flops

    return float(estimate_tir_flops(mod))


def default_measure_callbacks() -> list[MeasureCallback]:
    """MetaSchedule's default measure callbacks: record, clean up, update the cost model."""
    return list(MeasureCallback.create("default"))


def structural_equal(lhs: Any, rhs: Any) -> bool:
    """TVM's structural equality."""
    return bool(tvm_ffi.structural_equal(lhs, rhs))


def object_handle(obj: Any) -> Any:
    """A key that identifies one TVM object (not its structure) within a process."""
    return obj.__chandle__() if hasattr(obj, "__chandle__") else id(obj)


def int_value(value: Any) -> int:
    """Python int of an ``IntImm`` or int."""
    return int(getattr(value, "value", value))


def trace_structure(trace: Trace) -> str:
    """A trace's instructions before post-processing, printed without the values searched.

    Decisions and integer annotation values (the parallel extent, which TVM's MutateParallel
    and the descent change) are left out: the programs sampled from one design space share
    this key, and those of different design spaces (another sketch: a cache stage more or
    less, or one computed at another loop) do not.
    """
    instructions = []
    # Simplified: a design space's own trace holds queries whose results no later instruction
    # uses, which the traces of its measured programs no longer do.
    for inst in trace.simplified(remove_postproc=True).insts:
        if inst.kind.name == "Annotate" and isinstance(inst.inputs[1], (int, IntImm)):
            inst = with_annotation_value(inst, 0)
        instructions.append(inst)
    return str(Trace(instructions, {}))


def with_annotation_value(inst: Instruction, value: int) -> Instruction:
    """Copy of an ``Annotate`` instruction with a new integer annotation value."""
    inputs: Sequence[Any] = list(inst.inputs)
    return Instruction(
        inst.kind, [inputs[0], IntImm("int32", int(value))], list(inst.attrs), list(inst.outputs)
    )


def block_names(func: PrimFunc) -> list[str]:
    """Names of the blocks directly under a function's root block, in program order."""
    body = func.body
    root = getattr(body, "block", None)
    if root is None:
        return []
    sch = Schedule(IRModule({"main": func}))
    return [
        sch.get(block).name_hint for block in sch.get_child_blocks(sch.get_sblock(root.name_hint))
    ]
