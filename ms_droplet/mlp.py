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
"""The built-in Relax model of ``ms-droplet tune mlp``: a two-layer perceptron.

Its weights are parameters, bound at tuning time, so that the tuned kernels are the ones a real
model would run. Shapes follow :data:`ms_droplet.workloads.MLP_SHAPE`.
"""

from tvm.script import ir as I
from tvm.script import relax as R


@I.ir_module
class MLP:
    """x (16, 64) -> relu(x @ w1 + b1) (16, 64) -> (16, 16)."""

    @R.function
    def main(
        x: R.Tensor((16, 64), "float32"),
        w1: R.Tensor((64, 64), "float32"),
        b1: R.Tensor((64,), "float32"),
        w2: R.Tensor((64, 16), "float32"),
    ) -> R.Tensor((16, 16), "float32"):
        with R.dataflow():
            hidden = R.nn.relu(R.add(R.matmul(x, w1), b1))
            out = R.matmul(hidden, w2)
            R.output(out)
        return out
