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
"""The upstream patch's changes to files apache/tvm already has.

Each change is a small anchored replacement: an exact piece of TVM's source and what it
becomes. When TVM's source moves on so that an anchor no longer appears exactly once, the
export stops with an error that names the file and the anchor, never a patch that half
applies.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

SEARCH_STRATEGY_DIR = "python/tvm/s_tir/meta_schedule/search_strategy"


class UpstreamSourceError(ValueError):
    """TVM's source does not look as the patch expects."""


@dataclass(frozen=True)
class Edit:
    """Replace ``anchor`` (found exactly once in ``path``) with ``replacement``."""

    path: str
    anchor: str
    replacement: str
    why: str
    # Documentation lives only in a source checkout, not in the installed wheel's ``tvm/``: an
    # optional edit of a file that is absent is skipped.
    optional: bool = False


def _code(text: str, indent: int = 0) -> str:
    """A block of TVM source as written in this file, re-indented to start at ``indent``."""
    return textwrap.indent(textwrap.dedent(text.removeprefix("\n")), " " * indent)


def _insert_before(path: str, anchor: str, text: str, why: str, optional: bool = False) -> Edit:
    return Edit(path, anchor, text + anchor, why, optional)


def _insert_after(path: str, anchor: str, text: str, why: str, optional: bool = False) -> Edit:
    return Edit(path, anchor, anchor + text, why, optional)


_STRATEGY_PY = f"{SEARCH_STRATEGY_DIR}/search_strategy.py"
_TUNE_TE = "python/tvm/s_tir/meta_schedule/testing/tune_te.py"
_TRANSFORM = "python/tvm/relax/transform/transform.py"
_PIPELINE = "python/tvm/relax/pipeline.py"
_TUTORIAL = "docs/deep_dive/tensor_ir/tutorials/meta_schedule.py"
_STRATEGY_DOC = (
    "    strategy: Union[str, SearchStrategy]\n"
    '       the search strategy, by name ("evolutionary", "droplet", "replay-trace") or as an\n'
    "       object\n"
)
_STRATEGY_PARAMETER = (
    '    strategy: "str | tvm.s_tir.meta_schedule.SearchStrategy" = "evolutionary",\n'
)


EDITS: tuple[Edit, ...] = (
    # --- the name "droplet" -------------------------------------------------------------------
    _insert_before(
        f"{SEARCH_STRATEGY_DIR}/__init__.py",
        "from .evolutionary_search import EvolutionarySearch\n",
        "from .droplet_search import DropletSearch\n",
        "export DropletSearch from the search_strategy package",
    ),
    _insert_after(
        _STRATEGY_PY,
        _code(
            """
                Literal[
                    "replay-func",
                    "replay-trace",
                    "evolutionary",
        """,
            indent=8,
        ),
        '            "droplet",\n',
        'let SearchStrategyType accept "droplet"',
    ),
    _insert_after(
        _STRATEGY_PY,
        '            "replay-trace",\n            "replay-func",\n',
        '            "droplet",\n',
        'let SearchStrategy.create accept "droplet"',
    ),
    _insert_before(
        _STRATEGY_PY,
        "            EvolutionarySearch,\n            ReplayFunc,\n",
        "            DropletSearch,\n",
        "import DropletSearch in SearchStrategy.create",
    ),
    _insert_after(
        _STRATEGY_PY,
        _code(
            """
                if kind == "replay-func":
                    return ReplayFunc(*args, **kwargs)  # type: ignore
        """,
            indent=8,
        ),
        _code(
            """
                if kind == "droplet":
                    return DropletSearch(*args, **kwargs)
        """,
            indent=8,
        ),
        'create DropletSearch for "droplet"',
    ),
    # --- tune_te: print the tuned schedule, not the database; choose the strategy -------------
    Edit(
        _TUNE_TE,
        "# ruff: noqa: F821\n",
        "",
        "drop the noqa that covered the Schedule annotation of tune_tir's result",
    ),
    _insert_before(
        _TUNE_TE,
        "    parsed = args.parse_args()\n",
        _code(
            """
            args.add_argument(
                "--strategy",
                type=str,
                choices=["evolutionary", "droplet", "replay-trace"],
                default="evolutionary",
                help="the search strategy",
            )
        """,
            indent=4,
        ),
        "add tune_te's --strategy option",
    ),
    Edit(
        _TUNE_TE,
        _code(
            """
            with ms.Profiler() as profiler:
                sch: s_tir.Schedule | None = ms.tir_integration.tune_tir(
                    mod=create_te_workload(ARGS.workload, 0),
        """,
            indent=4,
        ),
        _code(
            """
            mod = create_te_workload(ARGS.workload, 0)
            with ms.Profiler() as profiler:
                database = ms.tir_integration.tune_tir(
                    mod=mod,
        """,
            indent=4,
        ),
        "take the Database that tune_tir returns (tune_te printed it as a Schedule)",
    ),
    Edit(
        _TUNE_TE,
        "            strategy=ms.search_strategy.EvolutionarySearch(),\n",
        "            strategy=ARGS.strategy,\n",
        "tune with tune_te's --strategy",
    ),
    _insert_before(
        _TUNE_TE,
        "    if sch is None:\n",
        "    sch = ms.tir_integration.compile_tir(database, mod, ARGS.target)\n",
        "print the best schedule the database holds",
    ),
    # --- the tuning passes and the static-shape pipeline take a strategy ----------------------
    # The C++ passes hand tune_tir / tune_relax no strategy (their FFI signatures take none), so
    # a strategy other than the default runs the same call from a Python pass: no C++ change,
    # and the default path stays the C++ pass it is today.
    _insert_after(
        _TRANSFORM,
        "def MetaScheduleTuneTIR(\n    work_dir: str,\n    max_trials_global: int,\n",
        _STRATEGY_PARAMETER,
        "add MetaScheduleTuneTIR's strategy parameter",
    ),
    _insert_before(
        _TRANSFORM,
        "       maximum number of total trials allowed for tuning\n    Returns\n",
        _STRATEGY_DOC,
        "document MetaScheduleTuneTIR's strategy",
    ),
    Edit(
        _TRANSFORM,
        "    return _ffi_api.MetaScheduleTuneTIR(work_dir, max_trials_global)  # type: ignore\n",
        _code(
            """
    if isinstance(strategy, str) and strategy == "evolutionary":
        return _ffi_api.MetaScheduleTuneTIR(work_dir, max_trials_global)  # type: ignore
    # The C++ pass calls the global function tune_tir with no strategy: for any other, this
    # makes the same call (with the global function's round-robin scheduler) from Python.
    from tvm.s_tir.meta_schedule.tir_integration import tune_tir

    normalize_mod = tvm.get_global_func("tvm.s_tir.meta_schedule.normalize_mod")
    target = tvm.target.Target.current(allow_none=False)

    @tvm.tirx.transform.prim_func_pass(opt_level=0, name="MetaScheduleTuneTIR", traceable=True)
    def _tune(func: PrimFunc, _mod: tvm.ir.IRModule, _ctx: tvm.transform.PassContext):
        tune_tir(
            normalize_mod(func),
            target,
            work_dir,
            max_trials_global,
            task_scheduler="round-robin",
            strategy=strategy,
        )
        return func

    return _tune
""",
            indent=4,
        ),
        "apply MetaScheduleTuneTIR's strategy",
    ),
    _insert_after(
        _TRANSFORM,
        "    max_trials_per_task: int | None = None,\n    op_names: list[str] | None = None,\n",
        _STRATEGY_PARAMETER,
        "add MetaScheduleTuneIRMod's strategy parameter",
    ),
    _insert_after(
        _TRANSFORM,
        "When it is None, all operators\n       are tuned.\n",
        _STRATEGY_DOC,
        "document MetaScheduleTuneIRMod's strategy",
    ),
    Edit(
        _TRANSFORM,
        _code(
            """
    return _ffi_api.MetaScheduleTuneIRMod(
        params, work_dir, max_trials_global, max_trials_per_task, op_names
    )  # type: ignore
""",
            indent=4,
        ),
        _code(
            """
    if isinstance(strategy, str) and strategy == "evolutionary":
        return _ffi_api.MetaScheduleTuneIRMod(
            params, work_dir, max_trials_global, max_trials_per_task, op_names
        )  # type: ignore
    # The C++ pass calls the global function tune_relax with no strategy: for any other, this
    # makes the same call from Python.
    from tvm.s_tir.meta_schedule.relax_integration import tune_relax

    target = tvm.target.Target.current(allow_none=False)
    per_task = max_trials_global if max_trials_per_task is None else max_trials_per_task

    @tvm.transform.module_pass(opt_level=0, name="MetaScheduleTuneIRModule", traceable=True)
    def _tune(mod: tvm.ir.IRModule, _ctx: tvm.transform.PassContext) -> tvm.ir.IRModule:
        tune_relax(
            mod,
            params,
            target,
            work_dir,
            max_trials_global,
            max_trials_per_task=per_task,
            op_names=op_names,
            strategy=strategy,
        )
        return mod

    return _tune
""",
            indent=4,
        ),
        "apply MetaScheduleTuneIRMod's strategy",
    ),
    _insert_after(
        _PIPELINE,
        "    cpu_weight_prepack: bool = False,\n    max_trials_per_task: int | None = None,\n",
        _STRATEGY_PARAMETER,
        "add static_shape_tuning_pipeline's strategy parameter",
    ),
    _insert_after(
        _PIPELINE,
        "        each task receives adequate tuning resources in one iteration.\n",
        _code(
            """

                strategy : Union[str, SearchStrategy]
                    The search strategy, by name ("evolutionary", "droplet", "replay-trace") or as
                    an object.
        """,
            indent=4,
        ),
        "document static_shape_tuning_pipeline's strategy",
    ),
    _insert_after(
        _PIPELINE,
        "                            max_trials_per_task=max_trials_per_task,\n",
        "                            strategy=strategy,\n",
        "hand static_shape_tuning_pipeline's strategy to MetaScheduleTuneIRMod",
    ),
    # --- documentation: the MetaSchedule deep dive names the other strategy --------------------
    _insert_after(
        _TUTORIAL,
        "#   space using an evolutionary algorithm guided by a cost model.\n",
        _code("""
            #   ``strategy="droplet"`` (``DropletSearch``) instead explores briefly with it, then
            #   runs a coordinate descent over the decisions (tile sizes, unroll factors,
            #   compute locations) of the fastest schedule measured, within the same trial
            #   budget.
        """),
        "mention DropletSearch in the MetaSchedule deep dive",
        optional=True,
    ),
)


def apply_edits(path: str, text: str, edits: tuple[Edit, ...] = EDITS) -> str:
    """``text`` (the file at ``path``, relative to the TVM source root) with its edits made.

    Raises
    ------
    UpstreamSourceError
        When an anchor does not appear exactly once.
    """
    for edit in edits:
        if edit.path != path:
            continue
        count = text.count(edit.anchor)
        if count != 1:
            raise UpstreamSourceError(
                f"{path}: expected this text exactly once (found {count} times) to "
                f"{edit.why}; has TVM's source changed?\n{edit.anchor}"
            )
        text = text.replace(edit.anchor, edit.replacement)
    return text


def edited_paths(edits: tuple[Edit, ...] = EDITS) -> list[str]:
    """The existing TVM files the patch changes, in the order of their first edit."""
    return list(dict.fromkeys(edit.path for edit in edits))
