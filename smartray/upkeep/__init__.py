"""Lake upkeep: compaction, vacuum within what runs and snapshots pin, checkpoints."""

from smartray.upkeep.erase import erase, read_ids_file
from smartray.upkeep.maintain import (
    MIN_RETENTION_HOURS,
    ORPHAN_GRACE_MINUTES,
    TARGET_SIZE_MB,
    MaintainResult,
    TableUpkeep,
    maintain,
    summary_lines,
)
from smartray.upkeep.pins import Pin, Retention, pins

__all__ = [
    "MIN_RETENTION_HOURS",
    "ORPHAN_GRACE_MINUTES",
    "TARGET_SIZE_MB",
    "MaintainResult",
    "Pin",
    "Retention",
    "TableUpkeep",
    "erase",
    "maintain",
    "pins",
    "read_ids_file",
    "summary_lines",
]
