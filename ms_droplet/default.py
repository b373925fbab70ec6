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
"""Droplet as the default strategy of TVM's own tuning code, without editing it.

Most MetaSchedule users never name a strategy: they run ``relax.get_pipeline(
"static_shape_tuning", ...)``, the ``MetaScheduleTuneTIR``/``MetaScheduleTuneIRMod`` passes or
``python -m tvm.s_tir.meta_schedule.testing.tune_te``, which build evolutionary search
themselves. Two switches make droplet their strategy:

* ``MS_DROPLET_DEFAULT=1`` in the environment, read by the ``tvm.backends`` entry point at
  ``import tvm``, with DropletSearch options as a JSON object in ``MS_DROPLET_OPTIONS``
  (e.g. ``'{"explore_trials": 16}'``);
* ``ms-droplet run SCRIPT.py [ARGS...]`` or ``ms-droplet run -m MODULE [ARGS...]``, which runs
  the script in this process as ``python`` would, droplet being the default.

What is substituted: every evolutionary search a ``TuneContext`` is built with, whether named
(``"evolutionary"``, the default of ``tune_tir``, ``tune_relax``, ``tune_tasks`` and of the
passes and pipelines that call them) or built as an ``EvolutionarySearch(...)`` object (as
``tune_te`` does). It becomes ``DropletSearch(**MS_DROPLET_OPTIONS)``, whose exploration phase
runs that evolutionary search with the object's own settings. Other strategies (replay-trace,
replay-func, a user's ``PySearchStrategy``, a ``DropletSearch``) are left alone. Without either
switch nothing changes; ``MS_DROPLET_DEFAULT=0`` (or unset) turns it off, and
:func:`uninstall` undoes it in a running process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

DEFAULT_VARIABLE = "MS_DROPLET_DEFAULT"
OPTIONS_VARIABLE = "MS_DROPLET_OPTIONS"
_MARK = "__ms_droplet_default__"
# EvolutionarySearch settings readable from the object (max_fail_count is not exposed).
_EVOLUTIONARY_FIELDS = (
    "population_size",
    "init_measured_ratio",
    "init_min_unmeasured",
    "genetic_num_iters",
    "genetic_mutate_prob",
    "genetic_max_fail_count",
    "eps_greedy",
)


def options_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The DropletSearch options the environment asks for, or ``None`` when the switch is off.

    Raises
    ------
    ValueError
        When ``MS_DROPLET_DEFAULT`` is neither 0 nor 1, or ``MS_DROPLET_OPTIONS`` is not a JSON
        object of valid DropletSearch options; the message names the variable and the fix.
    """
    from .options import resolve_options

    environ = os.environ if environ is None else environ
    switch = environ.get(DEFAULT_VARIABLE, "0").strip()
    if switch not in ("0", "1", ""):
        raise ValueError(f"{DEFAULT_VARIABLE} must be 1 (droplet) or 0 (off), got '{switch}'")
    text = environ.get(OPTIONS_VARIABLE, "").strip()
    if switch != "1":
        return None
    options: Any = {}
    if text:
        try:
            options = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{OPTIONS_VARIABLE} must be a JSON object such as "
                f"'{{\"explore_trials\": 16}}', got {text!r} ({err.msg})"
            ) from err
        if not isinstance(options, dict):
            raise ValueError(
                f"{OPTIONS_VARIABLE} must be a JSON object of DropletSearch options, got {text!r}"
            )
    try:
        resolve_options(options)
    except ValueError as err:
        raise ValueError(f"{OPTIONS_VARIABLE}: {err}") from err
    return dict(options)


def install(options: Mapping[str, Any] | None = None, error: str | None = None) -> None:
    """Make droplet the strategy of every TuneContext built with evolutionary search.

    Parameters
    ----------
    options : Optional[Mapping[str, Any]]
        DropletSearch options (already checked).
    error : Optional[str]
        When set, the substitution raises ``ValueError(error)`` instead: a bad environment
        found at ``import tvm`` (where TVM turns exceptions into warnings) still stops the run
        before any tuning.
    """
    from tvm.s_tir.meta_schedule import tune_context

    uninstall()
    original = tune_context.TuneContext.__init__
    chosen = dict(options or {})

    def __init__(self: Any, mod: Any = None, *args: Any, **kwargs: Any) -> None:
        strategy = kwargs.get("search_strategy")
        if _is_evolutionary(strategy):
            if error is not None:
                raise ValueError(error)
            kwargs["search_strategy"] = _droplet_for(strategy, chosen)
        original(self, mod, *args, **kwargs)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(__init__, _MARK, True)
    tune_context.TuneContext.__init__ = __init__


def uninstall() -> None:
    """Undo :func:`install` (no-op when it is not installed)."""
    from tvm.s_tir.meta_schedule import tune_context

    current = tune_context.TuneContext.__init__
    if getattr(current, _MARK, False):
        tune_context.TuneContext.__init__ = current.__wrapped__


def is_installed() -> bool:
    """Whether droplet is the default strategy in this process."""
    from tvm.s_tir.meta_schedule import tune_context

    return getattr(tune_context.TuneContext.__init__, _MARK, False)


def install_from_environment() -> None:
    """Honour ``MS_DROPLET_DEFAULT``/``MS_DROPLET_OPTIONS`` (the entry point calls this)."""
    try:
        options = options_from_environment()
    except ValueError as err:
        install(error=f"ms_droplet: {err}")
        raise
    if options is not None:
        install(options)


def _is_evolutionary(strategy: Any) -> bool:
    from . import _tvm

    if isinstance(strategy, str):
        return strategy == "evolutionary"
    return isinstance(strategy, _tvm.EvolutionarySearch)


def _droplet_for(strategy: Any, options: dict[str, Any]) -> Any:
    from .strategy import DropletSearch

    if isinstance(strategy, str) or options.get("evolutionary"):
        return DropletSearch(**options)
    # Keep the settings of the EvolutionarySearch the code built: it becomes the exploration.
    settings = {name: getattr(strategy, name) for name in _EVOLUTIONARY_FIELDS}
    return DropletSearch(**{**options, "evolutionary": settings})
