"""Writes `schemas/tables/<name>.json` from the declared specs.

Run `python -m smartray.tables.schema_files` after changing a `TableSpec`; a test fails
while a snapshot differs from its spec, so schema changes show in review.
"""

from __future__ import annotations

import sys
from pathlib import Path

from smartray.tables.catalog import ALL_TABLES

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "schemas" / "tables"


def write_snapshots(folder: Path = SNAPSHOT_DIR) -> list[Path]:
    """Writes one JSON file per declared table; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, spec in ALL_TABLES.items():
        path = folder / f"{name}.json"
        path.write_text(spec.snapshot_json(), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_snapshots(Path(sys.argv[1]) if len(sys.argv) > 1 else SNAPSHOT_DIR):
        print(p)
