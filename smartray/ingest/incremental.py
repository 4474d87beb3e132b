"""Incremental re-runs: inputs already seen unchanged are skipped without being read.

An input is unchanged when its (URI, size, ETag) — or (URI, size, mtime) where there is
no ETag — is already in `asset_sources`, or in `quarantine` with a reason that depends on
the bytes alone (a corrupt file stays corrupt; a file refused for a limit or a failed
read is tried again).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from smartray.sources.base import SourceEntry
from smartray.types import Reason

# Reasons that only depend on the bytes: an unchanged input would get them again.
STABLE_REASONS = (Reason.EMPTY, Reason.TRUNCATED, Reason.CORRUPT, Reason.UNSUPPORTED_FORMAT)
FINGERPRINT_COLUMNS = ["source_uri", "size", "mtime", "etag"]


def fingerprints(uri: pa.Array, size: pa.Array, mtime_us: pa.Array, etag: pa.Array) -> pa.Array:
    """One string per input: URI, size, and ETag if known, else mtime in microseconds."""
    change = pc.if_else(pc.is_null(etag), pc.cast(mtime_us, pa.string()), etag)
    change = pc.fill_null(change, "")
    return pc.binary_join_element_wise(uri, pc.cast(size, pa.string()), change, "\x00")


def _table_fingerprints(table: pa.Table) -> pa.Array:
    mtime = pc.cast(pc.cast(table.column("mtime"), pa.timestamp("us")), pa.int64())
    return fingerprints(
        table.column("source_uri"), table.column("size"), mtime, table.column("etag")
    ).combine_chunks()


def split_unchanged(
    entries: list[SourceEntry], sources: pa.Table, quarantine: pa.Table
) -> tuple[list[SourceEntry], list[SourceEntry]]:
    """Splits listed entries into (to read, unchanged since an earlier run).

    Args:
        entries: Listed inputs.
        sources: `asset_sources` columns `FINGERPRINT_COLUMNS`.
        quarantine: `quarantine` columns `FINGERPRINT_COLUMNS` + `reason`.
    """
    if not entries or (sources.num_rows == 0 and quarantine.num_rows == 0):
        return list(entries), []
    stable = quarantine.filter(
        pc.is_in(quarantine.column("reason"), pa.array([str(r) for r in STABLE_REASONS]))
    )
    seen = pa.concat_arrays([_table_fingerprints(sources), _table_fingerprints(stable)])
    listed = fingerprints(
        pa.array([e.uri for e in entries], pa.string()),
        pa.array([e.size for e in entries], pa.int64()),
        pa.array([None if e.mtime_ns is None else e.mtime_ns // 1000 for e in entries], pa.int64()),
        pa.array([e.etag for e in entries], pa.string()),
    )
    hit = pc.is_in(listed, value_set=seen).to_pylist()
    todo = [e for e, h in zip(entries, hit, strict=True) if not h]
    same = [e for e, h in zip(entries, hit, strict=True) if h]
    return todo, same
