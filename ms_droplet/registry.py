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
"""Make ``strategy="droplet"`` resolve wherever MetaSchedule accepts a strategy name.

MetaSchedule turns strategy names into objects with ``SearchStrategy.create`` (``tune_tir``,
``tune_relax`` and ``TuneContext(search_strategy=...)`` all go through it). :func:`register` wraps
that factory: "droplet" builds a :class:`~ms_droplet.strategy.DropletSearch`, every other name goes
to TVM's own factory unchanged, including its error for unknown names.

:func:`autoload` is the ``tvm.backends`` entry point, which TVM calls at ``import tvm`` (unless
``TVM_DEVICE_BACKEND_AUTOLOAD=0``), so a plain ``import tvm`` is enough; it also honours
``MS_DROPLET_DEFAULT`` (:mod:`ms_droplet.default`).
"""

from __future__ import annotations

from typing import Any

STRATEGY_NAME = "droplet"
_MARK = "__ms_droplet_factory__"


def _droplet_factory(original: Any) -> Any:
    def create(kind: str = "evolutionary", *args: Any, **kwargs: Any) -> Any:
        if kind == STRATEGY_NAME:
            # Imported on first use: autoload runs inside `import tvm` and stays cheap.
            from .strategy import DropletSearch

            return DropletSearch(*args, **kwargs)
        return original(kind, *args, **kwargs)

    create.__doc__ = (original.__doc__ or "Create a search strategy.") + (
        f"\n\n``kind='{STRATEGY_NAME}'`` creates ms_droplet's DropletSearch."
    )
    create.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(create, _MARK, True)
    return create


def register() -> None:
    """Teach ``SearchStrategy.create`` the name "droplet" (idempotent)."""
    from tvm.s_tir.meta_schedule import search_strategy as package

    if hasattr(package, "DropletSearch"):
        # This TVM has droplet search built in (the upstream patch, `ms-droplet export-patch`):
        # its own SearchStrategy.create builds it, so the plugin stays out of the way.
        return
    module = package.search_strategy
    strategy_cls = module.SearchStrategy
    if getattr(strategy_cls.create, _MARK, False):
        return
    create = _droplet_factory(strategy_cls.create)
    strategy_cls.create = staticmethod(create)
    # The module and the package re-export the factory as a plain function.
    module.create = create
    package.create = create


def autoload() -> None:
    """Entry point of TVM's ``tvm.backends`` group, called at ``import tvm``.

    Registers the name, and makes droplet the default strategy when ``MS_DROPLET_DEFAULT=1``
    (see :mod:`ms_droplet.default`).
    """
    register()
    from .default import install_from_environment

    install_from_environment()
