"""`smartray augment`: materialize augmented children of a snapshot's assets, on Ray.

Each Ray task reads its parents' bytes from the `assets` version the snapshot pinned,
makes the children and writes them as one Parquet part; the driver commits the parts to
`assets` exactly once. Children then join their parent's duplicate group and, in every
split that has the parent, the parent's split, so augmentation never leaks across splits.
Re-running with the same snapshot, ops, copies and seed makes nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pyarrow as pa
import ray

from smartray.augment.config import COPIES, PARENTS_PER_TASK, SEED
from smartray.augment.ops import canonical, child_id, children, parse_ops
from smartray.cluster.local import ensure_ray
from smartray.errors import ConfigError
from smartray.sample.snapshots import snapshot_members
from smartray.tables import (
    ASSETS,
    DUP_GROUPS,
    SNAPSHOTS,
    SPLITS,
    Lake,
    LakeLocation,
    LakeSession,
    PartFile,
    RunSummary,
    write_part,
)
from smartray.tables.filters import text

log = logging.getLogger(__name__)

PARENT_COLUMNS = ["asset_id", "data", "format", "captured_at", "stored_bytes", "video_id",
                  "frame_index", "timestamp_ms"]  # fmt: skip


class AugmentSummary(RunSummary):
    """What an augment run did."""

    def line(self) -> str:
        """The job's summary line."""
        c = self.counts
        versions = ", ".join(f"{k} v{v}" for k, v in sorted(self.versions.items()))
        return (
            f"augment {self.run_id}: {c['parents']} parents x {c['copies']} copies: "
            f"{c['children']} new children ({c['existing']} already there), "
            f"{c['grouped']} joined a duplicate group, {c['split_rows']} split rows; "
            f"tables: {versions}"
        )


def _augment_task(
    location: LakeLocation,
    version: int,
    parent_ids: list[str],
    ops: list[dict[str, Any]],
    seed: int,
    copies: int,
    skip: frozenset[str],
    run_id: str,
) -> PartFile | None:
    from smartray.sanitize.cv import pin_threads

    pin_threads()
    parents = (
        Lake.at(location)
        .dataset(ASSETS.name, version)
        .to_table(columns=PARENT_COLUMNS, filter=text("asset_id").isin(parent_ids))
    )
    now = dt.datetime.now(dt.UTC)
    rows = []
    for parent in parents.to_pylist():
        for row in children(parent, ops, seed=seed, copies=copies, skip=skip):
            rows.append({**row, "run_id": run_id, "ingested_at": now})
    if not rows:
        return None
    return write_part(location, ASSETS, pa.Table.from_pylist(rows), prefix=run_id)


def augment_snapshot(
    snapshot: str,
    ops_text: str,
    *,
    copies: int = COPIES,
    seed: int = SEED,
    lake: str | None = None,
    parents_per_task: int = PARENTS_PER_TASK,
    ray_address: str | None = None,
) -> AugmentSummary:
    """Makes `copies` augmented children of each asset of `snapshot`.

    Raises:
        ConfigError: bad ops or copies, or an unknown or broken snapshot.
    """
    ops = parse_ops(ops_text)
    if copies < 1:
        raise ConfigError(f"--copies {copies}: must be at least 1")
    lk = Lake(lake)
    members = snapshot_members(lk, snapshot)
    if any(members.column("broken_by").to_pylist()):
        raise ConfigError(f"snapshot {snapshot!r} was broken by an erasure; draw a new one")
    version = int(members.column("assets_version")[0].as_py())
    parents: list[str] = members.column("asset_id").to_pylist()
    location = lk.location
    config = {"snapshot": snapshot, "ops": ops, "copies": copies, "seed": seed}
    session = lk.session("augment", config)
    session.pin(ASSETS, version)
    session.pin(SNAPSHOTS)
    ops_json = canonical(ops)
    wanted = {child_id(p, ops_json, seed, c): p for p in parents for c in range(copies)}
    have = set(session.keys(ASSETS).to_pylist())
    skip = frozenset(c for c in wanted if c in have)
    todo = sorted({wanted[c] for c in wanted if c not in skip})
    parts: list[PartFile] = []
    if todo:
        started = ensure_ray(ray_address)
        try:
            task = ray.remote(num_cpus=1)(_augment_task)
            chunks = [todo[i : i + parents_per_task] for i in range(0, len(todo), parents_per_task)]
            refs = [task.remote(location, version, c, ops, seed, copies, skip, session.run_id)
                    for c in chunks]  # fmt: skip
            parts = [p for p in ray.get(refs) if p is not None]
        finally:
            if started:
                ray.shutdown()
    result = session.commit(ASSETS, parts=parts, mode="parts")
    grouped, split_rows = _inherit(session, wanted)
    session.counts.update({"parents": len(parents), "copies": copies,
                           "children": result.rows_written, "existing": len(skip),
                           "grouped": grouped, "split_rows": split_rows})  # fmt: skip
    session.record()
    return AugmentSummary.of(session.run)


def _inherit(session: LakeSession, wanted: dict[str, str]) -> tuple[int, int]:
    """Gives each child its parent's duplicate group and, per split, its parent's split."""
    now = dt.datetime.now(dt.UTC)
    run_id = session.run_id
    grouped = split_rows = 0
    if session.exists(DUP_GROUPS):
        stored = session.read(DUP_GROUPS, columns=["asset_id", "dup_group", "threshold"])
        by_id = {r["asset_id"]: r for r in stored.to_pylist()}
        rows = [{"asset_id": c, "dup_group": by_id[p]["dup_group"],
                 "threshold": by_id[p]["threshold"], "run_id": run_id, "grouped_at": now}
                for c, p in wanted.items() if p in by_id]  # fmt: skip
        if rows:
            grouped = session.commit(DUP_GROUPS, pa.Table.from_pylist(rows)).rows_written
    if session.exists(SPLITS):
        parents = set(wanted.values())
        stored = session.read(SPLITS, columns=["split_name", "asset_id", "split", "group_key"])
        by_parent: dict[str, list[dict[str, Any]]] = {}
        for r in stored.to_pylist():
            if r["asset_id"] in parents:
                by_parent.setdefault(r["asset_id"], []).append(r)
        rows = [{**r, "asset_id": c, "run_id": run_id, "assigned_at": now}
                for c, p in wanted.items() for r in by_parent.get(p, [])]  # fmt: skip
        if rows:
            split_rows = session.commit(SPLITS, pa.Table.from_pylist(rows)).rows_written
    return grouped, split_rows
