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
"""Workloads the command line tunes: TVM's ``te_workload`` table and a small Relax model.

Workloads are named ``NAME:INDEX`` after ``tvm.s_tir.meta_schedule.testing.te_workload.CONFIGS``
so that anyone can rebuild them. Each carries a reference: numpy where the operator has a plain
numpy form (GEMM, softmax, norm, the Relax MLP), otherwise the same PrimFunc compiled without
tuning, which checks the tuned schedule against TVM's unscheduled lowering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MLP_NAME = "mlp"
# Shapes of the built-in Relax model: batch x features -> hidden -> classes.
MLP_SHAPE = (16, 64, 64, 16)


@dataclass
class Workload:
    """A tunable workload with inputs and a way to check outputs."""

    name: str
    mod: object
    flops: float
    is_relax: bool
    numpy_reference: Callable[[list[np.ndarray]], np.ndarray] | None
    params: dict[str, np.ndarray] | None = None


def _numpy_reference(name: str) -> Callable[[list[np.ndarray]], np.ndarray] | None:
    if name == "GMM":
        return lambda args: np.matmul(args[0], args[1])
    if name == "SFM":

        def softmax(args):
            x = args[0] - args[0].max(axis=1, keepdims=True)
            e = np.exp(x)
            return e / e.sum(axis=1, keepdims=True)

        return softmax
    if name == "NRM":
        return lambda args: np.sqrt((args[0].astype("float64") ** 2).sum(axis=(1, 2)))
    return None


def parse_workload(spec: str) -> Workload:
    """Build the workload named ``NAME:INDEX`` (or ``mlp``).

    Raises
    ------
    ValueError
        When the name or index is not in TVM's table.
    """
    import tvm
    from tvm import te
    from tvm.s_tir.meta_schedule.testing import te_workload

    if spec == MLP_NAME:
        return _mlp_workload()
    name, sep, index_text = spec.partition(":")
    if not sep or name not in te_workload.CONFIGS or not index_text.isdigit():
        known = ", ".join(sorted(te_workload.CONFIGS))
        raise ValueError(
            f"Unknown workload '{spec}': expected NAME:INDEX with NAME one of {known} "
            f"(tvm.s_tir.meta_schedule.testing.te_workload.CONFIGS), or '{MLP_NAME}'"
        )
    func, configs = te_workload.CONFIGS[name]
    index = int(index_text)
    if index >= len(configs):
        raise ValueError(f"Workload {name} has indices 0..{len(configs) - 1}, got {index}")
    prim_func = te.create_prim_func(func(*configs[index]))
    mod = tvm.IRModule({"main": prim_func})
    flops = float(tvm.s_tir.analysis.estimate_tir_flops(mod))
    return Workload(spec, mod, flops, False, _numpy_reference(name))


def _mlp_workload() -> Workload:
    from .mlp import MLP

    batch, features, hidden, classes = MLP_SHAPE
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.standard_normal((features, hidden), dtype="float32") * 0.1,
        "b1": rng.standard_normal((hidden,), dtype="float32") * 0.1,
        "w2": rng.standard_normal((hidden, classes), dtype="float32") * 0.1,
    }
    flops = 2.0 * batch * (features * hidden + hidden * classes)

    def reference(args: list[np.ndarray]) -> np.ndarray:
        hidden_out = np.maximum(args[0] @ weights["w1"] + weights["b1"], 0.0)
        return hidden_out @ weights["w2"]

    return Workload(MLP_NAME, MLP, flops, True, reference, weights)


def random_inputs(workload: Workload) -> list[np.ndarray]:
    """Random inputs of every parameter (the last PrimFunc parameter is the output)."""
    rng = np.random.default_rng(0)
    if workload.is_relax:
        batch, features, _, _ = MLP_SHAPE
        return [rng.standard_normal((batch, features), dtype="float32")]
    arrays = []
    for shape, dtype in _tensor_args(workload)[:-1]:
        arrays.append(rng.uniform(-1, 1, size=shape).astype(dtype))
    return arrays


def _tensor_args(workload: Workload) -> list[tuple[tuple[int, ...], str]]:
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    infos = ArgInfo.from_prim_func(workload.mod["main"])
    return [(tuple(int(s) for s in info.shape), str(info.dtype)) for info in infos]


def output_shape(workload: Workload) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of a PrimFunc workload's output buffer."""
    return _tensor_args(workload)[-1]
