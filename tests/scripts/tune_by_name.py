"""Tune with strategy="droplet" after a plain ``import tvm``: ms_droplet comes in by TVM's autoload.

Usage: python tune_by_name.py {tir,relax} WORK_DIR
Prints one JSON line: records in the database, the compiled result's error against numpy, and
whether TVM's entry-point autoload brought ms_droplet in (checked right after ``import tvm``).
"""

import json
import sys

import numpy as np
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.testing import te_workload
from tvm.script import ir as I
from tvm.script import relax as R

# Before this script imports anything of ms_droplet itself.
AUTOLOADED = "ms_droplet" in sys.modules

from ms_droplet import _tvm  # noqa: E402
from ms_droplet.job import fast_local_builder  # noqa: E402

TARGET = tvm.target.Target({"kind": "llvm", "num-cores": 2})
# The user's own builder (the strategy never sees it): the one that skips the tensor-intrinsic
# import in every fresh worker, 10 - 20 s a batch. TVM's stock builder is the one of the pass,
# pipeline, tune_te and upstream tests.
BUILDER = fast_local_builder()
# Its CPU's tensor intrinsics only: TVM parses every target's on the first TuneContext, 30 s of
# CUDA's on two cores that this CPU job does not use.
_tvm.register_tensor_intrinsics(TARGET)


@I.ir_module
class MLP:
    @R.function
    def main(
        x: R.Tensor((8, 32), "float32"),
        w1: R.Tensor((32, 32), "float32"),
        b1: R.Tensor((32,), "float32"),
    ) -> R.Tensor((8, 32), "float32"):
        # One dense layer: a single fused task keeps the test to two tuning batches.
        with R.dataflow():
            out = R.nn.relu(R.add(R.matmul(x, w1), b1))
            R.output(out)
        return out


def tune_tir(work_dir):
    mod = tvm.IRModule({"main": te.create_prim_func(te_workload.matmul(64, 64, 64))})
    database = ms.tune_tir(
        mod,
        TARGET,
        work_dir,
        max_trials_global=16,
        num_trials_per_iter=8,
        strategy="droplet",
        builder=BUILDER,
    )
    sch = ms.tir_integration.compile_tir(database, mod, TARGET)
    rt = tvm.compile(sch.mod, target=TARGET)
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, (64, 64)).astype("float32") for _ in range(2))
    args = [tvm.runtime.tensor(v) for v in (a, b, np.zeros((64, 64), "float32"))]
    rt["main"](*args)
    return database, float(np.abs(args[2].numpy() - a @ b).max())


def fuse(mod, params):
    """What compile_relax does before it looks kernels up: tune those same fused kernels."""
    mod = tvm.relax.transform.BindParams("main", params)(mod)
    for transform in (
        tvm.relax.transform.LegalizeOps(),
        tvm.relax.transform.AnnotateTIROpPattern(),
        tvm.relax.transform.FuseOps(),
        tvm.relax.transform.FoldConstant(),
        tvm.relax.transform.FuseTIR(),
    ):
        mod = transform(mod)
    return mod


def tune_relax(work_dir):
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.uniform(-1, 1, (32, 32)).astype("float32"),
        "b1": rng.uniform(-1, 1, (32,)).astype("float32"),
    }
    params = {k: tvm.runtime.tensor(v) for k, v in weights.items()}
    database = ms.relax_integration.tune_relax(
        fuse(MLP, params),
        {},
        TARGET,
        work_dir,
        max_trials_global=12,
        num_trials_per_iter=6,
        strategy="droplet",
        builder=BUILDER,
        # tune_tir above runs the default gradient scheduler; this covers the other one.
        task_scheduler="round-robin",
    )
    executable = ms.relax_integration.compile_relax(database, MLP, TARGET, params)
    vm = tvm.relax.VirtualMachine(executable, tvm.cpu())
    x = rng.uniform(-1, 1, (8, 32)).astype("float32")
    out = vm["main"](tvm.runtime.tensor(x)).numpy()
    expected = np.maximum(x @ weights["w1"] + weights["b1"], 0)
    return database, float(np.abs(out - expected).max())


if __name__ == "__main__":
    mode, work_dir = sys.argv[1], sys.argv[2]
    database, error = (tune_tir if mode == "tir" else tune_relax)(work_dir)
    print(
        json.dumps(
            {
                "records": len(database.get_all_tuning_records()),
                "max_abs_error": error,
                "autoloaded": AUTOLOADED,
            }
        )
    )
