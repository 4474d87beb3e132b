"""The lake: table declarations, exactly-once commits, and the `Lake` reader."""

from smartray.tables.catalog import (
    ALL_TABLES,
    ASSET_SOURCES,
    ASSETS,
    DUP_GROUPS,
    QUARANTINE,
    RUNS,
    SNAPSHOTS,
    SPLITS,
    VIDEOS,
    spec_for,
)
from smartray.tables.commit import (
    CommitResult,
    commit_parts,
    commit_rows,
    commit_upsert,
    commit_where,
    ensure_table,
)
from smartray.tables.lake import Lake, TableInfo
from smartray.tables.parts import PartFile, write_part
from smartray.tables.spec import TableSpec
from smartray.tables.storage import LakeLocation

__all__ = [
    "ALL_TABLES",
    "ASSETS",
    "ASSET_SOURCES",
    "DUP_GROUPS",
    "QUARANTINE",
    "RUNS",
    "SNAPSHOTS",
    "SPLITS",
    "VIDEOS",
    "CommitResult",
    "Lake",
    "LakeLocation",
    "PartFile",
    "TableInfo",
    "TableSpec",
    "commit_parts",
    "commit_rows",
    "commit_upsert",
    "commit_where",
    "ensure_table",
    "spec_for",
    "write_part",
]
