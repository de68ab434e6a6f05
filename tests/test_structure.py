"""The package's shape: no import cycles between its modules, no function longer than 80 lines.

Both are read from the source with ``ast`` (nothing is imported), so every import counts,
including those inside functions: a lazy import hides a cycle from the interpreter, not from a
reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The import namespace `mialaw` is spread over four top-level folders (pyproject.toml).
SUBPACKAGES = {"theory": "mialaw.theory", "simulate": "mialaw.simulate"}
SUBPACKAGES |= {"empirical": "mialaw.empirical", "paper": "mialaw.paper"}
MAX_FUNCTION_LINES = 80
# The derivation is a sequence of steps, each a statement and its sympy check; these functions
# are lists of such steps (one line of builder calls per step) and read best whole, in order.
STEP_LISTS = {
    ("theory/derivation.py", "_score_laws"),
    ("theory/derivation.py", "_lemma"),
    ("theory/derivation.py", "_asymptotics"),
    ("theory/derivation.py", "_isotropic"),
}


def _source_files() -> dict[str, Path]:
    """Module name -> file, for every module of the package."""
    modules = {}
    for folder, package in SUBPACKAGES.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


MODULES = _source_files()


def _is_package(module: str) -> bool:
    return module == "mialaw" or module in SUBPACKAGES.values()


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of ``from <node.module> import ...`` written in ``module``."""
    if not node.level:
        return node.module or ""
    package = module if _is_package(module) else module.rsplit(".", 1)[0]
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, node: ast.AST) -> list[tuple[str, int]]:
    """The package modules one import statement loads, with its line number."""
    names = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        source = _absolute(module, node)
        # `from package import name`: name is a submodule or an attribute of the package.
        names = [source] + [f"{source}.{alias.name}" for alias in node.names]
    found = set()
    for name in names:
        # Importing a.b.c runs a, a.b and a.b.c: every package module on the way is loaded.
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in MODULES and prefix != module:
                found.add((prefix, node.lineno))
    return sorted(found)


def module_imports(module: str, source: str) -> dict[str, list[int]]:
    """{package module that ``source`` (the text of ``module``) imports -> its line numbers}:
    every import statement, at any depth (inside functions too)."""
    edges: dict[str, list[int]] = {}
    for node in ast.walk(ast.parse(source)):
        for target, line in _targets(module, node):
            edges.setdefault(target, []).append(line)
    return edges


def import_graph() -> dict[str, dict[str, list[int]]]:
    """module -> {imported package module -> line numbers of the imports}."""
    return {module: module_imports(module, path.read_text()) for module, path in MODULES.items()}


def strongly_connected(graph: dict[str, dict]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or not."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [g for g in groups if len(g) > 1]


def _short_cycle(graph: dict[str, dict], group: list[str]) -> list[str]:
    """One cycle through the group's first module, found breadth first (the shortest)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node]):
                if succ == start:
                    return paths[node] + [start]
                if succ in members and succ not in paths:
                    paths[succ] = paths[node] + [succ]
                    following.append(succ)
        frontier = following
    raise AssertionError(f"{group} is not a cycle")


def _import_line(module: str, line: int) -> str:
    path = MODULES[module]
    statement = path.read_text().splitlines()[line - 1].strip()
    return f"{path.relative_to(ROOT)}:{line}: {statement}"


def describe_cycles(graph: dict[str, dict]) -> list[str]:
    """Per group of modules that import each other: its shortest cycle, then every import
    statement between its members (the lines to change to break it)."""
    described = []
    for group in strongly_connected(graph):
        lines = [" -> ".join(_short_cycle(graph, group))]
        for module in group:
            for target in sorted(set(graph[module]) & set(group)):
                numbers = sorted(set(graph[module][target]))
                lines += [f"    {_import_line(module, n)}" for n in numbers]
        described.append("\n".join(lines))
    return described


def test_the_import_graph_sees_relative_absolute_and_function_level_imports():
    source = (
        "from .render import render_paper\n"  # relative, a module
        "from . import tables\n"  # relative, a module by name
        "from ..theory.model import GaussianModel\n"  # two levels up
        "import numpy\n"  # not the package's
        "def f():\n"
        "    from mialaw.empirical import audit\n"  # inside a function, absolute
    )
    edges = module_imports("mialaw.paper.outputs", source)
    assert edges == {
        "mialaw.paper.render": [1],
        "mialaw.paper": [1, 2],  # the package itself runs first
        "mialaw.paper.tables": [2],
        "mialaw.theory.model": [3],
        "mialaw.theory": [3],
        "mialaw.empirical": [6],
        "mialaw.empirical.audit": [6],
    }


def test_cycles_are_found_and_reported():
    graph = {"a": {"b": [3]}, "b": {"c": [5]}, "c": {"a": [7], "d": [8]}, "d": {}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert _short_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_import_cycles():
    cycles = describe_cycles(import_graph())
    assert not cycles, "import cycles, each with the imports inside it:\n" + "\n".join(cycles)


def long_functions() -> list[tuple[str, str, int, int]]:
    """(file, qualified name, first line, length) of every function over the limit."""
    found = []
    for path in MODULES.values():
        relative = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text(), relative)
        found += _long_in(tree, relative, prefix="")
    return [f for f in found if (f[0], f[1].rsplit(".", 1)[-1]) not in STEP_LISTS]


def _long_in(node: ast.AST, relative: str, prefix: str) -> list[tuple[str, str, int, int]]:
    found = []
    for child in ast.iter_child_nodes(node):
        name = prefix
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{child.name}."
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([child.lineno] + [d.lineno for d in child.decorator_list])
            length = child.end_lineno - child.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append((relative, name[:-1], first, length))
        found += _long_in(child, relative, name)
    return found


def test_the_length_check_counts_from_def_to_the_last_line():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    tree = ast.parse(f"def long():\n{body}\n\n\nclass A:\n    def short(self):\n        pass\n")
    assert _long_in(tree, "f.py", "") == [("f.py", "long", 1, MAX_FUNCTION_LINES + 1)]


def test_no_function_is_longer_than_80_lines():
    offenders = [f"{f}:{line} {name} ({n} lines)" for f, name, line, n in long_functions()]
    assert not offenders, "functions over 80 lines:\n" + "\n".join(offenders)
