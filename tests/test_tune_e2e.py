"""End to end on llvm: real builder, runner and JSON database, strategy chosen by name.

The tuning runs in a child process that never imports ms_droplet: strategy="droplet" must
resolve through TVM's ``tvm.backends`` entry point alone.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import database_programs, descent_programs, run_child

SCRIPT = Path(__file__).parent / "scripts" / "tune_by_name.py"
pytestmark = pytest.mark.tuning


@pytest.mark.parametrize(("mode", "budget"), [("tir", 16), ("relax", 12)])
def test_tune_by_name_runs_the_descent_within_the_budget(tmp_path, mode, budget):
    out = run_child([str(SCRIPT), mode, str(tmp_path / "work")], cwd=tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["autoloaded"], "TVM's entry point did not load ms_droplet"
    # Every trial of the budget was measured and recorded, no more.
    assert result["records"] == budget
    # The tuned program computes what numpy computes.
    assert result["max_abs_error"] < 1e-3
    # The descent phase ran, and what it proposed went through the user's database.
    hashes, descended = descent_programs(tmp_path / "work")
    records, recorded = database_programs(tmp_path / "work")
    assert len(records) == budget
    assert descended > 0 and len(hashes) == descended
    assert hashes <= recorded


# The TIR path of the command (GMM:0) is checked, to the end, by the resume test.
@pytest.mark.parametrize("workload", ["mlp"])
def test_cli_tunes_checks_and_reports(tmp_path, workload):
    out = run_child(
        ["-m", "ms_droplet.cli", "tune", workload, "--trials", "8", "--per-iter", "4", "--json"],
        cwd=tmp_path,
    )
    result = json.loads(out[out.index("{") :])
    assert result["workload"] == workload and result["strategy"] == "droplet"
    assert result["records"] == 8 and result["resumed_from"] == 0
    assert result["reference"] == "numpy" and result["correct"]
    assert result["latency_us"] > 0 and result["gflops"] > 0


# A fresh process: this one imported every intrinsic with its first TuneContext.
_ONE_KIND_OF_INTRINSICS = """
import json, sys
import tvm
from tvm import te
from ms_droplet import _tvm
from tvm.s_tir import meta_schedule as ms

target = tvm.target.Target({"kind": "llvm", "mcpu": "cascadelake", "num-cores": 2})
_tvm.register_tensor_intrinsics(target)
a = te.placeholder((64, 64), "uint8", name="a")
b = te.placeholder((64, 64), "int8", name="b")
k = te.reduce_axis((0, 64), "k")
c = te.compute(
    (64, 64), lambda i, j: te.sum(a[i, k].astype("int32") * b[j, k].astype("int32"), axis=k)
)
context = ms.TuneContext(
    mod=tvm.IRModule({"main": te.create_prim_func([a, b, c])}),
    target=target,
    space_generator="post-order-apply",
    search_strategy="replay-trace",
    num_threads=1,
)
result = {
    "vnni_spaces": sum("dot_16x4_vnni" in str(s.trace) for s in context.generate_design_space()),
    "cuda_loaded": "tvm.s_tir.tensor_intrin.cuda" in sys.modules,
}
# The same process tuning for CUDA afterwards: the second call adds CUDA's intrinsics, which
# the tensor-core schedule rules of a CUDA context look up (none registered: a ValueError).
cuda = tvm.target.Target({"kind": "cuda", "arch": "sm_80", "max_threads_per_block": 1024,
    "max_shared_memory_per_block": 49152, "thread_warp_size": 32})
_tvm.register_tensor_intrinsics(cuda)
x = te.placeholder((64, 64), "float16", name="x")
y = te.placeholder((64, 64), "float16", name="y")
z = te.compute((64, 64), lambda i, j: te.sum(x[i, k].astype("float32") * y[j, k], axis=k))
ms.TuneContext(
    mod=tvm.IRModule({"main": te.create_prim_func([x, y, z])}),
    target=cuda,
    space_generator="post-order-apply",
    search_strategy="replay-trace",
    num_threads=1,
)
result["cuda_context_after"] = True
print(json.dumps(result))
"""


def test_a_cpu_job_registers_the_cpu_intrinsics_and_skips_cudas(tmp_path):
    # An int8 matmul on a VNNI CPU: the default schedule rules tensorize it with TVM's x86
    # intrinsic, which is registered; CUDA's intrinsics (most of the import) are not parsed
    # until the process asks for a CUDA target.
    out = run_child(["-c", _ONE_KIND_OF_INTRINSICS], cwd=tmp_path)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["vnni_spaces"] > 0 and not result["cuda_loaded"]
    assert result["cuda_context_after"]


def test_cli_rejects_bad_input(tmp_path):
    for args, message in [
        (["tune", "GMM:99"], "has indices"),
        (["tune", "XYZ:0"], "Unknown workload"),
        (["tune", "GMM:0", "--option", "explore_trails=3"], "Unknown DropletSearch option"),
        (["tune", "GMM:0", "--target", '{"kind": "cuda"}'], "not supported"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "ms_droplet.cli", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr[-500:])
