"""What the crash and S3-fault campaigns count in a lake: rows lost, rows written twice,
and orphan data files (in a table's folder, referenced by no version of its log)."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from smartray import Lake

INGEST_TABLES = ("assets", "asset_sources", "quarantine", "runs")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_images(folder: Path, n: int, seed: int) -> dict[str, str]:
    """`n` distinct small PNGs under `folder`; their URI (absolute path) to sha256."""
    from smartray.testing import files

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(n):
        path = folder / f"img{i:03d}.png"
        path.write_bytes(files.png(files.pattern(16, 16, seed=seed * 1000 + i)))
        out[str(path)] = sha256(path)
    return out


@dataclass(frozen=True)
class Tally:
    """An ingest's outcome against its source."""

    lost: int  # source inputs (or their bytes) the lake has no row for
    duplicates: int  # rows whose key is in a table more than once
    quarantined: int
    assets: int


def tally(lake_uri: str, source: dict[str, str], *, uri_of=lambda u: u) -> Tally:
    """Counts `source` (URI to sha256) against the lake's assets / asset_sources /
    quarantine; `uri_of` maps a local path to the URI the lake recorded."""
    lake = Lake(lake_uri)
    ids = lake.table("assets", columns=["asset_id"]).column("asset_id").to_pylist()
    src = lake.table("asset_sources", columns=["source_uri", "asset_id"]).to_pylist()
    q = lake.table("quarantine", columns=["quarantine_id", "source_uri"]).to_pylist()
    src_uris = [r["source_uri"] for r in src]
    q_uris = {r["source_uri"] for r in q}
    seen = set(src_uris) | q_uris
    lost = sum(uri_of(u) not in seen for u in source)
    lost += len(set(source.values()) - set(ids))
    dups = (len(ids) - len(set(ids))) + (len(src_uris) - len(set(src_uris)))
    dups += len(q) - len({r["quarantine_id"] for r in q})
    return Tally(lost=lost, duplicates=dups, quarantined=len(q), assets=len(set(ids)))


def loads(lake_uri: str, tables=INGEST_TABLES) -> list[str]:
    """The tables of `tables` that exist, each read in full (a table that does not load
    raises)."""
    lake = Lake(lake_uri)
    found = []
    for name in tables:
        if not lake.exists(name):
            continue
        names = lake.delta(name).schema().to_arrow().names
        lake.table(name, columns=[n for n in names if n not in ("data", "thumbnail")])
        found.append(name)
    return found


def referenced(table_dir: Path) -> set[str]:
    """Every data file path any version of the table's log adds."""
    paths = set()
    for log in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in log.read_text().splitlines():
            if line.strip():
                action = json.loads(line)
                if "add" in action:
                    paths.add(urllib.parse.unquote(action["add"]["path"]))
    return paths


def orphans(lake_dir: Path) -> list[str]:
    """Data files under a local lake's table folders that no log version references."""
    found = []
    for table_dir in sorted(p for p in lake_dir.iterdir() if (p / "_delta_log").is_dir()):
        refs = referenced(table_dir)
        for dirpath, dirnames, names in os.walk(table_dir):
            dirnames[:] = [d for d in dirnames if d != "_delta_log"]
            for name in names:
                rel = os.path.relpath(os.path.join(dirpath, name), table_dir)
                if rel not in refs:
                    found.append(f"{table_dir.name}/{rel}")
    return found


def maintain_sweeping_orphans(lake_uri: str):
    """`maintain` with the orphan sweep's grace period at 0 (every uncommitted file)."""
    from smartray.tables import LakeLocation
    from smartray.upkeep.maintain import maintain

    if "orphan_grace_minutes" not in inspect.signature(maintain).parameters:
        raise AssertionError("maintain has no orphan sweep (orphan_grace_minutes) yet")
    return maintain(LakeLocation.from_uri(lake_uri), orphan_grace_minutes=0)
