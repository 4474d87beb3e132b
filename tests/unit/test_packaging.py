"""What ships: the wheel holds `smartray` only; `jobs/` runs from a checkout or the image.

The subprocesses run Python with `-S` and the venv's site-packages on PYTHONPATH: the
packages smartray needs, without the editable install's finder (a `.pth` file), so
`smartray` and `jobs` resolve only from where each test puts them.
"""

import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = sysconfig.get_paths()["purelib"]


def bare_python(args, *, cwd, path=(), timeout=120):
    """Python without the editable install: only `path`, then site-packages."""
    return subprocess.run(
        [sys.executable, "-S", *args],
        cwd=cwd,
        env={"PYTHONPATH": ":".join([*map(str, path), SITE]), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def docker_layout() -> tuple[str, list[tuple[list[str], str]]]:
    """The Dockerfile's WORKDIR and its COPY lines as (sources, destination)."""
    workdir, copies = "/", []
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")  # continued lines
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "WORKDIR":
            workdir = words[1]
        elif words[0] == "COPY":
            paths = [w for w in words[1:] if not w.startswith("--")]
            copies.append((paths[:-1], paths[-1]))
    return workdir, copies


def build_image_tree(dest: Path) -> Path:
    """The image's working directory as the Dockerfile lays it out, under `dest`."""
    workdir, copies = docker_layout()
    root = dest / workdir.lstrip("/")
    root.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for sources, target in copies:
        into = root / target
        for source in sources:
            src = ROOT / source
            if src.is_dir():  # a folder's contents go to the target
                shutil.copytree(src, into, ignore=ignore, dirs_exist_ok=True)
            elif target.endswith("/") or len(sources) > 1:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, into / src.name)
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, into)
    return root


def rayjob_modules() -> list[str]:
    """The module each RayJob's entrypoint runs (`python -m jobs.X ...`)."""
    modules = []
    for path in sorted((ROOT / "k8s" / "base").glob("rayjob-*.yaml")):
        entrypoint = (yaml.safe_load(path.read_text()).get("spec") or {}).get("entrypoint")
        if entrypoint:
            argv = shlex.split(entrypoint)
            assert argv[:2] == ["python", "-m"], path
            modules.append(argv[2])
    return modules


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip wheel` builds from the files the Dockerfile copies (jobs/ among them)."""
    src = build_image_tree(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(out), str(src)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (path,) = out.glob("smartray-*.whl")
    return path


def test_the_wheel_holds_no_top_level_jobs_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"smartray"}
    assert "smartray/ingest/job.py" in names
    assert "smartray/py.typed" in names


def test_an_install_of_the_wheel_runs_a_job_without_the_checkout(wheel, tmp_path):
    target, elsewhere = tmp_path / "site", tmp_path / "cwd"
    elsewhere.mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target",
         str(target), str(wheel)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    where = bare_python(
        ["-c", "import importlib.util, smartray; "
               "print(smartray.__file__, importlib.util.find_spec('jobs'))"],
        cwd=elsewhere, path=[target],
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert where.stdout.split() == [str(target / "smartray" / "__init__.py"), "None"]
    out = bare_python(["-m", "smartray.cli", "ingest", "--help"], cwd=elsewhere, path=[target])
    assert out.returncode == 0, out.stderr
    assert "--max-bytes" in out.stdout


def test_python_m_jobs_runs_from_a_checkout():
    out = subprocess.run(
        [sys.executable, "-m", "jobs.ingest", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "--max-bytes" in out.stdout
    assert out.stdout.startswith("usage: smartray ingest")


def test_every_rayjob_module_resolves_in_the_images_working_directory(tmp_path):
    modules = rayjob_modules()
    assert "jobs.ingest" in modules
    assert len(modules) == len(list((ROOT / "jobs").glob("[!_]*.py")))
    root = build_image_tree(tmp_path)
    # Each entry point imports (so its library job module exists there), from the copy.
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    m = importlib.import_module(name)\n"
        "    print(m.main.__module__, m.__file__)\n"
        "print('smartray', sys.modules['smartray'].__file__)\n"
    )
    check = bare_python(["-c", script, *modules], cwd=root)
    assert check.returncode == 0, check.stderr
    *lines, library = check.stdout.splitlines()
    assert library == f"smartray {root / 'smartray' / '__init__.py'}"
    for module, line in zip(modules, lines, strict=True):
        job_module, file = line.split()
        assert file == str(root / (module.replace(".", "/") + ".py"))
        assert (root / (job_module.replace(".", "/") + ".py")).is_file(), job_module
    # And one runs as the RayJob runs it.
    out = bare_python(["-m", "jobs.ingest", "--help"], cwd=root)
    assert out.returncode == 0, out.stderr
    assert "--max-bytes" in out.stdout
