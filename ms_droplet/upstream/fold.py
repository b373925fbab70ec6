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
"""Fold the strategy's modules into the one upstream module ``droplet_search.py``.

The upstream module is a mechanical transformation of this package's sources, so that there is
one implementation and never two copies that drift:

1. the modules ``ms_droplet.strategy`` imports, directly or not, are taken in dependency order;
2. every top-level definition (function, class, assignment, import) not reachable from
   ``DropletSearch`` is left out (the package's command line, reports and helpers stay here);
3. imports between those modules disappear (they become one namespace), ``_tvm.NAME`` becomes
   ``NAME``, and TVM's own imports are rewritten relative to the upstream module's place where
   the name lives inside MetaSchedule (``from ..database import Database``); MetaSchedule
   classes named only in annotations are imported under ``TYPE_CHECKING``;
4. ruff lays the result out under TVM's settings.

Rules the package's sources keep for this to work (checked here, with an error naming the
place): no aliased import between the package's modules, no two different definitions of one
name in the folded modules, no local name that hides a ``_tvm`` helper its function calls.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "ms_droplet"
ROOT_MODULE = "ms_droplet.strategy"
ROOT_NAME = "DropletSearch"
# Where the folded module lives in apache/tvm, as a module name and as a path.
UPSTREAM_MODULE = "tvm.s_tir.meta_schedule.search_strategy.droplet_search"
UPSTREAM_PATH = "python/tvm/s_tir/meta_schedule/search_strategy/droplet_search.py"
# TVM imports inside this package are rewritten relative to the upstream module.
RELATIVE_ROOT = "tvm.s_tir.meta_schedule"

LICENSE_HEADER = (Path(__file__).read_text().split('"""', 1)[0]).rstrip() + "\n"


class FoldError(ValueError):
    """The package's sources break a rule the mechanical transformation relies on."""


@dataclass
class _Unit:
    """One top-level statement of a folded module, with the names it defines and uses."""

    module: str
    source: str
    defines: set[str]
    uses: set[str]
    # The names it uses outside annotations (``from __future__ import annotations`` leaves
    # annotations unevaluated, so a name used only there needs no import at run time).
    runtime_uses: set[str] = field(default_factory=set)
    # Index among the module's top-level statements, and blank lines above it in the source.
    position: int = 0
    blank_lines_above: int = 2
    is_import: bool = False
    import_from: str | None = None
    import_names: list[tuple[str, str | None]] = field(default_factory=list)


def _module_path(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FoldError(f"cannot find the source of module {module}")
    return Path(spec.origin)


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name]) if name else ".".join(base)


def _package_imports(module: str, tree: ast.Module) -> list[str]:
    """The package modules that ``module`` imports (``from . import x`` included)."""
    is_package = _module_path(module).name == "__init__.py"
    found = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            target = _resolve_relative(module, is_package, node.level, node.module)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if importlib.util.find_spec(target) and _is_module(sub):
                    found.append(sub)
                else:
                    found.append(target)
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def closure_modules() -> list[str]:
    """The package modules the strategy needs, dependencies before their users."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(module: str) -> None:
        if module in order or module in visiting:
            return
        visiting.add(module)
        tree = ast.parse(_module_path(module).read_text())
        for dependency in _package_imports(module, tree):
            if dependency != PACKAGE:
                visit(dependency)
        visiting.discard(module)
        order.append(module)

    visit(ROOT_MODULE)
    return order


def _annotation_nodes(node: ast.AST) -> set[int]:
    """The ids of every AST node inside an annotation under ``node``."""
    annotations: list[ast.AST] = []
    for sub in ast.walk(node):
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotations += [a.annotation for a in ast.walk(sub.args) if isinstance(a, ast.arg)]
            annotations.append(sub.returns)
        elif isinstance(sub, ast.AnnAssign):
            annotations.append(sub.annotation)
    return {id(n) for a in annotations if a is not None for n in ast.walk(a)}


def _names_used(node: ast.AST, in_annotations: bool = True) -> set[str]:
    """The names ``node`` reads (``_tvm.NAME`` counts as ``NAME``), annotations or not."""
    skipped = set() if in_annotations else _annotation_nodes(node)
    used = set()
    for sub in ast.walk(node):
        if id(sub) in skipped:
            continue
        if isinstance(sub, ast.Name):
            used.add(sub.id)
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
            if sub.value.id == "_tvm":
                used.add(sub.attr)
    return used


def _names_defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {
            name.id
            for target in targets
            if isinstance(target, (ast.Name, ast.Tuple))
            for name in ast.walk(target)
            if isinstance(name, ast.Name)
        }
    return set()


def _check_no_shadowing(path: Path, tree: ast.Module) -> None:
    """A local name must not hide a ``_tvm`` helper the same function calls.

    Folding turns ``_tvm.module_hash(...)`` into ``module_hash(...)``; a local variable
    ``module_hash`` in that function would then shadow it.
    """
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        helpers = {
            node.attr
            for node in ast.walk(func)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "_tvm"
        }
        arguments = {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}
        bound = arguments | {
            node.id
            for node in ast.walk(func)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        }
        clash = sorted(helpers & bound)
        if clash:
            raise FoldError(
                f"{path}:{func.lineno}: the local name(s) {', '.join(clash)} would hide "
                f"_tvm.{clash[0]} once folded; rename the local"
            )


def _statement_source(lines: list[str], node: ast.stmt) -> str:
    """The statement's lines, its decorators and the comment lines right above it."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
    while first > 0 and lines[first - 1].lstrip().startswith("#"):
        first -= 1
    return "".join(lines[first : node.end_lineno])


def _blank_lines_above(lines: list[str], source: str, node: ast.stmt) -> int:
    first = node.end_lineno - len(source.splitlines())
    count = 0
    while first - count - 1 >= 0 and not lines[first - count - 1].strip():
        count += 1
    return min(count, 2)


def _units(module: str) -> list[_Unit]:
    path = _module_path(module)
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)
    _check_no_shadowing(path, tree)
    units = []
    for index, node in enumerate(tree.body):
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            for alias in node.names:
                if alias.asname is not None:
                    raise FoldError(
                        f"{path}:{node.lineno}: 'import {alias.name} as {alias.asname}' between "
                        "the package's modules cannot fold into one namespace; import the name "
                        "as it is defined"
                    )
            continue  # one namespace once folded
        if isinstance(node, ast.ImportFrom):
            # One unit a name: only the names the kept code uses are imported.
            for alias in node.names:
                units.append(
                    _Unit(
                        module,
                        "",
                        {alias.asname or alias.name},
                        set(),
                        is_import=True,
                        import_from=node.module,
                        import_names=[(alias.name, alias.asname)],
                    )
                )
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                defined = alias.asname or alias.name.split(".")[0]
                units.append(
                    _Unit(
                        module,
                        "",
                        {defined},
                        set(),
                        is_import=True,
                        import_names=[(alias.name, alias.asname)],
                    )
                )
            continue
        source = _statement_source(lines, node)
        units.append(
            _Unit(
                module,
                source,
                _names_defined(node),
                _names_used(node),
                runtime_uses=_names_used(node, in_annotations=False),
                position=index,
                blank_lines_above=_blank_lines_above(lines, source, node),
            )
        )
    return units


def _reachable(units: list[_Unit]) -> list[_Unit]:
    """The units ``ROOT_NAME`` needs, and the statements that only act on kept names."""
    by_name: dict[str, list[_Unit]] = {}
    for unit in units:
        for name in unit.defines:
            by_name.setdefault(name, []).append(unit)
    kept: list[_Unit] = []
    kept_ids: set[int] = set()
    todo = list(by_name.get(ROOT_NAME, []))
    if not todo:
        raise FoldError(f"{ROOT_MODULE} defines no {ROOT_NAME}")
    while True:
        while todo:
            unit = todo.pop()
            if id(unit) in kept_ids:
                continue
            kept_ids.add(id(unit))
            kept.append(unit)
            for name in unit.uses:
                todo.extend(by_name.get(name, []))
        # A statement that defines nothing (``DropletSearch.__doc__ = ...``) goes with the
        # names it acts on.
        kept_names = {name for unit in kept for name in unit.defines}
        extra = [
            unit
            for unit in units
            if id(unit) not in kept_ids
            and not unit.defines
            and not unit.is_import
            and unit.uses & kept_names
        ]
        if not extra:
            break
        todo.extend(extra)
    return [unit for unit in units if id(unit) in kept_ids]


def _tvm_home(module: str, name: str) -> str:
    """The module inside TVM that defines ``name`` (as imported from ``module``)."""
    imported = importlib.import_module(module)
    value = getattr(imported, name)
    if isinstance(value, type(sys)):
        return value.__name__
    home = getattr(value, "__module__", None)
    if not home or not home.startswith(module.split(".")[0]):
        return module
    return home


def _upstream_import(module: str | None, names: list[tuple[str, str | None]]) -> list[str]:
    """Import lines of the upstream module for one of the package's imports."""
    if module is None:  # import x [as y]
        return [f"import {n}" + (f" as {a}" if a else "") for n, a in names]
    if not module.startswith(RELATIVE_ROOT):
        return [_from_line(module, names)]
    if module != UPSTREAM_MODULE.rsplit(".", 1)[0]:
        return [_from_line(_relative_to_upstream(module), names)]
    # From its own package, the upstream module imports each name from the module that
    # defines it: the package is only half initialised while it imports this module.
    by_home: dict[str, list[tuple[str, str | None]]] = {}
    for name, alias in names:
        home = _tvm_home(module, name)
        by_home.setdefault(home, []).append((name, alias))
    lines = []
    for home, group in by_home.items():
        lines.append(_from_line(_relative_to_upstream(home), group))
    return lines


def _relative_to_upstream(home: str) -> str:
    here = UPSTREAM_MODULE.split(".")[:-1]
    there = home.split(".")
    common = 0
    while common < min(len(here), len(there)) and here[common] == there[common]:
        common += 1
    if common < len(RELATIVE_ROOT.split(".")):
        return home
    dots = "." * (len(here) - common + 1)
    return dots + ".".join(there[common:])


def _from_line(module: str, names: list[tuple[str, str | None]]) -> str:
    return f"from {module} import " + ", ".join(n + (f" as {a}" if a else "") for n, a in names)


def _import_block(units: list[_Unit], runtime_names: set[str]) -> str:
    """The upstream module's imports; ruff sorts and merges them (:func:`format_like_tvm`).

    MetaSchedule's own classes that the code names only in annotations are imported under
    ``TYPE_CHECKING``, as TVM's ``search_strategy.py`` does: the search strategy package is
    imported while ``cost_model`` and ``tune_context`` are still half initialised.
    """
    top: set[str] = set()
    typing_only: set[str] = set()
    for unit in units:
        for line in _upstream_import(unit.import_from, unit.import_names):
            annotation_only = not (unit.defines & runtime_names)
            if annotation_only and line.startswith("from ."):
                typing_only.add(line)
            else:
                top.add(line)
    block = "\n".join(sorted(top)) + "\n"
    if typing_only:
        block += "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        block += "".join(f"    {line}\n" for line in sorted(typing_only))
    return block


def _rewrite(source: str) -> str:
    return re.sub(r"\b_tvm\.(?=[A-Za-z_])", "", source)


# apache/tvm's ``[tool.ruff]`` (its pyproject.toml; this project's copies it, with its own first
# party): what the upstream files are formatted and linted with.
TVM_RUFF = {
    "line-length": 100,
    "target-version": "py310",
    "select": ["E", "F", "I", "UP", "RUF"],
    "ignore": ["UP028", "UP030", "UP031", "RUF043", "RUF059"],
    "init-ignores": ["E402", "F401", "F403", "F405"],
}


def tvm_ruff(command: str, *options: str) -> list[str]:
    """The ``ruff check`` or ``ruff format`` command line with apache/tvm's settings."""
    args = [
        sys.executable,
        "-m",
        "ruff",
        command,
        *options,
        "--isolated",
        f"--line-length={TVM_RUFF['line-length']}",
        f"--target-version={TVM_RUFF['target-version']}",
    ]
    if command == "check":
        args += [
            f"--select={','.join(TVM_RUFF['select'])}",
            f"--ignore={','.join(TVM_RUFF['ignore'])}",
            f"--config=lint.per-file-ignores = {{'__init__.py' = {TVM_RUFF['init-ignores']}}}",
            "--config=lint.isort.known-first-party = ['tvm']",
        ]
    return args


def format_like_tvm(text: str, filename: str = "droplet_search.py") -> str:
    """``text`` with imports sorted and code laid out by ruff under apache/tvm's settings.

    Folding shortens lines (``_tvm.Schedule`` becomes ``Schedule``) and merges import blocks;
    ruff, the formatter TVM's lint runs, lays them out again.
    """
    steps = (
        # Only the import order is fixed; the lint itself is the test suite's business.
        [*tvm_ruff("check", "--fix", "--quiet"), "--select=I"],
        tvm_ruff("format"),
    )
    for step in steps:
        try:
            done = subprocess.run(
                [*step, f"--stdin-filename={filename}", "-"],
                input=text,
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError as err:  # pragma: no cover - no interpreter
            raise FoldError(f"cannot run ruff: {err}") from err
        if done.returncode != 0 or not done.stdout:
            raise FoldError(
                "formatting the folded module with ruff failed (is ruff installed? "
                f"pip install ruff): {done.stderr.strip() or done.stdout.strip()}"
            )
        text = done.stdout
    return text


def fold_strategy() -> str:
    """The text of the upstream ``droplet_search.py``, folded from this package's sources."""
    modules = closure_modules()
    units = [unit for module in modules for unit in _units(module)]
    kept = _reachable(units)
    imports = [unit for unit in kept if unit.is_import]
    body = [unit for unit in kept if not unit.is_import]

    seen: dict[str, _Unit] = {}
    statements: list[str] = []
    previous: _Unit | None = None
    for unit in body:
        text = _rewrite(unit.source).rstrip() + "\n"
        duplicate = False
        for name in unit.defines:
            if name in seen:
                if _rewrite(seen[name].source).strip() != text.strip():
                    raise FoldError(
                        f"'{name}' is defined in both {seen[name].module} and {unit.module}: "
                        "the folded module would keep only one; rename one of them"
                    )
                duplicate = True
            seen[name] = unit
        if duplicate:
            continue
        adjacent = (
            previous is not None
            and previous.module == unit.module
            and previous.position == unit.position - 1
        )
        blank_lines = unit.blank_lines_above if adjacent else 2
        statements.append("\n" * blank_lines + text)
        previous = unit

    root_doc = ast.get_docstring(ast.parse(_module_path(ROOT_MODULE).read_text()))
    docstring = f'"""{root_doc}"""\n' if root_doc else ""
    parts = [
        LICENSE_HEADER,
        docstring,
        "\nfrom __future__ import annotations\n\n",
        _import_block(imports, {name for unit in body for name in unit.runtime_uses}),
    ]
    parts.extend(statements)
    return format_like_tvm("".join(parts))
