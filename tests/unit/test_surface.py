"""The jobs' floor plan: thin entry points, library job modules that use stage surfaces.

`jobs/<name>.py` only imports its job's module from the registry (`JOBS`); a job module
imports other packages only through their `__init__` (`from smartray.curate import ...`);
every name a package exports in `__all__` imports.
"""

import ast
import importlib
import types
from pathlib import Path

import pytest

from smartray.jobrun import JOBS, JobSettings, job_settings, parse

ROOT = Path(__file__).resolve().parents[2]
STAGES = (
    "annotate", "augment", "curate", "ingest", "sample", "sanitize", "sources", "split",
    "upkeep", "video",
)  # fmt: skip
# First-level modules a job module may import besides package surfaces.
SHARED = {"smartray.jobrun", "smartray.errors"}


def imported_modules(path: Path) -> list[str]:
    """The modules `path` imports, anywhere in it (lazy imports in functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            found.append(node.module or "")
    return found


def module_path(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def entry_points() -> dict[str, Path]:
    return {p.stem.replace("_", "-"): p for p in sorted((ROOT / "jobs").glob("[!_]*.py"))}


def test_each_job_has_one_entry_point_and_one_library_module():
    assert sorted(entry_points()) == sorted(JOBS)
    for name, module in JOBS.items():
        assert module_path(module).is_file(), module
        assert module.split(".")[-1] in ("job", "job_" + name.replace("-", "_")), module


@pytest.mark.parametrize("name", sorted(JOBS))
def test_an_entry_point_imports_its_job_module_only(name):
    path = entry_points()[name]
    assert imported_modules(path) == [JOBS[name]]
    tree = ast.parse(path.read_text())
    (imp,) = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert [a.name for a in imp.names] == ["main"]


@pytest.mark.parametrize("name", sorted(JOBS))
def test_a_job_module_imports_other_packages_through_their_surface(name):
    for module in imported_modules(module_path(JOBS[name])):
        if module.split(".")[0] != "smartray":
            continue
        assert module.count(".") == 1, f"{JOBS[name]} imports {module}: use its package"
        assert module in SHARED or (ROOT / module.replace(".", "/") / "__init__.py").is_file()


@pytest.mark.parametrize("name", sorted(JOBS))
def test_a_job_module_has_one_settings_class_a_run_and_a_main(name, capsys):
    module = importlib.import_module(JOBS[name])
    settings = job_settings(name)
    assert issubclass(settings, JobSettings)
    assert callable(module.run)
    assert callable(module.main)
    with pytest.raises(SystemExit) as e:
        parse(settings, ["--help"], f"smartray {name}")
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: smartray {name}")


@pytest.mark.parametrize("stage", STAGES)
def test_every_exported_name_of_a_stage_imports(stage):
    package = importlib.import_module(f"smartray.{stage}")
    names = getattr(package, "__all__", None)
    assert names, f"smartray.{stage} exports nothing in __all__"
    for name in names:
        value = getattr(package, name)  # a lazy export is loaded here
        # a module of the same name must not shadow the function the package exports
        assert not isinstance(value, types.ModuleType), f"smartray.{stage}.{name} is a module"


def test_every_package_surface_lists_what_it_exports():
    for init in sorted((ROOT / "smartray").glob("*/__init__.py")):
        package = importlib.import_module(f"smartray.{init.parent.name}")
        for name in getattr(package, "__all__", ()):
            assert hasattr(package, name), f"smartray.{init.parent.name}.{name}"
