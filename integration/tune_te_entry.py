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
"""TVM's ``tune_te``, run unchanged but for the value its last step prints.

``python -m tvm.s_tir.meta_schedule.testing.tune_te`` treats what ``tune_tir`` returns as a
``Schedule`` (``sch.mod.script()``), but ``tune_tir`` returns the tuning ``Database``, so stock
``tune_te`` tunes, records everything, and then fails at its final print. Without editing TVM,
this wrapper hands ``tune_te`` what it expects: ``tune_tir`` wrapped, in this process only, to
return ``compile_tir(database, mod, target)``, the best schedule. The fix upstream is that line
in ``tune_te`` itself.

Usage (same arguments as tune_te; under ``ms-droplet run`` droplet is its strategy)::

    ms-droplet run integration/tune_te_entry.py --workload GMM --target '{"kind": "llvm"}' ...

With ``TUNE_TE_LOCAL_RUNNER=1`` the ``RPCRunner`` tune_te builds becomes a ``LocalRunner`` with the
same evaluator settings, so that the RPC path's cost can be measured against the local one
(``rpc_tune_te.py --runner local``). With ``TUNE_TE_BUILDER_TIMEOUT=SECONDS`` tune_te's builder,
TVM's ``LocalBuilder``, keeps its build function but gets that timeout instead of its 30 s: each
of its workers imports every target's tensor intrinsics inside its first build, which takes 38 s
on a 2-core Zen 3 (``python -c "import tvm, tvm.s_tir.tensor_intrin"``), so that at 30 s every
build there times out, whatever the strategy.
"""

import os
import runpy
from typing import Any

from tvm.s_tir.meta_schedule import builder, runner, tir_integration

TUNE_TE = "tvm.s_tir.meta_schedule.testing.tune_te"


def _tune_tir_returning_the_best_schedule(
    original: Any, builder_timeout_sec: float | None = None
) -> Any:
    def tune_tir(*args: Any, **kwargs: Any) -> Any:
        if builder_timeout_sec is not None and "builder" not in kwargs:
            kwargs["builder"] = builder.LocalBuilder(timeout_sec=builder_timeout_sec)
        database = original(*args, **kwargs)
        mod = kwargs["mod"] if "mod" in kwargs else args[0]
        target = kwargs["target"] if "target" in kwargs else args[1]
        return tir_integration.compile_tir(database, mod, target)

    return tune_tir


def _local_runner(*args: Any, evaluator_config: Any = None, **kwargs: Any) -> Any:
    """What tune_te's RPCRunner(...) call builds instead: a LocalRunner, same measurements."""
    del args, kwargs  # the RPC settings
    return runner.LocalRunner(evaluator_config=evaluator_config)


if __name__ == "__main__":
    if os.environ.get("TUNE_TE_LOCAL_RUNNER") == "1":
        runner.RPCRunner = _local_runner
    timeout = os.environ.get("TUNE_TE_BUILDER_TIMEOUT")
    tir_integration.tune_tir = _tune_tir_returning_the_best_schedule(
        tir_integration.tune_tir, float(timeout) if timeout else None
    )
    runpy.run_module(TUNE_TE, run_name="__main__", alter_sys=True)
