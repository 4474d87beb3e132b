import datetime as dt

import pyarrow as pa

from smartray.ingest.incremental import split_unchanged
from smartray.sources.base import SourceEntry

UTC = dt.UTC
T0 = 1_700_000_000_123_456_789  # ns


def seen(rows, reason=None):
    cols = {
        "source_uri": pa.array([r[0] for r in rows], pa.string()),
        "size": pa.array([r[1] for r in rows], pa.int64()),
        "mtime": pa.array(
            [
                dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=r[2] // 1000)
                for r in rows
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        "etag": pa.array([r[3] for r in rows], pa.string()),
    }
    if reason is not None:
        cols["reason"] = pa.array([reason] * len(rows), pa.string())
    return pa.table(cols)


def test_unchanged_local_files_are_skipped_changed_ones_read():
    entries = [
        SourceEntry("/a.jpg", 10, T0),
        SourceEntry("/b.jpg", 11, T0),  # size changed
        SourceEntry("/c.jpg", 12, T0 + 5_000),  # touched: mtime changed by 5 us
        SourceEntry("/d.jpg", 13, T0),  # new
    ]
    sources = seen([("/a.jpg", 10, T0, None), ("/b.jpg", 99, T0, None), ("/c.jpg", 12, T0, None)])
    todo, same = split_unchanged(entries, sources, seen([], reason="x"))
    assert [e.uri for e in same] == ["/a.jpg"]
    assert [e.uri for e in todo] == ["/b.jpg", "/c.jpg", "/d.jpg"]


def test_objects_compare_by_etag_not_mtime():
    entries = [
        SourceEntry("s3://b/k1", 10, T0 + 10**9, "e1"),
        SourceEntry("s3://b/k2", 10, T0, "new"),
    ]
    sources = seen([("s3://b/k1", 10, T0, "e1"), ("s3://b/k2", 10, T0, "old")])
    todo, same = split_unchanged(entries, sources, seen([], reason="x"))
    assert [e.uri for e in same] == ["s3://b/k1"]
    assert [e.uri for e in todo] == ["s3://b/k2"]


def test_only_byte_determined_quarantine_reasons_are_skipped():
    entries = [SourceEntry("/bad.jpg", 5, T0), SourceEntry("/huge.png", 6, T0)]
    quarantine = pa.concat_tables(
        [
            seen([("/bad.jpg", 5, T0, None)], "corrupt"),
            seen([("/huge.png", 6, T0, None)], "too_many_pixels"),
        ]
    )
    todo, same = split_unchanged(entries, seen([]), quarantine)
    assert [e.uri for e in same] == ["/bad.jpg"]
    assert [e.uri for e in todo] == ["/huge.png"]


def test_first_run_reads_everything():
    entries = [SourceEntry("/a.jpg", 1, T0)]
    todo, same = split_unchanged(entries, seen([]), seen([], reason="x"))
    assert (todo, same) == (entries, [])
