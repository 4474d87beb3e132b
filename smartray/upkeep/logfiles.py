"""What a table's Delta log says about the files in its folder, read straight from the log.

- `logged_files`: every data file some commit added or removed (JSON commits and
  checkpoints), up to a version. A file in the folder that is not among them was never
  committed: an orphan part of a killed driver, or a part an in-flight job has written
  and not committed yet. The two look alike; only their age tells them apart, so
  `orphans` takes those older than a grace period.
- `scrub_log`: takes erased ids out of the log's JSON commits and checkpoints (per-file
  statistics, recorded predicates), for logs written before statistics left id columns
  out (see `smartray.tables.spec.stats_columns`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from smartray.tables import LakeLocation

log = logging.getLogger(__name__)

LOG_DIR = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(\.\d+\.\d+)?\.parquet$")
ERASED = "<erased>"  # what an erased id is replaced with outside of statistics
# Uncommitted parts younger than this are left alone: a job still running may commit them.
# A day: longer than any job should run between writing its first part and its commit.
ORPHAN_GRACE_MINUTES = 1440


@dataclass(frozen=True)
class DataFile:
    """A Parquet file in a table's folder.

    Attributes:
        path: Path relative to the table root.
        full: Path inside the lake's filesystem.
        mtime_ms: Last modification, ms since the epoch (0 if unknown).
    """

    path: str
    full: str
    mtime_ms: int


def _base(location: LakeLocation, name: str) -> tuple[pafs.FileSystem, str]:
    fs, root = location.filesystem()
    return fs, f"{root}/{name}"


def _list(fs: pafs.FileSystem, folder: str, recursive: bool) -> list[pafs.FileInfo]:
    try:
        found = fs.get_file_info(pafs.FileSelector(folder, recursive=recursive))
    except FileNotFoundError:
        return []
    return [i for i in found if i.type == pafs.FileType.File]


def data_files(location: LakeLocation, name: str) -> list[DataFile]:
    """The Parquet files in the table's folder (outside `_delta_log`), committed or not."""
    fs, base = _base(location, name)
    out = []
    for info in _list(fs, base, recursive=True):
        rel = info.path[len(base) + 1 :]
        if rel.startswith(f"{LOG_DIR}/") or not rel.endswith(".parquet"):
            continue
        mtime = int(info.mtime.timestamp() * 1000) if info.mtime is not None else 0
        out.append(DataFile(rel, info.path, mtime))
    return out


def _rel(path: str, name: str) -> str:
    path = unquote(path)
    return path.rsplit(f"/{name}/", 1)[-1] if "://" in path else path


def logged_files(location: LakeLocation, name: str, upto: int | None = None) -> set[str]:
    """Every data file (relative path) a commit up to version `upto` added or removed.

    Reads the JSON commits and the checkpoints (which stand in for commits a log may
    have lost); `upto` None reads the whole log.
    """
    fs, base = _base(location, name)
    out: set[str] = set()
    for info in _list(fs, f"{base}/{LOG_DIR}", recursive=False):
        fname = info.path.rsplit("/", 1)[-1]
        commit, checkpoint = _COMMIT.match(fname), _CHECKPOINT.match(fname)
        version = commit or checkpoint
        if version is None or (upto is not None and int(version.group(1)) > upto):
            continue
        if commit:
            with fs.open_input_stream(info.path) as f:
                for line in f.read().decode("utf-8").splitlines():
                    action = json.loads(line) if line.strip() else {}
                    for kind in ("add", "remove"):
                        if kind in action:
                            out.add(_rel(action[kind]["path"], name))
        else:
            table = pq.read_table(info.path, filesystem=fs, columns=["add", "remove"])
            for kind in ("add", "remove"):
                for entry in table.column(kind).to_pylist():
                    if entry is not None:
                        out.add(_rel(entry["path"], name))
    return out


def orphans(
    location: LakeLocation, name: str, *, grace_minutes: float, now_ms: int | None = None
) -> list[DataFile]:
    """Data files no commit ever added or removed, last written over `grace_minutes` ago.

    The folder is listed before the log is read, so a file committed in between counts
    as logged; a job's parts are safe as long as the job commits within the grace period.
    """
    found = data_files(location, name)
    logged = logged_files(location, name)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    cutoff = now - grace_minutes * 60_000
    return [f for f in found if f.path not in logged and f.mtime_ms <= cutoff]


def delete(location: LakeLocation, files: Iterable[DataFile]) -> list[str]:
    """Deletes the files; returns their relative paths (one already gone counts too)."""
    fs, _ = location.filesystem()
    gone = []
    for f in files:
        with contextlib.suppress(FileNotFoundError):
            fs.delete_file(f.full)
        gone.append(f.path)
    return sorted(gone)


def _scrub_action(action: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    for kind in ("add", "remove"):
        entry = action.get(kind)
        if entry and any(i in str(entry.get("stats") or "") for i in ids):
            del entry["stats"]  # statistics are optional: readers just skip less
    text = json.dumps(action, separators=(",", ":"))
    for i in ids:
        text = text.replace(i, ERASED)  # e.g. a predicate in commitInfo
    scrubbed: dict[str, Any] = json.loads(text)
    return scrubbed


@dataclass(frozen=True)
class Scrubbed:
    """What `scrub_log` changed.

    Attributes:
        files: Log files rewritten or deleted.
        checkpoints: Checkpoints deleted (write a fresh one).
    """

    files: int
    checkpoints: int


def scrub_log(location: LakeLocation, name: str, ids: Iterable[str]) -> Scrubbed:
    """Takes every id in `ids` out of the table's log.

    In a JSON commit, an add or remove action whose statistics name an id loses its
    statistics (they are optional; readers then skip less), and any other mention (a
    `DELETE` predicate in the commit info) becomes `<erased>`. A checkpoint that names an
    id is deleted: every JSON commit is kept (logs are never cleaned up), so readers
    replay those instead, and the caller writes a fresh checkpoint.
    Each file is replaced whole (a local rename, or one S3 put), never left half-written.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return Scrubbed(0, 0)
    needles = [i.encode() for i in wanted]
    fs, base = _base(location, name)
    changed = 0
    dropped: set[int] = set()
    for info in _list(fs, f"{base}/{LOG_DIR}", recursive=False):
        fname = info.path.rsplit("/", 1)[-1]
        with fs.open_input_stream(info.path) as f:
            raw = f.read()
        if not any(n in raw for n in needles):
            continue
        checkpoint = _CHECKPOINT.match(fname)
        if checkpoint:
            fs.delete_file(info.path)
            dropped.add(int(checkpoint.group(1)))
        elif fname.endswith(".json"):
            lines = [
                json.dumps(_scrub_action(json.loads(line), wanted), separators=(",", ":"))
                for line in raw.decode("utf-8").splitlines()
                if line.strip()
            ]
            _replace(fs, info.path, ("\n".join(lines) + "\n").encode())
        else:  # anything else in the log (a leftover temporary commit, `_last_checkpoint`)
            text = raw
            for n in needles:
                text = text.replace(n, ERASED.encode())
            _replace(fs, info.path, text)
        changed += 1
    if dropped and _last_checkpoint(fs, base) in dropped:
        fs.delete_file(f"{base}/{LOG_DIR}/_last_checkpoint")  # readers list the log instead
    if changed:
        log.info("table %s: erased ids taken out of %d log file(s)", name, changed)
    return Scrubbed(changed, len(dropped))


def _last_checkpoint(fs: pafs.FileSystem, base: str) -> int | None:
    try:
        with fs.open_input_stream(f"{base}/{LOG_DIR}/_last_checkpoint") as f:
            return int(json.loads(f.read())["version"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def _replace(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{path}.scrub-{time.time_ns()}"
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, path)  # an atomic rename: a reader sees the old file or the new one
    else:
        with fs.open_output_stream(path) as out:  # one PUT: the object is replaced whole
            out.write(data)
