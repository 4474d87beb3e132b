"""The real Label Studio on loopback for the test session, and a small client for its API.

Label Studio pins its own Django, pyarrow and requests, so it lives in a virtual
environment of its own under `.cache/label-studio/` in the repo root, made from the system
`python3` once and reused after (`conftest.py` starts the build when the session begins).
The server is Django's on 127.0.0.1 with SQLite in the test's temp dir; one user and its
API token are created at start (`label-studio start --username/--password/--user-token`
with legacy tokens enabled). Its database migrations take a minute or more on two cores,
so they run once per venv into a template database that each server starts from a copy
of. Nothing leaves the machine: no version check, analytics, Sentry or browser.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration import side_venv
from tests.integration.servers import stop_process_group

VERSION = "1.23.2"
REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".cache" / "label-studio" / "venv"
_STAMP = f".installed-label-studio-{VERSION}"  # written once pip install has finished


def ensure_venv(venv: Path = VENV) -> Path:
    """The `label-studio` executable of its own venv; builds the venv when missing."""
    return side_venv.ensure(venv, f"label-studio=={VERSION}", _STAMP, exe="label-studio")


def ensure_template_db(venv: Path = VENV) -> Path:
    """An empty, fully migrated database for this version, made once per venv."""
    exe = ensure_venv(venv)
    db = venv / "template" / "data" / "label_studio.sqlite3"
    stamp = db.with_name("migrated")
    if stamp.exists():
        return db
    with open(venv.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return db
        workdir = venv / "template"
        shutil.rmtree(workdir, ignore_errors=True)
        (workdir / "home").mkdir(parents=True)
        log = workdir / "migrate.log"
        with open(log, "wb") as out:  # every command migrates first; `version` then exits
            done = subprocess.run(
                [str(exe), "version"], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=server_env(workdir), cwd=workdir, check=False,
            )  # fmt: skip
        if done.returncode != 0 or not db.exists():
            raise RuntimeError(f"migrating Label Studio's database failed:\n{_tail(log)}")
        stamp.touch()
    return db


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabelStudioError(RuntimeError):
    """An API call answered with an error status."""


@dataclass
class Client:
    """Label Studio's HTTP API as an annotator's tool would call it, with a token."""

    url: str
    token: str
    timeout: float = 60.0

    def request(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """One API call; returns the decoded JSON answer (None when empty)."""
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Token {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:2000]
            raise LabelStudioError(f"{method} {path}: {e.code} {detail}") from None
        return json.loads(raw) if raw else None

    def whoami(self) -> dict[str, Any]:
        return dict(self.request("GET", "/api/current-user/whoami"))

    def create_project(self, title: str, label_config: str) -> int:
        project = self.request(
            "POST", "/api/projects", {"title": title, "label_config": label_config}
        )
        return int(project["id"])

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> int:
        """Imports tasks (each `{"data": {...}}` or a bare data dict); returns how many."""
        done = self.request("POST", f"/api/projects/{project_id}/import", tasks)
        return int(done.get("task_count", len(tasks)))

    def list_tasks(self, project_id: int) -> list[dict[str, Any]]:
        tasks: list[dict[str, Any]] = []
        page = 1
        while True:
            try:
                got = self.request(
                    "GET", "/api/tasks", project=project_id, page=page, page_size=100, fields="all"
                )
            except LabelStudioError as e:  # paging past the last page answers 404
                if page > 1 and ": 404 " in str(e):
                    return tasks
                raise
            batch = got["tasks"] if isinstance(got, dict) else got
            tasks.extend(batch)
            total = got.get("total") if isinstance(got, dict) else None
            if not batch or total is None or len(tasks) >= total:
                return tasks
            page += 1

    def create_annotation(self, task_id: int, result: list[dict[str, Any]]) -> int:
        done = self.request("POST", f"/api/tasks/{task_id}/annotations", {"result": result})
        return int(done["id"])

    def export(self, project_id: int, export_type: str = "JSON") -> list[dict[str, Any]]:
        """Label Studio's own export of a project's annotated tasks."""
        return list(
            self.request("GET", f"/api/projects/{project_id}/export", exportType=export_type)
        )


@dataclass
class LabelStudio:
    """A running server: where it listens, its user's API token, its process."""

    url: str
    token: str
    username: str
    password: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log(self) -> Path:
        return self.workdir / "label-studio.log"

    def client(self) -> Client:
        return Client(self.url, self.token)

    def stop(self) -> None:
        stop_process_group(self.process)


def server_env(workdir: Path) -> dict[str, str]:
    """A clean environment: data under `workdir`, every outward call switched off."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir / "home"),
        "LANG": "C.UTF-8",
        "LABEL_STUDIO_BASE_DATA_DIR": str(workdir / "data"),
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "0",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "PYTHONUNBUFFERED": "1",
    }


def start(workdir: Path, timeout: float = 240.0) -> LabelStudio:
    """Starts Label Studio under `workdir`; returns once its API answers the user's token."""
    exe = ensure_venv()
    template = ensure_template_db()
    (workdir / "home").mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    shutil.copyfile(template, workdir / "data" / template.name)
    port = _free_port()
    username, password = "annotator@smartray.test", secrets.token_hex(12)
    token = secrets.token_hex(20)
    cmd = [
        str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(workdir / "data"), "--log-level", "WARNING",
        "--username", username, "--password", password, "--user-token", token,
        "--enable-legacy-api-token",
    ]  # fmt: skip
    log = open(workdir / "label-studio.log", "wb")  # noqa: SIM115 -- lives as long as the server
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=server_env(workdir), cwd=workdir, start_new_session=True,
    )  # fmt: skip
    server = LabelStudio(f"http://127.0.0.1:{port}", token, username, password, workdir, proc)
    client = Client(server.url, token, timeout=10)
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"label-studio exited ({proc.returncode}) before answering; log tail:\n"
                f"{_tail(server.log)}"
            )
        try:
            if client.whoami().get("email") == username:
                return server
        except (OSError, LabelStudioError, ValueError) as e:  # not up yet
            last = e
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(
        f"label-studio did not answer on {server.url} in {timeout:.0f}s ({last}); log tail:\n"
        f"{_tail(server.log)}"
    )
