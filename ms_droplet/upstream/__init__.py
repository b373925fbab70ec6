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
"""The upstream contribution: this package as a patch against apache/tvm."""

from __future__ import annotations

from pathlib import Path

from .edits import EDITS, UpstreamSourceError, apply_edits, edited_paths
from .fold import UPSTREAM_PATH, fold_strategy
from .patch import git_patch

TEST_PATH = "tests/python/s_tir/meta_schedule/test_meta_schedule_droplet_search.py"
_TEST_SOURCE = Path(__file__).with_name("test_meta_schedule_droplet_search.py")

__all__ = [
    "TEST_PATH",
    "UPSTREAM_PATH",
    "UpstreamSourceError",
    "build_patch",
    "git_patch",
    "patched_files",
]


def patched_files(tvm_source: Path) -> dict[str, tuple[str | None, str]]:
    """Every file the patch adds or changes: ``{path: (old text or None, new text)}``.

    Parameters
    ----------
    tvm_source : Path
        An apache/tvm checkout, or any tree with its ``python/tvm`` (the installed wheel's
        ``tvm/`` is one: documentation edits are then left out).

    Raises
    ------
    UpstreamSourceError
        When ``tvm_source`` is not such a tree, already has the strategy, or has moved on so
        that an edit's anchor is not found.
    """
    tvm_source = Path(tvm_source)
    if not (tvm_source / "python/tvm/s_tir/meta_schedule/search_strategy").is_dir():
        raise UpstreamSourceError(
            f"{tvm_source} is not an apache/tvm source tree: it has no "
            "python/tvm/s_tir/meta_schedule/search_strategy"
        )
    if (tvm_source / UPSTREAM_PATH).exists():
        raise UpstreamSourceError(
            f"{tvm_source / UPSTREAM_PATH} exists already: is the patch applied?"
        )
    changes: dict[str, tuple[str | None, str]] = {
        UPSTREAM_PATH: (None, fold_strategy()),
        TEST_PATH: (None, _TEST_SOURCE.read_text()),
    }
    for path in edited_paths():
        source = tvm_source / path
        if not source.exists():
            if all(edit.optional for edit in EDITS if edit.path == path):
                continue
            raise UpstreamSourceError(f"{tvm_source} has no {path}, which the patch changes")
        old = source.read_text()
        changes[path] = (old, apply_edits(path, old))
    return changes


def build_patch(tvm_source: Path) -> str:
    """The git patch that adds droplet search to the apache/tvm tree at ``tvm_source``."""
    return git_patch(patched_files(tvm_source))
