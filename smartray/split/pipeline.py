"""`smartray split` and `smartray check-leaks` over the asset view.

A split's groups join what must never straddle train and test: an asset's near-duplicate
group (`dup_groups`), the frames of one video, and optionally a user column. The
`splits` table keeps every assignment, so re-running a split after new ingests only
assigns the new assets (a new asset whose group is assigned joins that split).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from smartray.curate.groups import chain_edges, component_labels, group_names
from smartray.curate.view import AssetView, asset_view
from smartray.errors import ConfigError
from smartray.split.assign import TOLERANCE, assign_groups, majority, parse_ratios
from smartray.tables.catalog import SPLITS
from smartray.tables.filters import text
from smartray.tables.lake import Lake
from smartray.tables.runs import run_configs

log = logging.getLogger(__name__)


@dataclass
class SplitSummary:
    """What a split run did; `lines()` is what the job prints."""

    run_id: str
    name: str
    assets: dict[str, int]
    groups: dict[str, int]
    counts: dict[str, int]
    versions: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One line per split with its realized share, then a summary line."""
        total = sum(self.assets.values()) or 1
        out = [
            f"  {s:<8} {self.assets[s] / total:.3f}  ({self.assets[s]} assets, "
            f"{self.groups[s]} groups)"
            for s in self.assets
        ]
        c = self.counts
        out.append(
            f"split {self.name!r} ({self.run_id}): {total} assets in {c['groups']} groups; "
            f"{c['new']} newly assigned, {c['moved']} moved to keep a group whole; "
            f"splits v{self.versions.get('splits', 0)}"
        )
        return out


def check_ratios(
    name: str,
    ratios: dict[str, float],
    assets: Counter[str],
    sizes: dict[str, int],
    tolerance: float,
) -> None:
    """Raises a ConfigError when groups too big for the ratios make a share miss.

    That is: a realized share misses its ratio by more than `tolerance`, and no placement
    of these groups would do better: packing them largest first, each into the split
    furthest below its share, misses by more than `tolerance` too (a giant near-duplicate
    group, a few long videos in a small lake). A miss that a better placement avoids (many
    small groups placed by their hash in a small lake) is only logged. The message gives
    each missed share and the largest groups with their share of the assets.
    """
    total = sum(assets.values())
    if not total:
        return
    missed = [
        f"{s} {assets[s] / total:.3f} (asked {r:.3f})"
        for s, r in ratios.items()
        if abs(assets[s] / total - r) > tolerance
    ]
    if not missed:
        return
    largest = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    packed = dict.fromkeys(ratios, 0)
    for _, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        packed[max(ratios, key=lambda s: ratios[s] * total - packed[s])] += n
    if all(abs(packed[s] / total - r) <= tolerance for s, r in ratios.items()):
        log.warning("split %s: %s (groups placed by hash; they would fit)", name, missed)
        return
    groups = ", ".join(f"{g[:16]} {n} assets ({100 * n / total:.1f} %)" for g, n in largest)
    raise ConfigError(
        f"split {name!r}: the ratios cannot hold within --tolerance {tolerance}: "
        f"{'; '.join(missed)}; the largest groups: {groups}. Nothing was written: look at "
        "those groups (`smartray curate` again, --group-by), use --no-groups, or give "
        "--allow-skew to write this split anyway"
    )


def check_column(view: AssetView, column: str, flag: str) -> None:
    """Raises a ConfigError naming `column` and the valid ones if the view lacks it."""
    if column not in view.columns:
        raise ConfigError(
            f"{flag} {column!r}: no such column; valid columns: {', '.join(view.columns)}"
        )


def group_keys(view: AssetView, *, groups: bool = True, group_by: str | None = None) -> list[str]:
    """Each asset's group: its component over duplicate group, video and `group_by`.

    With `groups=False`, every asset is its own group. An asset with no `dup_group`
    (not curated yet) is grouped by its video and `group_by` only.
    """
    ids: list[str] = view.table.column("asset_id").to_pylist()
    if not groups:
        return ids
    edges = [
        chain_edges(view.table.column("dup_group").to_pylist()),
        chain_edges(view.table.column("video_id").to_pylist()),
    ]
    if group_by:
        values = view.table.column(group_by).to_pylist()
        edges.append(chain_edges([None if v is None else str(v) for v in values]))
    return group_names(ids, component_labels(len(ids), *edges))


def read_split(lake: Lake, name: str) -> dict[str, str]:
    """asset_id -> split of split `name` (empty if there is none)."""
    if not lake.exists(SPLITS.name):
        return {}
    ds = lake.delta(SPLITS.name).to_pyarrow_dataset()
    rows = ds.to_table(columns=["asset_id", "split"], filter=text("split_name") == name)
    return dict(
        zip(rows.column("asset_id").to_pylist(), rows.column("split").to_pylist(), strict=True)
    )


def split_names(lake: Lake) -> list[str]:
    """The names of the splits stored in the lake."""
    if not lake.exists(SPLITS.name):
        return []
    names = lake.delta(SPLITS.name).to_pyarrow_dataset().to_table(columns=["split_name"])
    return sorted(set(names.column("split_name").to_pylist()))


def _stored_config(lake: Lake, name: str) -> dict[str, Any] | None:
    """The config of the latest `split` run that wrote split `name`."""
    found = [c for c in run_configs(lake.location, "split") if c.get("name") == name]
    return found[-1] if found else None


def split(
    name: str,
    ratios_text: str,
    *,
    lake: str | None = None,
    seed: int = 0,
    groups: bool = True,
    group_by: str | None = None,
    stratify_by: str | None = None,
    tolerance: float = TOLERANCE,
    allow_skew: bool = False,
) -> SplitSummary:
    """Assigns every asset of the lake to a split of `name`, whole groups at a time.

    Args:
        name: The split's name.
        ratios_text: `train=0.8,val=0.1,test=0.1`.
        lake: The lake.
        seed: Fixes which groups go where.
        groups: Keep groups whole (False: a plain per-asset split).
        group_by: Also keep assets sharing this column's value together.
        stratify_by: Column to stratify by (default: `label` where there is one).
        tolerance: Largest difference between a split's realized and asked share.
        allow_skew: Write the split even when a share misses by more than `tolerance`.

    Raises:
        ConfigError: bad ratios or columns, assets not curated yet, a split `name` that
            exists with other settings, or groups too big for the ratios to hold within
            `tolerance` (the message names the largest groups). Nothing is written then.
    """
    ratios = parse_ratios(ratios_text)
    lk = Lake(lake)
    view = asset_view(lk)
    if group_by:
        check_column(view, group_by, "--group-by")
    if stratify_by is None and "label" in view.columns:
        stratify_by = "label"
    if stratify_by:
        check_column(view, stratify_by, "--stratify-by")
    if groups:
        missing = view.table.column("dup_group").null_count
        if missing:
            raise ConfigError(
                f"{missing} asset(s) have no near-duplicate group yet: run `smartray curate` "
                "first (or --no-groups for a plain per-asset split)"
            )
    config = {"name": name, "ratios": ratios, "seed": seed, "groups": groups,
              "group_by": group_by, "stratify_by": stratify_by}  # fmt: skip
    before = _stored_config(lk, name)
    if before is not None:
        same = {k: before.get(k) for k in config}
        if same != config:
            raise ConfigError(
                f"split {name!r} exists with other settings ({json.dumps(same)}); "
                "use a new --name, or the same settings to add new assets to it"
            )
    session = lk.session("split", config)
    ids: list[str] = view.table.column("asset_id").to_pylist()
    keys = group_keys(view, groups=groups, group_by=group_by)
    assigned = read_split(lk, name)
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(keys):
        members[g].append(i)
    sizes = {g: len(rows) for g, rows in members.items()}
    strata = None
    if stratify_by:
        values = view.table.column(stratify_by).to_pylist()
        strata = {g: majority([None if values[i] is None else str(values[i]) for i in rows])
                  for g, rows in members.items()}  # fmt: skip
    existing = {
        g: majority([assigned.get(ids[i]) for i in rows])
        for g, rows in members.items()
        if any(ids[i] in assigned for i in rows)
    }
    new_groups = assign_groups(sizes, ratios, seed, strata=strata, existing=existing)
    final = {**existing, **new_groups}
    changed = [i for i, g in enumerate(keys) if assigned.get(ids[i]) != final[g]]
    moved = sum(1 for i in changed if ids[i] in assigned)
    if moved:
        log.warning("split %s: %d asset(s) moved to keep their group whole", name, moved)
    assets: Counter[str] = Counter(final[g] for g in keys)
    if not allow_skew:
        check_ratios(name, ratios, assets, sizes, tolerance)
    now = dt.datetime.now(dt.UTC)
    rows = pa.table(
        {
            "split_name": [name] * len(changed),
            "asset_id": [ids[i] for i in changed],
            "split": [final[keys[i]] for i in changed],
            "group_key": [keys[i] if groups else "" for i in changed],
            "run_id": [session.run_id] * len(changed),
            "assigned_at": [now] * len(changed),
        }
    )
    session.run.input_versions.update(view.versions)
    session.commit(SPLITS, rows, mode="upsert")
    group_counts: Counter[str] = Counter(final.values())
    session.counts.update({"assets": len(ids), "groups": len(members),
                           "new": len(changed) - moved, "moved": moved})  # fmt: skip
    session.record()
    return SplitSummary(
        session.run_id,
        name,
        {s: assets[s] for s in ratios},
        {s: group_counts[s] for s in ratios},
        dict(session.counts),
        dict(session.run.output_versions),
    )


@dataclass
class LeakReport:
    """Groups whose assets sit in more than one split."""

    split: str
    assigned: int
    unmatched: int
    groups: int
    leaks: list[tuple[str, dict[str, int]]]

    def lines(self, limit: int = 20) -> list[str]:
        """A summary line, then up to `limit` leaking groups with their split counts."""
        n_assets = sum(sum(c.values()) for _, c in self.leaks)
        out = [
            f"check-leaks {self.split}: {len(self.leaks)} group(s) straddle splits "
            f"({n_assets} assets) among {self.groups} groups of {self.assigned} assigned "
            f"assets" + (f"; {self.unmatched} row(s) matched no asset" if self.unmatched else "")
        ]
        for g, counts in self.leaks[:limit]:
            parts = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
            out.append(f"  group {g}: {parts}")
        if len(self.leaks) > limit:
            out.append(f"  ... and {len(self.leaks) - limit} more")
        return out


def check_leaks(
    *,
    lake: str | None = None,
    split_name: str | None = None,
    split_file: str | None = None,
    group_by: str | None = None,
) -> LeakReport:
    """Finds the groups (near-duplicates, videos, `group_by`) that straddle splits.

    The split is a stored one (`split_name`) or a file from elsewhere (`split_file`:
    CSV, Parquet or JSON lines with a `split` column and `asset_id` or `source_uri`).

    Raises:
        ConfigError: an unknown split, an unreadable file, or an unknown column.
    """
    lk = Lake(lake)
    view = asset_view(lk)
    if group_by:
        check_column(view, group_by, "--group-by")
    unmatched = 0
    if split_file:
        assigned, unmatched = read_split_file(lk, split_file)
        label = split_file
    else:
        if not split_name:
            raise ConfigError("give --split NAME (a stored split) or --split-file PATH")
        assigned = read_split(lk, split_name)
        if not assigned:
            raise ConfigError(
                f"unknown split {split_name!r}; stored splits: {split_names(lk) or 'none'}"
            )
        label = repr(split_name)
    missing = view.table.column("dup_group").null_count
    if missing:
        log.warning("%d asset(s) have no near-duplicate group: run `smartray curate`", missing)
    ids: list[str] = view.table.column("asset_id").to_pylist()
    keys = group_keys(view, group_by=group_by)
    per_group: dict[str, Counter[str]] = defaultdict(Counter)
    for aid, g in zip(ids, keys, strict=True):
        if aid in assigned:
            per_group[g][assigned[aid]] += 1
    leaks = sorted(
        ((g, dict(c)) for g, c in per_group.items() if len(c) > 1),
        key=lambda item: (-sum(item[1].values()), item[0]),
    )
    known = set(ids)
    unmatched += sum(1 for a in assigned if a not in known)
    return LeakReport(label, sum(1 for a in ids if a in assigned), unmatched, len(per_group), leaks)


def read_split_file(lake: Lake, path: str) -> tuple[dict[str, str], int]:
    """asset_id -> split from a file, and how many of its rows matched no asset."""
    try:
        if path.endswith(".parquet"):
            table = pads.dataset(path, format="parquet").to_table()
        elif path.endswith((".json", ".jsonl", ".ndjson")):
            import pyarrow.json as pajson

            table = pajson.read_json(path)
        else:
            import pyarrow.csv as pacsv

            table = pacsv.read_csv(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise ConfigError(f"--split-file {path!r}: cannot read it ({e})") from None
    cols = table.column_names
    if "split" not in cols or not ({"asset_id", "source_uri"} & set(cols)):
        raise ConfigError(
            f"--split-file {path!r}: needs a 'split' column and 'asset_id' or 'source_uri'; "
            f"it has {cols}"
        )
    splits = [str(s) for s in pc.cast(table.column("split"), pa.string()).to_pylist()]
    if "asset_id" in cols:
        return dict(zip(table.column("asset_id").to_pylist(), splits, strict=True)), 0
    by_uri = _assets_by_source(lake)
    out, unmatched = {}, 0
    for uri, s in zip(table.column("source_uri").to_pylist(), splits, strict=True):
        if uri in by_uri:
            out[by_uri[uri]] = s
        else:
            unmatched += 1
    return out, unmatched


def _assets_by_source(lake: Lake) -> dict[str, str]:
    rows = lake.table("asset_sources", columns=["asset_id", "source_uri"])
    return dict(zip(rows.column("source_uri").to_pylist(), rows.column("asset_id").to_pylist(),
                    strict=False))  # fmt: skip
