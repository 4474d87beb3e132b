"""The lake's ground floor: table declarations, pinned reads, exactly-once commits.

Every table is declared once in `catalog.py`. Jobs reach the tables through a run's
`LakeSession` (`Lake(uri).session(job, config)`); notebooks read them through `Lake`.
The commit functions in `commit.py` are this package's own: stages commit through the
session, which carries the run's app transaction and metadata.
"""

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
from smartray.tables.commit import CommitResult
from smartray.tables.lake import Lake, TableInfo
from smartray.tables.parts import PartFile, write_part
from smartray.tables.runs import Run, RunSummary, run_configs
from smartray.tables.session import LakeSession
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
    "LakeSession",
    "PartFile",
    "Run",
    "RunSummary",
    "TableInfo",
    "TableSpec",
    "run_configs",
    "spec_for",
    "write_part",
]
