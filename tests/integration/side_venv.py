"""Virtual environments of their own for the peers that pin their own dependencies.

Label Studio and Datumaro each pin their own numpy, pyarrow, Django or requests, so they
cannot share the project's venv. Each lives under `.cache/<name>/venv` in the repo root,
made from the system `python3` on first use and reused after: a stamp file written last
marks a finished install (a venv left half-built by an interrupted run is made again),
and a lock keeps two processes from building it at once. Standard library only, so
`conftest.py` can start the builds early.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path


def ensure(venv: Path, requirement: str, stamp_name: str, exe: str = "python") -> Path:
    """`venv/bin/<exe>`, after `pip install requirement` into `venv` if not done yet."""
    stamp, path = venv / stamp_name, venv / "bin" / exe
    if stamp.exists() and path.exists():
        return path
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and path.exists():
            return path
        shutil.rmtree(venv, ignore_errors=True)
        system = shutil.which("python3")
        if system is None:
            raise RuntimeError(f"python3 is needed to make the virtual environment {venv}")
        log = venv.parent / "install.log"
        with open(log, "wb") as out:
            for cmd in (
                [system, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                 "--disable-pip-version-check", requirement],
            ):  # fmt: skip
                done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
                if done.returncode != 0:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{tail}")
        stamp.touch()
    return path
