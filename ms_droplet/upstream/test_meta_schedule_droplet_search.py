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
"""Test Meta Schedule DropletSearch: the strategy behind ``strategy="droplet"``."""

import json
from pathlib import Path

import numpy as np
import pytest

import tvm
import tvm.testing
from tvm import relax, te
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.search_strategy import DropletSearch, SearchStrategy
from tvm.s_tir.meta_schedule.search_strategy.droplet_search import Droplet
from tvm.s_tir.meta_schedule.testing import te_workload
from tvm.script import ir as I
from tvm.script import relax as R

PROVENANCE = "droplet_provenance.jsonl"


def _target():
    return tvm.target.Target(
        {"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu(), "num-cores": 1}
    )


def _matmul(n=32):
    return tvm.IRModule({"main": te.create_prim_func(te_workload.matmul(n, n, n))})


def _phases(work_dir):
    """The phase of every measured candidate, from the side file droplet search writes."""
    lines = (Path(work_dir) / PROVENANCE).read_text().splitlines()
    return [json.loads(line)["phase"] for line in lines]


def test_create_by_name():
    strategy = SearchStrategy.create("droplet", explore_trials=16)
    assert isinstance(strategy, DropletSearch)
    assert strategy.options["explore_trials"] == 16
    assert isinstance(ms.search_strategy.create("droplet"), DropletSearch)


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="explore_trails"):
        DropletSearch(explore_trails=16)


def test_droplet_descends_to_the_minimum():
    def run_time(point):
        return 1.0 + (point[0] - 6) ** 2 + 2 * (point[1] - 2) ** 2

    droplet = Droplet([9, 9], seed=0)
    droplet.restart((0, 8), [run_time((0, 8))])
    while not droplet.converged:
        for point in droplet.ask(4):
            droplet.tell(point, [run_time(point)])
    assert droplet.centre == (6, 2)


def test_tune_tir_explores_then_descends(tmp_path):
    target = _target()
    mod = _matmul()
    database = ms.tune_tir(
        mod,
        target,
        str(tmp_path),
        max_trials_global=8,
        num_trials_per_iter=4,
        # A fresh build worker first imports TVM's tensor intrinsics, which on a busy two-core
        # machine can take most of the default 30 s.
        builder=ms.builder.LocalBuilder(timeout_sec=120.0),
        strategy="droplet",
    )
    records = database.get_all_tuning_records()
    assert 0 < len(records) <= 8
    phases = _phases(tmp_path)
    assert phases[0] == "explore"
    assert "descent" in phases
    # The best schedule compiles and computes the matmul.
    sch = ms.tir_integration.compile_tir(database, mod, target)
    func = tvm.compile(sch.mod, target=target)
    a = np.random.uniform(size=(32, 32)).astype("float32")
    b = np.random.uniform(size=(32, 32)).astype("float32")
    c = tvm.runtime.tensor(np.zeros((32, 32), "float32"))
    func(tvm.runtime.tensor(a), tvm.runtime.tensor(b), c)
    tvm.testing.assert_allclose(c.numpy(), a @ b, rtol=1e-4)


def test_meta_schedule_tune_tir_pass_takes_the_strategy(tmp_path):
    with _target():
        relax.transform.MetaScheduleTuneTIR(str(tmp_path), 4, strategy="droplet")(_matmul())
    assert _phases(tmp_path)


def test_static_shape_tuning_pipeline_takes_the_strategy(tmp_path):
    @I.ir_module
    class Module:
        @R.function
        def main(x: R.Tensor((16, 32), "float32"), w: R.Tensor((32, 16), "float32")):
            with R.dataflow():
                y = R.matmul(x, w)
                R.output(y)
            return y

    pipeline = relax.pipeline.static_shape_tuning_pipeline(
        total_trials=4, target=_target(), work_dir=str(tmp_path), strategy="droplet"
    )
    pipeline(Module)
    assert _phases(tmp_path)


if __name__ == "__main__":
    tvm.testing.main()
