"""`smartray curate`: near-duplicate groups of the lake's assets, kept up to date.

1. The driver reads only `asset_id`, the hashes and the link columns of `assets` (pinned
   to one version), collapses identical signatures, and spreads the LSH bands over Ray
   tasks; each task returns its candidate pairs (within the hash thresholds).
2. Candidates are confirmed on pixels (`confirm.py`) in Ray tasks, on the descriptors of
   the candidate rows only (read once, sent to the object store once).
3. Groups are stars (`groups.star_groups`): a representative and the assets confirmed near
   it, representatives taken most confirmed neighbours first; the frames of a video and
   an augmented child with its parent move as one unit.
   Only rows whose group changed are upserted into `dup_groups`.

Incremental: an asset without a `dup_groups` row is new, and only candidates with a new
asset are searched; stored groups stay, a new asset joins the stored representative it
is most alike, groups never merge. A run under other rules (`RULES`), other thresholds,
or `--full`, regroups everything.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import ray

from smartray.cluster.local import ensure_ray
from smartray.curate import confirm, lsh
from smartray.curate.config import HASHES, RULES, CurateConfig
from smartray.curate.groups import chain_edges, component_labels, parent_edges, star_groups
from smartray.errors import ConfigError
from smartray.sanitize.cv import pin_threads
from smartray.sanitize.descriptor import DESCRIPTOR_BYTES, from_thumbnail
from smartray.tables import ASSETS, DUP_GROUPS, Lake, LakeSession, RunSummary, run_configs
from smartray.tables.filters import text

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
# Confirmation costs about 0.7 ms a pair: tasks of this many pairs take ~15 s.
PAIRS_PER_TASK = 20_000


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


@ray.remote(num_cpus=1)
def _score_task(images: npt.NDArray[np.uint8], pairs: I64, threshold: float, need: F32) -> F32:
    pin_threads()
    return confirm.score_pairs(confirm.as_images(images), pairs, threshold, need)


class RayScorer:
    """Scores candidate pairs on pixels (`confirm.py`) in Ray tasks.

    The descriptors of every candidate row go to the object store once; each batch is
    cut into tasks of at most `PAIRS_PER_TASK` pairs, at least one per CPU. What a pair
    must reach follows from its hash distance (`confirm.needed`); scores come back on the
    scale of `config.confirm_threshold`.

    Args:
        rows: The candidate rows (sorted, unique), whose descriptors `images` holds.
        images: Their descriptors, [len(rows), 1024] uint8.
        sig: The signatures of all rows ([words, n], `lsh.signatures`).
        config: The confirmation thresholds, and `tasks` per batch at least (0: per CPU).
    """

    def __init__(
        self,
        rows: I64,
        images: npt.NDArray[np.uint8],
        sig: npt.NDArray[np.uint64],
        config: CurateConfig,
    ):
        self.rows = rows
        self.ref = ray.put(np.ascontiguousarray(images))
        self.sig = sig
        self.config = config
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        self.tasks = config.tasks if config.tasks > 0 else max(1, cpus)

    def __call__(self, pairs: I64) -> F32:
        """The score of each pair of rows."""
        if not len(pairs):
            return np.empty(0, dtype=np.float32)
        c = self.config
        need = confirm.needed(
            lsh.hamming(self.sig, pairs), c.confirm_threshold, c.close_bits,
            c.close_confirm_threshold,
        )  # fmt: skip
        local = np.searchsorted(self.rows, pairs)
        n_tasks = max(min(self.tasks, len(pairs)), -(-len(pairs) // PAIRS_PER_TASK))
        chunks = [k for k in np.array_split(np.arange(len(pairs)), n_tasks) if len(k)]
        refs = [
            _score_task.remote(self.ref, local[k], c.confirm_threshold, need[k]) for k in chunks
        ]
        return np.concatenate(ray.get(refs)).astype(np.float32)


def candidate_rows(inverse: I64, pairs_u: I64, new: npt.NDArray[np.bool_] | None) -> I64:
    """Candidate pairs of rows from pairs of distinct signatures and identical ones.

    Rows with the same signature are candidates of the first of them; a pair of
    signatures is a candidate pair of their first rows. With `new`, only pairs with a
    new row are kept (an incremental run).
    """
    n = len(inverse)
    first = np.full(int(inverse.max()) + 1 if n else 0, -1, dtype=np.int64)
    first[inverse[::-1]] = np.arange(n - 1, -1, -1)
    rows = np.arange(n, dtype=np.int64)
    lead = first[inverse]
    same = np.stack([lead[lead != rows], rows[lead != rows]], axis=1)
    out = np.concatenate([same, first[pairs_u] if len(pairs_u) else pairs_u]).astype(np.int64)
    if new is not None and len(out):
        out = out[new[out[:, 0]] | new[out[:, 1]]]
    return out.reshape(-1, 2)


def descriptors(session: LakeSession, assets: pa.Table, rows: I64) -> npt.NDArray[np.uint8]:
    """The descriptors of `rows` of `assets`, [len(rows), 1024] uint8, in that order.

    Assets ingested before `descriptor` existed get one made from their thumbnail; one
    that has neither stays zero (flat: it matches only other flat dark images).
    """
    out = np.zeros((len(rows), DESCRIPTOR_BYTES), dtype=np.uint8)
    if not len(rows):
        return out
    ids = assets.column("asset_id").take(pa.array(rows)).cast(pa.string())
    have = "descriptor" in session.stored_columns(ASSETS)
    cols = ["asset_id", "descriptor", "thumbnail"] if have else ["asset_id", "thumbnail"]
    where = {a: k for k, a in enumerate(ids.to_pylist())}
    dataset = session.dataset(ASSETS)
    for batch in dataset.to_batches(columns=cols, filter=text("asset_id").isin(ids)):
        for row in batch.to_pylist():
            data = row.get("descriptor") or from_thumbnail(row["thumbnail"] or b"")
            if data is not None and len(data) == DESCRIPTOR_BYTES:
                out[where[row["asset_id"]]] = np.frombuffer(data, dtype=np.uint8)
    return out


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
    settings = {**config.model_dump(), "rules": RULES, "full": full}
    with Lake(lake).session("curate", settings) as session:
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
        last = (run_configs(session.location, "curate") or [{}])[-1]
        keys = ("max_hash_bits", "confirm_threshold", "close_bits", "close_confirm_threshold")
        for key, value in {"rules": RULES, **{k: getattr(config, k) for k in keys}}.items():
            if not full and last.get(key) != value:
                log.info("dup_groups were made with %s %s: regrouping all", key, last.get(key))
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
    units = component_labels(
        len(ids),
        chain_edges(assets.column("video_id").to_pylist()),
        parent_edges(ids, assets.column("parent_id").to_pylist()),
    )
    candidates = np.empty((0, 2), dtype=np.int64)
    names, scored, confirmed = [known.get(a) or a for a in ids], 0, 0
    search = bool(is_new.any()) and len(ids) > 1
    started = ensure_ray(ray_address) if search else False
    try:
        if search:
            pairs_u = np.empty((0, 2), dtype=np.int64)
            if len(uniq) > 1:
                pairs_u = distributed_pairs(
                    uniq_sig,
                    threshold=config.threshold,
                    bands=config.bands,
                    bits=config.band_bits,
                    max_word=config.max_hash_bits,
                    involving=None if full else uniq_new,
                    tasks=config.tasks,
                )
            candidates = candidate_rows(inverse, pairs_u, None if full else is_new)
            rows = np.unique(candidates)
            scorer = RayScorer(rows, descriptors(session, assets, rows), sig, config)
            stored_of = [known.get(a) for a in ids]
            names, scored, confirmed = star_groups(
                ids, units, candidates, stored_of, scorer, config.confirm_threshold
            )
    finally:
        if started:
            ray.shutdown()
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
    _, sizes = np.unique(np.array(names, dtype=object), return_counts=True)
    largest = int(sizes.max()) if len(sizes) else 0
    if len(ids) and largest > config.max_group_share * len(ids) and largest > 2:
        log.warning(
            "curate: the largest group holds %d of %d assets (%.1f %%, over --max-group-share "
            "%.1f %%): look at it before splitting by groups",
            largest, len(ids), 100 * largest / len(ids), 100 * config.max_group_share,
        )  # fmt: skip
    session.counts.update(
        {
            "assets": len(ids),
            "new": int(is_new.sum()),
            "candidates": len(candidates),
            "scored": scored,
            "pairs": confirmed,
            "groups": len(sizes),
            "multi_groups": int(np.count_nonzero(sizes > 1)),
            "largest": largest,
            "written": result.rows_written,
        }
    )
    session.record()
    return CurateSummary.of(session.run)
