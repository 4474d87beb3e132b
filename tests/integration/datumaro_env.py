"""Datumaro in a virtual environment of its own, for `test_interop.py`.

Datumaro pins its own numpy, pyarrow and friends, so it cannot share the project's venv.
It lives in `.cache/datumaro/venv` in the repo root, made from the system `python3` on
first use: a stamp file written last marks a finished install (a venv left half-built by
an interrupted run is made again), and a lock keeps two processes from building it at
once. Standard library only, so `conftest.py` can start the build early.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

VERSION = "1.13.12"
REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".cache" / "datumaro" / "venv"
_STAMP = f".installed-datumaro-{VERSION}"


def ensure_datumaro(venv: Path = VENV) -> Path:
    """The python of Datumaro's own venv; builds the venv when missing."""
    python = venv / "bin" / "python"
    stamp = venv / _STAMP
    if stamp.exists() and python.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and python.exists():
            return python
        shutil.rmtree(venv, ignore_errors=True)
        system = shutil.which("python3")
        if system is None:
            raise RuntimeError("python3 is needed to make Datumaro's virtual environment")
        log = venv.parent / "install.log"
        with open(log, "wb") as out:
            for cmd in (
                [system, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 f"datumaro=={VERSION}"],
            ):  # fmt: skip
                done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
                if done.returncode != 0:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{tail}")
        stamp.touch()
    return python
