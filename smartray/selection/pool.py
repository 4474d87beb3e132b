"""An experiment's pool: the assets selection may pick, read at pinned versions.

The pool is every asset of `assets` with no approved label under the ontology (name
and version), except those on the `val` or `test` side of the experiment's split (they
stay fixed, so learning curves are honest) and those an earlier round of the experiment
picked; a snapshot or `--where` narrows it. With `repick` (the loop: earlier rounds are
closed), an earlier pick that came back with no annotation under the ontology, or only
rejected ones, is in the pool again; one that was answered stays out (approved, it is
labelled; else it awaits review). Rows of one near-duplicate group
(`dup_groups`), one video, or an augmented asset and its parent are one *component*: a
component that holds a labelled, val/test or picked asset leaves the pool, and a batch
takes one asset per component.

Every table is read at a version `Pins` names, so a recorded round is rebuilt exactly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smartray.curate.view import asset_view
from smartray.errors import ConfigError
from smartray.sample.snapshots import snapshot_members
from smartray.tables import ASSETS, SPLITS, LakeSession, TableSpec
from smartray.tables.catalog import ASSET_SOURCES, BATCHES, DUP_GROUPS, LABEL_EVENTS, LABELS
from smartray.tables.filters import filter_table, text
from smartray.tables.lake import Lake

HELD_OUT = ("val", "test")
PINNED = (ASSETS, ASSET_SOURCES, LABELS, SPLITS, DUP_GROUPS, BATCHES, LABEL_EVENTS)


@dataclass(frozen=True)
class Pins:
    """The version of each table a pool is read at (None: the table did not exist)."""

    versions: dict[str, int | None]

    @classmethod
    def now(cls, session: LakeSession) -> Pins:
        """The latest versions, pinned for the session's run."""
        return cls({spec.name: session.pin(spec) for spec in PINNED})

    def of(self, name: str) -> int | None:
        """The pinned version of table `name`."""
        return self.versions.get(name)

    def read(self, session: LakeSession, spec: TableSpec, **scan: Any) -> pa.Table:
        """`spec` at its pinned version: no rows if it did not exist then.

        `scan` is `columns=` and `filter=`, as for `LakeSession.read`.
        """
        version = self.of(spec.name)
        if version is None:
            names = scan.get("columns") or spec.schema.names
            return spec.schema.empty_table().select(list(names))
        return session.read(spec, version=version, **scan)


@dataclass
class Pool:
    """The candidates (sorted ids), their components, and what is covered already.

    Attributes:
        ids: Asset ids that may be picked, sorted.
        groups: Component id per candidate (equal ids: one duplicate group or video).
        labelled: The assets with an approved label under the ontology.
        picked: The assets earlier rounds of the experiment picked (with `repick`: only
            those answered).
        train: The `train` side of the split (None: no split, every asset).
        left_out: Why other assets are not candidates, counted.
    """

    ids: list[str]
    groups: np.ndarray
    labelled: set[str]
    picked: set[str]
    train: set[str] | None = None
    left_out: Counter[str] = field(default_factory=Counter)

    @property
    def covered(self) -> list[str]:
        """What a batch should be far from (k-center's centers), sorted.

        The labelled assets the model may learn (`train` side) and those picked before;
        never val or test: held-out data must not steer the selection.
        """
        learnt = self.labelled if self.train is None else self.labelled & self.train
        return sorted(learnt | self.picked)

    @property
    def components(self) -> int:
        """How many assets the pool can give at most (one per component)."""
        return len(np.unique(self.groups))


def build_pool(
    session: LakeSession,
    lake: Lake,
    pins: Pins,
    *,
    experiment: str,
    ontology: tuple[str, int],
    split: str | None,
    snapshot: str | None = None,
    where: str | None = None,
    repick: bool = False,
) -> Pool:
    """The pool of `experiment` at `pins` (see the module doc).

    Raises:
        ConfigError: no assets, an unknown split, snapshot or bad `--where`.
    """
    assets_version = pins.of(ASSETS.name)
    if assets_version is None:
        raise ConfigError(f"lake {lake.uri!r} has no assets yet: run `smartray ingest` first")
    assets = session.read(
        ASSETS, columns=["asset_id", "video_id", "parent_id"], version=assets_version
    )
    every = assets["asset_id"].to_pylist()
    labelled = _labelled(session, pins, ontology)
    picked = _picked(session, pins, experiment)
    if repick:  # an unanswered pick of a closed round may be picked again
        picked &= _answered(session, pins, ontology, picked)
    held, train = _sides(session, pins, split)
    left_out: Counter[str] = Counter()
    candidates = []
    for aid in every:
        if aid in labelled:
            left_out["labelled"] += 1
        elif aid in held:
            left_out["val/test"] += 1
        elif aid in picked:
            left_out["picked before"] += 1
        else:
            candidates.append(aid)
    candidates = _narrow(lake, candidates, pins, snapshot, where, left_out)
    component = _components(session, pins, assets)
    blocked = {component[a] for a in labelled | picked | held if a in component}
    ids = []
    for aid in sorted(candidates):
        if component[aid] in blocked:
            left_out["same group or video as a labelled, val/test or picked asset"] += 1
        else:
            ids.append(aid)
    groups = np.array([component[a] for a in ids], np.int64)
    return Pool(ids, groups, labelled, picked, train, left_out)


def _labelled(session: LakeSession, pins: Pins, ontology: tuple[str, int]) -> set[str]:
    name, version = ontology
    rows = pins.read(
        session,
        LABELS,
        columns=["asset_id"],
        filter=(text("ontology") == name) & (pc.field("ontology_version") == version),
    )
    return set(rows["asset_id"].to_pylist())


def _picked(session: LakeSession, pins: Pins, experiment: str) -> set[str]:
    rows = pins.read(
        session,
        BATCHES,
        columns=["asset_id"],
        filter=text("experiment") == experiment,
    )
    return set(rows["asset_id"].to_pylist())


def _answered(
    session: LakeSession, pins: Pins, ontology: tuple[str, int], ids: set[str]
) -> set[str]:
    """Those of `ids` with an annotation under the ontology that was not rejected.

    An annotation's state is its last review's (submitted if none); a rejected answer is
    no answer, so its asset may be picked again.
    """
    if not ids:
        return set()
    name, version = ontology
    rows = pins.read(
        session,
        LABEL_EVENTS,
        columns=["event_id", "asset_id", "event", "status", "target_id", "created_at"],
        filter=(text("ontology") == name)
        & (pc.field("ontology_version") == version)
        & text("asset_id").isin(sorted(ids)),
    ).to_pylist()
    state = {r["event_id"]: (r["asset_id"], r["status"]) for r in rows
             if r["event"] == "annotation"}  # fmt: skip
    for r in sorted((r for r in rows if r["event"] == "review"), key=lambda r: r["created_at"]):
        if r["target_id"] in state:
            state[r["target_id"]] = (state[r["target_id"]][0], r["status"])
    return {asset for asset, status in state.values() if status != "rejected"}


def _sides(session: LakeSession, pins: Pins, split: str | None) -> tuple[set[str], set[str] | None]:
    """The split's val/test assets (held out) and its train assets (None: no split)."""
    if split is None:
        return set(), None
    rows = pins.read(session, SPLITS, columns=["asset_id", "split"],
                     filter=text("split_name") == split)  # fmt: skip
    if not rows.num_rows:
        raise ConfigError(f"--split {split!r}: no split of that name (`smartray split` makes one)")
    held = rows.filter(pc.is_in(rows["split"], pa.array(HELD_OUT)))
    train = rows.filter(pc.equal(rows["split"], "train"))
    return set(held["asset_id"].to_pylist()), set(train["asset_id"].to_pylist())


def _narrow(
    lake: Lake,
    ids: list[str],
    pins: Pins,
    snapshot: str | None,
    where: str | None,
    left_out: Counter[str],
) -> list[str]:
    """`ids` narrowed to a snapshot's members and a `--where` over the asset view."""
    keep = set(ids)
    if snapshot:
        members = set(snapshot_members(lake, snapshot).column("asset_id").to_pylist())
        keep &= members
    if where:
        view = asset_view(lake, pins.of(ASSETS.name), pins.versions).table
        keep &= set(filter_table(view, where).column("asset_id").to_pylist())
    left_out["not in the snapshot or --where"] += len(ids) - len(keep)
    return [a for a in ids if a in keep]


def _components(session: LakeSession, pins: Pins, assets: pa.Table) -> dict[str, int]:
    """Asset id -> component id, shared through a duplicate group, a video or a parent."""
    ids = assets["asset_id"].to_pylist()
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}  # a key (video or group) -> the first row that had it

    def link(i: int, key: str) -> None:
        j = first.setdefault(key, i)
        if j != i:
            a, b = root(i), root(j)
            parent[max(a, b)] = min(a, b)

    row = {aid: i for i, aid in enumerate(ids)}
    for i, video in enumerate(assets["video_id"].to_pylist()):
        if video is not None:
            link(i, "v:" + video)
    for i, origin in enumerate(assets["parent_id"].to_pylist()):
        if origin is not None:  # an augmented child goes with its parent
            link(i, "a:" + origin)
            if origin in row:
                link(row[origin], "a:" + origin)
    if pins.of(DUP_GROUPS.name) is not None:
        groups = session.read(
            DUP_GROUPS, columns=["asset_id", "dup_group"], version=pins.of(DUP_GROUPS.name)
        )
        for aid, group in zip(
            groups["asset_id"].to_pylist(), groups["dup_group"].to_pylist(), strict=True
        ):
            if aid in row and group is not None:
                link(row[aid], "g:" + group)
    return {aid: root(i) for i, aid in enumerate(ids)}
