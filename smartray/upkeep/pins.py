"""Which table versions the lake must keep readable, and the vacuum retention that does it.

A version is pinned by a `runs` row (its `input_versions` and `output_versions`) or by a
`snapshots` row (`assets` at `assets_version`), unless the row is marked `broken_by` an
erasure. Vacuum deletes only files removed from a table before its retention cutoff, so a
retention that reaches back to the commit time of a table's oldest pinned version keeps
every file of every version from that one on.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from smartray.tables import RUNS, SNAPSHOTS, Lake, LakeLocation, LakeSession, spec_for

log = logging.getLogger(__name__)

MS_PER_HOUR = 3_600_000
# Vacuum takes its cutoff a little after the retention is computed, and writers' clocks
# differ: the retention reaches this much further back than the pinned commit.
SLACK_MS = 600_000
# A `maintain` run's versions hold the same rows as the versions before it: they pin nothing.
UNPINNING_JOBS = frozenset({"maintain"})


@dataclass(frozen=True, order=True)
class Pin:
    """A table version that a run or a snapshot needs readable.

    Attributes:
        version: The table version.
        table: Table name.
        by: Who pins it: `run <run_id>` or `snapshot <name>`.
    """

    version: int
    table: str
    by: str


@dataclass(frozen=True)
class Retention:
    """How far back vacuum keeps removed files for one table.

    Attributes:
        hours: Vacuum retention in hours; None keeps every file (vacuum is skipped).
        reason: Why: `minimum`, `covers version N pinned by run R`, or why all is kept.
    """

    hours: int | None
    reason: str


def _read(location: LakeLocation, name: str, wanted: list[str]) -> list[dict[str, Any]]:
    """Rows of table `name` (latest version), the `wanted` columns it has; [] if absent."""
    lake = Lake.at(location)
    if not lake.exists(name):
        return []
    dataset = lake.dataset(name)
    have = set(dataset.schema.names)
    columns = [c for c in wanted if c in have]  # `broken_by` came later: older lakes lack it
    rows: list[dict[str, Any]] = dataset.to_table(columns=columns).to_pylist()
    return rows


def _versions(raw: str | None, run_id: str, column: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError:
        log.warning("runs row %s: %s is not JSON; it pins nothing", run_id, column)
        return {}
    return parsed if isinstance(parsed, dict) else {}


def pins(location: LakeLocation) -> list[Pin]:
    """Every version pinned by a `runs` or `snapshots` row not marked `broken_by`.

    A run's own entry for `runs` in its `output_versions` (the commit of its row) pins
    nothing: no one reads `runs` as of an old version, and it would keep every file
    `runs` ever had. Nor do the rows of `maintain` runs (`UNPINNING_JOBS`).
    """
    out: set[Pin] = set()
    cols = ["run_id", "job", "input_versions", "output_versions", "broken_by"]
    for row in _read(location, RUNS.name, cols):
        if row.get("broken_by") is not None or row["job"] in UNPINNING_JOBS:
            continue
        by = f"run {row['run_id']}"
        for column in ("input_versions", "output_versions"):
            for table, version in _versions(row[column], row["run_id"], column).items():
                if table == RUNS.name and column == "output_versions":
                    continue
                if isinstance(version, int) and not isinstance(version, bool):
                    out.add(Pin(version, table, by))
    for row in _read(location, SNAPSHOTS.name, ["snapshot", "assets_version", "broken_by"]):
        if row.get("broken_by") is None and row["assets_version"] is not None:
            out.add(Pin(int(row["assets_version"]), "assets", f"snapshot {row['snapshot']}"))
    return sorted(out)


def oldest_pins(pinned: list[Pin]) -> dict[str, Pin]:
    """The oldest pinned version of each table (ties: the first `by` in sort order)."""
    oldest: dict[str, Pin] = {}
    for pin in sorted(pinned):
        oldest.setdefault(pin.table, pin)
    return oldest


def retention_for(
    session: LakeSession, table: str, pin: Pin | None, *, min_hours: int, now_ms: int
) -> Retention:
    """The vacuum retention of one table: at least `min_hours`, and back to its oldest pin.

    Args:
        session: The maintain run (reads the table's log).
        table: The table's name.
        pin: Its oldest pinned version, if any.
        min_hours: The smallest retention, in hours.
        now_ms: The current time, ms since the epoch.
    """
    if pin is None:
        return Retention(min_hours, "minimum")
    spec = spec_for(table)
    committed = session.commit_time_ms(spec, pin.version)
    if committed is None:
        log.warning(
            "table %s: version %d, pinned by %s, is not in the Delta log (latest %d): "
            "keeping every file (vacuum skipped)",
            table, pin.version, pin.by, session.latest_version(spec),
        )  # fmt: skip
        why = f"keeps everything: version {pin.version} pinned by {pin.by} is not in the log"
        return Retention(None, why)
    needed = math.ceil(max(0, now_ms - committed + SLACK_MS) / MS_PER_HOUR)
    if needed <= min_hours:
        return Retention(min_hours, "minimum")
    return Retention(needed, f"covers version {pin.version} pinned by {pin.by}")
