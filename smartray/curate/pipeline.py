"""`smartray curate`: near-duplicate groups of the lake's assets, kept up to date.

The driver reads only `asset_id`, the hashes and the link columns of `assets` (pinned to
one version), collapses identical signatures, and spreads the LSH bands over Ray tasks;
each task returns its confirmed pairs. Connected components over those pairs, the frames
of each video, each augmented child and its parent, and the groups already stored give
every asset its group; only rows whose group changed are upserted into `dup_groups`.

Incremental: an asset without a `dup_groups` row is new, and only pairs with a new asset
are searched; old assets keep their stored groups (a new asset can merge two of them).
A run with another threshold or `max_hash_bits`, or `--full`, regroups everything.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import ray

from smartray.cluster.local import ensure_ray
from smartray.curate import lsh
from smartray.curate.config import HASHES, CurateConfig
from smartray.curate.groups import (
    chain_edges,
    component_labels,
    group_names,
    parent_edges,
)
from smartray.errors import ConfigError
from smartray.tables import ASSETS, DUP_GROUPS, Lake, LakeSession, RunSummary, run_configs

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]


class CurateSummary(RunSummary):
    """What a curate run did; `line()` is the job's summary line."""

    def line(self) -> str:
        """Assets, new ones, pairs, groups, rows written, version."""
        c = self.counts
        return (
            f"curate {self.run_id}: assets {c['assets']} ({c['new']} new), "
            f"near pairs {c['pairs']}, groups {c['groups']} ({c['multi_groups']} with 2+ "
            f"assets, largest {c['largest']}), rows written {c['written']}; "
            f"dup_groups v{self.versions.get('dup_groups', 0)}"
        )


@ray.remote(num_cpus=1)
def _pairs_task(sig: npt.NDArray[np.uint64], positions: I64, threshold: int, max_word: int,
                involving: npt.NDArray[np.bool_] | None) -> I64:  # fmt: skip
    return lsh.near_pairs(sig, positions, threshold, max_word=max_word, involving=involving)


def distributed_pairs(
    sig: npt.NDArray[np.uint64],
    *,
    threshold: int,
    bands: int,
    bits: int,
    max_word: int = 64,
    involving: npt.NDArray[np.bool_] | None = None,
    tasks: int = 0,
) -> I64:
    """Near pairs of `sig` ([words, n]), the bands split over Ray tasks.

    Args:
        sig: Signatures, word-major.
        threshold: Largest Hamming distance kept.
        bands: Number of LSH bands.
        bits: Bits per band.
        max_word: Largest distance in any one 64-bit hash.
        involving: Only pairs with at least one marked row.
        tasks: Ray tasks (0: one per CPU of the cluster, at most one per band).
    """
    positions = lsh.band_positions(bands, bits, 64 * sig.shape[0])
    if tasks <= 0:
        tasks = max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
    chunks = [c for c in np.array_split(positions, min(tasks, bands)) if len(c)]
    sig_ref, inv_ref = ray.put(sig), ray.put(involving)
    refs = [_pairs_task.remote(sig_ref, chunk, threshold, max_word, inv_ref) for chunk in chunks]
    return lsh.unique_pairs(ray.get(refs), sig.shape[1])


def curate(
    config: CurateConfig,
    *,
    lake: str | None = None,
    full: bool = False,
    ray_address: str | None = None,
) -> CurateSummary:
    """Groups the lake's assets by near-duplicate, frames by video, children by parent.

    Raises:
        ConfigError: the lake has no assets yet.
    """
    with Lake(lake).session("curate", {**config.model_dump(), "full": full}) as session:
        return _curate(session, config, full=full, ray_address=ray_address)


def _curate(
    session: LakeSession, config: CurateConfig, *, full: bool, ray_address: str | None
) -> CurateSummary:
    if not session.version(ASSETS):
        raise ConfigError(
            f"lake {session.location.root!r} has no assets yet: run `smartray ingest` first"
        )
    cols = ["asset_id", *HASHES, "video_id", "parent_id"]
    assets = session.read(ASSETS, columns=cols).sort_by("asset_id")
    stored = session.read(
        DUP_GROUPS, columns=["asset_id", "dup_group", "threshold"], missing_ok=True
    )
    if not full and stored.num_rows:
        other = set(stored.column("threshold").to_pylist()) - {config.threshold}
        if other:
            log.info("dup_groups were made with threshold %s: regrouping all", sorted(other))
            full = True
        earlier = run_configs(session.location, "curate")
        before = (earlier[-1] if earlier else {}).get("max_hash_bits", config.max_hash_bits)
        if not full and before != config.max_hash_bits:
            log.info("dup_groups were made with max_hash_bits %s: regrouping all", before)
            full = True
    ids: list[str] = assets.column("asset_id").to_pylist()
    stored_map = dict(
        zip(
            stored.column("asset_id").to_pylist(),
            stored.column("dup_group").to_pylist(),
            strict=True,
        )
    )
    known = {} if full else stored_map
    is_new = np.array([a not in known for a in ids], dtype=bool)

    sig = lsh.signatures(*(assets.column(h).to_numpy() for h in HASHES))
    uniq, inverse = np.unique(sig.T, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    uniq_sig = np.ascontiguousarray(uniq.T)
    uniq_new = np.zeros(len(uniq), dtype=bool)
    uniq_new[inverse[is_new]] = True
    pairs_u = np.empty((0, 2), dtype=np.int64)
    search = bool(uniq_new.any()) and len(uniq) > 1
    started = ensure_ray(ray_address) if search else False
    try:
        if search:
            pairs_u = distributed_pairs(
                uniq_sig,
                threshold=config.threshold,
                bands=config.bands,
                bits=config.band_bits,
                max_word=config.max_hash_bits,
                involving=None if full else uniq_new,
                tasks=config.tasks,
            )
    finally:
        if started:
            ray.shutdown()
    # a representative row per unique signature turns signature pairs into row pairs
    rep = np.full(len(uniq), -1, dtype=np.int64)
    rep[inverse[::-1]] = np.arange(len(ids) - 1, -1, -1)
    near = rep[pairs_u] if len(pairs_u) else pairs_u
    labels = component_labels(
        len(ids),
        near,
        chain_edges(inverse),  # identical signatures
        chain_edges(assets.column("video_id").to_pylist()),
        parent_edges(ids, assets.column("parent_id").to_pylist()),
        chain_edges([known.get(a) for a in ids]),  # stored groups stay whole
    )
    names = group_names(ids, labels)
    changed = [i for i, (a, g) in enumerate(zip(ids, names, strict=True)) if stored_map.get(a) != g]
    now = dt.datetime.now(dt.UTC)
    rows = pa.table(
        {
            "asset_id": [ids[i] for i in changed],
            "dup_group": [names[i] for i in changed],
            "threshold": [config.threshold] * len(changed),
            "run_id": [session.run_id] * len(changed),
            "grouped_at": [now] * len(changed),
        }
    )
    result = session.commit(DUP_GROUPS, rows, mode="upsert")
    sizes = np.bincount(labels)
    session.counts.update(
        {
            "assets": len(ids),
            "new": int(is_new.sum()),
            "pairs": len(near),
            "groups": int(np.count_nonzero(sizes)),
            "multi_groups": int(np.count_nonzero(sizes > 1)),
            "largest": int(sizes.max()) if len(sizes) else 0,
            "written": result.rows_written,
        }
    )
    session.record()
    return CurateSummary.of(session.run)
