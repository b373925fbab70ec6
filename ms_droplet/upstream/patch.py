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
"""Write file changes as a git patch (``git apply`` reads it; so does ``patch -p1``)."""

from __future__ import annotations

import difflib


def file_diff(path: str, old: str | None, new: str) -> str:
    """The git diff of one file; ``old`` is ``None`` for a new file.

    Both texts end with a newline, as every file of apache/tvm does (ruff enforces it).
    """
    for name, text in (("old", old), ("new", new)):
        if text and not text.endswith("\n"):
            raise ValueError(f"{path}: the {name} text does not end with a newline")
    header = [f"diff --git a/{path} b/{path}\n"]
    if old is None:
        header += ["new file mode 100644\n", "--- /dev/null\n", f"+++ b/{path}\n"]
    else:
        header += [f"--- a/{path}\n", f"+++ b/{path}\n"]
    hunks = list(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True), new.splitlines(keepends=True), n=3
        )
    )[2:]  # difflib's own ---/+++ lines
    return "".join(header + hunks) if hunks else ""


def git_patch(changes: dict[str, tuple[str | None, str]]) -> str:
    """One patch of every changed file, by path: ``{path: (old or None, new)}``."""
    return "".join(file_diff(path, *changes[path]) for path in sorted(changes))
