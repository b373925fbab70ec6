"""TVM's own tuning entry points, unchanged: nothing here names a search strategy.

Usage: python tvm_entry_points.py WORK_DIR [pass|pipeline ...]
Tunes a one-layer Relax model with the ``MetaScheduleTuneTIR`` pass (into WORK_DIR/pass) and
with the ``static_shape_tuning`` pipeline (into WORK_DIR/pipeline), 4 trials each (or only the
entry points named), then prints one JSON line: for each, the records in its database and
whether its task logs carry droplet's lines. Whether droplet runs is up to MS_DROPLET_DEFAULT /
``ms-droplet run``.
"""

import json
import sys
from pathlib import Path

import tvm
from tvm import relax
from tvm.s_tir import meta_schedule as ms
from tvm.script import ir as I
from tvm.script import relax as R

TARGET = tvm.target.Target({"kind": "llvm", "num-cores": 1})


@I.ir_module
class Dense:
    @R.function
    def main(x: R.Tensor((8, 16), "float32"), w: R.Tensor((16, 16), "float32")) -> R.Tensor(
        (8, 16), "float32"
    ):
        with R.dataflow():
            out = R.nn.relu(R.matmul(x, w))
            R.output(out)
        return out


def report(work_dir):
    logs = "".join(p.read_text() for p in (work_dir / "logs").glob("*task_*.log"))
    records = ms.database.JSONDatabase(work_dir=str(work_dir)).get_all_tuning_records()
    return {"records": len(records), "droplet": "droplet: batch of" in logs}


def tune_pass(work_dir):
    """TVM's MetaSchedule tutorial: fuse, then the MetaScheduleTuneTIR pass."""
    fused = tvm.transform.Sequential(
        [
            relax.transform.LegalizeOps(),
            relax.transform.AnnotateTIROpPattern(),
            relax.transform.FuseOps(),
            relax.transform.FuseTIR(),
        ]
    )(Dense)
    with TARGET:
        relax.transform.MetaScheduleTuneTIR(work_dir=str(work_dir), max_trials_global=4)(fused)


def tune_pipeline(work_dir):
    """TVM's end-to-end optimisation tutorial: the static_shape_tuning pipeline."""
    pipeline = relax.get_pipeline(
        "static_shape_tuning", target=TARGET, total_trials=4, work_dir=str(work_dir)
    )
    pipeline(Dense)


def main(root, names):
    entry_points = {"pass": tune_pass, "pipeline": tune_pipeline}
    for name in names:
        entry_points[name](root / name)
    print(json.dumps({name: report(root / name) for name in names}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or ["pass", "pipeline"])
