"""CUDA: tune a matmul with strategy="droplet" on a real GPU; skipped cleanly without one."""

import numpy as np
import pytest
import tvm
from conftest import matmul_module
from tvm.s_tir import meta_schedule as ms

pytestmark = [pytest.mark.gpu, pytest.mark.tuning]


def _has_cuda_gpu() -> bool:
    try:
        return bool(tvm.cuda(0).exist)
    except Exception:  # a TVM build without CUDA raises instead of answering
        return False


@pytest.mark.skipif(not _has_cuda_gpu(), reason="needs a CUDA GPU")
def test_droplet_tunes_a_cuda_matmul(tmp_path):
    target = tvm.target.Target.from_device(tvm.cuda(0))
    mod = matmul_module(256)
    database = ms.tune_tir(
        mod, target, str(tmp_path), max_trials_global=64, num_trials_per_iter=16, strategy="droplet"
    )
    assert len(database.get_all_tuning_records()) == 64
    sch = ms.tir_integration.compile_tir(database, mod, target)
    rt = tvm.compile(sch.mod, target=target)
    dev = tvm.cuda(0)
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, (256, 256)).astype("float32") for _ in range(2))
    args = [tvm.runtime.tensor(v, dev) for v in (a, b, np.zeros((256, 256), "float32"))]
    rt["main"](*args)
    np.testing.assert_allclose(args[2].numpy(), a @ b, rtol=1e-4, atol=1e-4)
    seconds = rt.jit().time_evaluator("main", dev, number=20, repeat=5)(*args).median
    print(f"CUDA matmul 256^3 with droplet: {seconds * 1e6:.2f} us")
