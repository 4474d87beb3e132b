"""The lake's ground floor is entered only through `Lake` and a run's `LakeSession`.

No module outside `smartray/tables/` (jobs included) may construct a `DeltaTable`, call
deltalake's writers, or import `smartray.tables.commit`: every commit goes through a
session, which carries the run's app transaction and metadata.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN_MODULES = {"smartray.tables.commit"}
FORBIDDEN_CALLS = {"DeltaTable", "write_deltalake", "convert_to_deltalake"}
COMMIT_NAMES = {
    "commit_rows",
    "commit_upsert",
    "commit_where",
    "commit_replace",
    "commit_parts",
    "ensure_table",
    "open_table",
    "existing_keys",
}


def _outside_modules() -> list[Path]:
    files = sorted((ROOT / "smartray").rglob("*.py")) + sorted((ROOT / "jobs").rglob("*.py"))
    tables = ROOT / "smartray" / "tables"
    return [f for f in files if tables not in f.parents]


def violations(source: str) -> list[str]:
    """What a module does that only `smartray/tables/` may do."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name in FORBIDDEN_MODULES]
            found += [f"import {a.name}" for a in node.names if a.name == "deltalake"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {a.name for a in node.names}
            if node.module in FORBIDDEN_MODULES or node.module.startswith("deltalake"):
                found.append(f"from {node.module} import {', '.join(sorted(names))}")
            elif node.module == "smartray.tables" and names & ({"commit"} | COMMIT_NAMES):
                found.append(f"from smartray.tables import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Call):
            fn = node.func
            name = (
                fn.id
                if isinstance(fn, ast.Name)
                else fn.attr
                if isinstance(fn, ast.Attribute)
                else ""
            )
            if name in FORBIDDEN_CALLS:
                found.append(f"call {name}(...) at line {node.lineno}")
    return found


@pytest.mark.parametrize("path", _outside_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outside_tables_opens_delta_or_commits_itself(path: Path) -> None:
    assert violations(path.read_text()) == []


def test_the_check_catches_each_way_in() -> None:
    bad = """
from deltalake import DeltaTable
import smartray.tables.commit
from smartray.tables.commit import commit_rows
from smartray.tables import ASSETS, commit
dt = DeltaTable("x")
deltalake.DeltaTable("y")
"""
    found = violations(bad)
    assert len(found) == 6, found
    assert violations("from smartray.tables import ASSETS, Lake\nLake('x').session('j')") == []
