"""Lake upkeep: compaction, vacuum within what runs and snapshots pin, checkpoints."""

from smartray.upkeep.maintain import MaintainResult, TableUpkeep, maintain, summary_lines
from smartray.upkeep.pins import Pin, Retention, pins

__all__ = ["MaintainResult", "Pin", "Retention", "TableUpkeep", "maintain", "pins", "summary_lines"]
