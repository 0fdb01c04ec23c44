"""Draw labkit's import picture: module-level edges, cycles, imports inside functions, private names.

Usage: python scripts/import_graph.py [--json]

A module-level `import labkit.x`, `from labkit import x` or `from labkit.x import y` in labkit/*.py is an
edge. Re-exports in labkit/__init__.py are not edges of the package (they sit below it, not beside it).
Imports inside functions are counted separately, one per statement (file:line), and the cycles they
would close if they sat at the top are shown too; imports under `if TYPE_CHECKING:` are never run and
are listed apart. A private-name import is one that brings in
an underscore name defined in another labkit module.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "labkit"
MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")


def _targets(node: ast.AST) -> list[tuple[str, str | None]]:
    """(module, imported name or None) pairs for one import statement, labkit modules only."""
    out: list[tuple[str, str | None]] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "labkit" and len(parts) > 1:
                out.append((parts[1], None))
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        parts = node.module.split(".")
        if parts[0] != "labkit":
            return out
        if len(parts) == 1:
            for alias in node.names:
                if alias.name in MODULES:
                    out.append((alias.name, None))
                else:
                    out.append(("__init__", alias.name))
        else:
            for alias in node.names:
                out.append((parts[1], alias.name))
    return out


def _scan(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    top: list[tuple[int, str, str | None]] = []
    inner: list[tuple[int, str, str | None]] = []
    typing_only: list[tuple[int, str, str | None]] = []

    def visit(node: ast.AST, in_func: bool, in_typing: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for mod, name in _targets(child):
                    (typing_only if in_typing else inner if in_func else top).append((child.lineno, mod, name))
            func = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            typing = in_typing or (isinstance(child, ast.If) and _is_type_checking(child.test))
            visit(child, func, typing)

    visit(tree, False, False)
    return top, inner, typing_only


def _is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` / `if typing.TYPE_CHECKING:`: imports for annotations, never run."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def picture() -> dict:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    inner_list: list[str] = []
    typing_list: list[str] = []
    private: list[str] = []
    for mod in MODULES + ["__init__"]:
        top, inner, typing_only = _scan(PKG / f"{mod}.py")
        for line, target, name in top + inner + typing_only:
            if name and name.startswith("_") and not name.startswith("__") and target != mod:
                private.append(f"labkit/{mod}.py:{line}: {name} from labkit.{target}")
        if mod == "__init__":
            continue  # the package's re-exports: not an edge between modules
        for line, target, _ in top:
            if target != mod and target in edges:
                edges[mod].add(target)
        statements: dict[int, list[str]] = {}
        for line, target, name in inner:
            statements.setdefault(line, []).append(f"labkit.{target}" + (f".{name}" if name else ""))
        inner_list += [f"labkit/{mod}.py:{line}: {', '.join(names)}" for line, names in statements.items()]
        typing_list += [f"labkit/{mod}.py:{line}: labkit.{target}.{name}" for line, target, name in typing_only]
    hidden = {m: set(v) for m, v in edges.items()}  # as if every import inside a function sat at the top
    for entry in inner_list:
        where, names = entry.split(": ", 1)
        mod = where.split("/")[1].split(".")[0]
        hidden[mod] |= {n.split(".")[1] for n in names.split(", ") if n.split(".")[1] in hidden} - {mod}
    return {"edges": {m: sorted(v) for m, v in edges.items()}, "cycles": cycles(edges),
            "hidden_cycles": cycles(hidden), "in_function": inner_list, "typing_only": typing_list,
            "private": private}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each a cycle-bearing group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def main() -> int:
    pic = picture()
    if "--json" in sys.argv:
        print(json.dumps(pic, indent=1))
        return 0
    print("module-level edges:")
    for mod, targets in pic["edges"].items():
        print(f"  {mod:13s} -> {', '.join(targets) if targets else '-'}")
    print(f"\ncycles among module-level edges: {len(pic['cycles'])}")
    for group in pic["cycles"]:
        print("  " + " <-> ".join(group))
    print(f"cycles if the imports inside functions sat at the top: {len(pic['hidden_cycles'])}")
    for group in pic["hidden_cycles"]:
        print("  " + " <-> ".join(group))
    print(f"\nlabkit import statements inside functions: {len(pic['in_function'])}")
    for line in pic["in_function"]:
        print("  " + line)
    print(f"\nimports for annotations only (if TYPE_CHECKING, never run): {len(pic['typing_only'])}")
    for line in pic["typing_only"]:
        print("  " + line)
    print(f"\nprivate names imported across modules: {len(pic['private'])}")
    for line in pic["private"]:
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
