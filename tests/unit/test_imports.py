"""The house's floors: no import cycle between modules or packages; `tables/` imports no stage.

Every `import` and `from ... import` in `smartray/` counts, wherever it stands: at module
level, inside a function (a lazy import is still a dependency, only a later one), and under
`if TYPE_CHECKING:` (a cycle of types is a cycle of knowledge). Relative imports are
resolved against the importing module. `from pkg import name` counts `pkg.name` when that
is a module, else `pkg` (its `__init__`). The packages above an imported module are not
counted: Python runs their `__init__` first, but a package's `__init__` importing its own
modules is how a package exports, not a cycle of knowledge.
Modules named in strings (`importlib.import_module`, `python -m`) are not seen.

Nodes of the module graph: every module, a package as its `__init__`. Nodes of the package
graph: each first-level subpackage (`smartray.tables`), each top-level module
(`smartray.errors`, `smartray.lake`), and `smartray` itself (its `__init__`).
"""

from __future__ import annotations

import ast
import itertools
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "smartray"
TOP = "smartray"

# What `smartray/tables/**` may import besides itself: the leaves under every floor
# (`smartray.version` is the `smartray_version` of a `runs` row).
TABLES_MAY_IMPORT = {"smartray.errors", "smartray.types", "smartray.logging", "smartray.version"}


def module_files() -> dict[str, Path]:
    """Every module of `smartray/` by dotted name (a package by its `__init__`'s)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = module_files()


def _resolve(module: str, level: int, name: str | None, is_package: bool) -> str:
    if not level:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(module: str) -> set[str]:
    """The modules of `smartray` that `module` imports, anywhere in its source."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node.level, node.module, is_package)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] != TOP:
                continue
            while target not in MODULES and "." in target:  # `import smartray.x.y as z` etc.
                target = target.rsplit(".", 1)[0]
            found.add(target)
    found.discard(module)
    return found


def floor(module: str) -> str:
    """The package-graph node of a module: `smartray.<first level>`."""
    return ".".join(module.split(".")[:2])


def module_graph() -> dict[str, set[str]]:
    return {m: imports_of(m) for m in MODULES}


def package_graph(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, deps in modules.items():
        graph.setdefault(floor(module), set()).update(floor(d) for d in deps)
    for node, deps in graph.items():
        deps.discard(node)
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of `graph` (node -> what it imports) as `[a, b, ..., a]`, a importing b."""
    try:
        TopologicalSorter(graph).prepare()  # reads `graph` as node -> its predecessors
    except CycleError as e:
        return list(reversed(e.args[1]))
    return None


def test_the_walk_sees_lazy_and_relative_imports():
    assert len(MODULES) > 50
    assert "smartray.tables.catalog" in imports_of("smartray.tables.lake")
    assert "smartray.ingest.pipeline" in imports_of("smartray.ingest")  # in `__getattr__`
    assert "smartray.tables.lake" in imports_of("smartray.tables")  # an `__init__`


def test_no_cycle_between_modules():
    cycle = cycle_in(module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_cycle_between_packages():
    modules = module_graph()
    cycle = cycle_in(package_graph(modules))

    def why(a: str, b: str) -> str:  # the imports that make the step a -> b
        found = (f"{m} -> {d}" for m, deps in modules.items() for d in deps if floor(m) == a)
        return ", ".join(sorted(f for f in found if floor(f.split(" -> ")[1]) == b))

    steps = [f"{a} -> {b}: {why(a, b)}" for a, b in itertools.pairwise(cycle or [])]
    assert cycle is None, "package cycle:\n  " + "\n  ".join(steps)


def test_tables_imports_no_stage():
    wrong = sorted(
        f"{m} imports {d}"
        for m, deps in module_graph().items()
        if floor(m) == "smartray.tables"
        for d in deps
        if floor(d) != "smartray.tables" and d not in TABLES_MAY_IMPORT
    )
    assert not wrong, "tables/ is the ground floor:\n  " + "\n  ".join(wrong)
