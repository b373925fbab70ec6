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
"""Relax models of the end-to-end benchmark, built with TVM's own front ends (no downloads).

Each model is an ``nn.Module`` of :mod:`tvm.relax.frontend.nn` with random weights (fixed seed)
bound as constants, legalized and fused the way ``compile_relax`` does it, so that the tasks
``tune_relax`` extracts are the kernels the compiled model runs.

- ``cnn``: four conv2d + bias + ReLU blocks of different shapes (3x3 and 1x1, strides 1 and
  2), a global sum pool and a dense layer: six tasks.
- ``transformer``: a pre-norm self-attention block (layer norm, QKV projection, four heads
  with their attention matmuls and softmax, output projection, residual).
- ``tiny``: two small dense layers, for the harness's own test.
- ``resnet18``: torchvision's ResNet-18 with random weights through
  ``tvm.relax.frontend.torch``, where ``torch`` and ``torchvision`` are installed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Model:
    """A model of the benchmark: its name, how to build it, and its input shape."""

    name: str
    build: Callable[[], tuple[Any, dict[str, np.ndarray]]]
    input_shape: tuple[int, ...]
    description: str
    # N, the default global trials: about 32-48 a task, what a user tuning a model affords.
    trials: int
    # Candidates per batch.
    per_iter: int = 16

    def inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Random inputs, the same for every strategy."""
        rng = np.random.default_rng(seed)
        return [rng.standard_normal(self.input_shape).astype("float32")]


def _nn_modules() -> dict[str, Any]:
    """The ``nn.Module`` classes (defined on first use: importing TVM is slow)."""
    from tvm.relax.frontend import nn
    from tvm.relax.frontend.nn import op

    class ConvBlock(nn.Module):
        def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
            self.conv = nn.Conv2D(cin, cout, kernel, stride=stride, padding=kernel // 2)

        def forward(self, x: nn.Tensor) -> nn.Tensor:
            return op.relu(self.conv(x))

    class SmallCNN(nn.Module):
        def __init__(self, blocks: list[tuple[int, int, int, int]], classes: int) -> None:
            self.blocks = nn.ModuleList([ConvBlock(*block) for block in blocks])
            self.fc = nn.Linear(blocks[-1][1], classes)

        def forward(self, x: nn.Tensor) -> nn.Tensor:
            for block in self.blocks:
                x = block(x)
            # A global sum pool; the dense layer's random weights absorb the mean's scale.
            return self.fc(op.sum(x, axis=[2, 3]))

    class AttentionBlock(nn.Module):
        def __init__(self, seq: int, hidden: int, heads: int) -> None:
            self.seq, self.hidden, self.heads = seq, hidden, heads
            self.norm = nn.LayerNorm(hidden)
            self.qkv = nn.Linear(hidden, 3 * hidden)
            self.proj = nn.Linear(hidden, hidden)

        def forward(self, x: nn.Tensor) -> nn.Tensor:
            seq, hidden, heads = self.seq, self.hidden, self.heads
            head = hidden // heads
            qkv = op.reshape(self.qkv(self.norm(x)), [seq, 3, heads, head])
            q, k, v = (
                op.reshape(t, [heads, seq, head])
                for t in op.split(op.permute_dims(qkv, [1, 2, 0, 3]), 3, axis=0)
            )
            scores = op.matmul(q, op.permute_dims(k, [0, 2, 1])) * (1.0 / head**0.5)
            attention = op.matmul(op.softmax(scores, axis=-1), v)
            return x + self.proj(op.reshape(op.permute_dims(attention, [1, 0, 2]), [seq, hidden]))

    class MLP(nn.Module):
        def __init__(self, sizes: list[int]) -> None:
            self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in itertools.pairwise(sizes)])

        def forward(self, x: nn.Tensor) -> nn.Tensor:
            for layer in self.layers[:-1]:
                x = op.relu(layer(x))
            return self.layers[-1](x)

    return {"SmallCNN": SmallCNN, "AttentionBlock": AttentionBlock, "MLP": MLP, "spec": nn.spec}


def _export(module: Any, input_shape: tuple[int, ...]) -> tuple[Any, dict[str, np.ndarray]]:
    """Export an ``nn.Module`` to Relax; random weights (seed 0) for its parameters."""
    spec = _nn_modules()["spec"]
    mod, params = module.export_tvm(
        spec={"forward": {"x": spec.Tensor(list(input_shape), "float32")}}
    )
    rng = np.random.default_rng(0)
    weights = {}
    for name, param in params:
        shape = [int(dim) for dim in param.shape]
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        weights[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype("float32")
    return mod, weights


def _cnn(blocks: list[tuple[int, int, int, int]], input_shape: tuple[int, ...]) -> Callable:
    def build() -> tuple[Any, dict[str, np.ndarray]]:
        return _export(_nn_modules()["SmallCNN"](blocks, classes=10), input_shape)

    return build


def _transformer(seq: int, hidden: int, heads: int) -> Callable:
    def build() -> tuple[Any, dict[str, np.ndarray]]:
        return _export(_nn_modules()["AttentionBlock"](seq, hidden, heads), (seq, hidden))

    return build


def _mlp(sizes: list[int], batch: int) -> Callable:
    def build() -> tuple[Any, dict[str, np.ndarray]]:
        return _export(_nn_modules()["MLP"](sizes), (batch, sizes[0]))

    return build


def _resnet18() -> tuple[Any, dict[str, np.ndarray]]:
    import torch
    import torchvision
    from torch.export import export
    from tvm.relax.frontend.torch import from_exported_program

    torch.manual_seed(0)
    network = torchvision.models.resnet18(weights=None).eval()
    example = (torch.randn(1, 3, 224, 224),)
    with torch.no_grad():
        mod = from_exported_program(export(network, example), keep_params_as_input=False)
    return mod, {}


MODELS: dict[str, Model] = {
    "cnn": Model(
        "cnn",
        _cnn([(3, 32, 3, 1), (32, 64, 3, 2), (64, 64, 3, 1), (64, 128, 1, 2)], (1, 3, 32, 32)),
        (1, 3, 32, 32),
        "4 conv2d+bias+relu blocks (3x3 s1, 3x3 s2, 3x3 s1, 1x1 s2) on 32x32, sum pool, dense",
        trials=256,
    ),
    "transformer": Model(
        "transformer",
        _transformer(seq=64, hidden=128, heads=4),
        (64, 128),
        "pre-norm self-attention block: 64 tokens, hidden 128, 4 heads, residual",
        trials=320,
    ),
    "tiny": Model(
        "tiny",
        _mlp([32, 32, 10], batch=8),
        (8, 32),
        "two dense layers (32 -> 32 -> 10, batch 8) with a ReLU: two tasks",
        trials=16,
        per_iter=4,
    ),
    "resnet18": Model(
        "resnet18",
        _resnet18,
        (1, 3, 224, 224),
        "torchvision ResNet-18, random weights (needs torch and torchvision)",
        trials=1024,
    ),
}


def get_model(name: str) -> Model:
    """The model called ``name``.

    Raises
    ------
    ValueError
        For an unknown name, or ``resnet18`` without torch and torchvision installed.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}': choose one of {', '.join(MODELS)}")
    if name == "resnet18":
        import importlib.util

        missing = [m for m in ("torch", "torchvision") if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(f"model 'resnet18' needs {' and '.join(missing)}: pip install them")
    return MODELS[name]


def bound_module(model: Model) -> tuple[Any, str]:
    """The model's Relax module with its weights bound as constants, and its entry function."""
    import tvm
    from tvm import relax

    mod, weights = model.build()
    function = next(gv.name_hint for gv in mod.get_global_vars())
    params = {name: tvm.runtime.tensor(value) for name, value in weights.items()}
    if params:
        mod = relax.transform.BindParams(function, params)(mod)
    return mod, function


def tuning_module(model: Model, target: Any) -> Any:
    """The model with its weights bound, legalized and fused for ``tune_relax``."""
    from ms_droplet.job import relax_tuning_module
    from ms_droplet.workloads import Workload

    mod, _ = bound_module(model)
    return relax_tuning_module(Workload(model.name, mod, 0.0, True, None), target)
