"""Print which strategy MetaSchedule builds where TVM's code asks for evolutionary search.

Usage: python default_strategy.py (or ``ms-droplet run default_strategy.py``, or as a module).
Prints one JSON line: for the name "evolutionary" (tune_tir's default) and for an
``EvolutionarySearch()`` object (what tune_te builds), whether the tune context got droplet.
"""

import json

import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.search_strategy.search_strategy import _PySearchStrategy
from tvm.s_tir.meta_schedule.testing import te_workload

from ms_droplet import _tvm

TARGET = tvm.target.Target({"kind": "llvm", "num-cores": 1})
# What is checked is the strategy, not the intrinsics: register the CPU's only (TVM parses every
# target's on the first TuneContext, 30 s of CUDA's on two cores, in each of three children).
_tvm.register_tensor_intrinsics(TARGET)


def is_droplet(strategy):
    context = ms.TuneContext(
        mod=tvm.IRModule({"main": te.create_prim_func(te_workload.matmul(16, 16, 16))}),
        target=TARGET,
        space_generator="post-order-apply",
        search_strategy=strategy,
    )
    return isinstance(context.search_strategy, _PySearchStrategy)


if __name__ == "__main__":
    print(
        json.dumps(
            {
                "name": is_droplet("evolutionary"),
                "object": is_droplet(ms.search_strategy.EvolutionarySearch()),
            }
        )
    )
