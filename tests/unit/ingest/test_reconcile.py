from smartray.ingest.outcomes import BlockResult, Outcome, VideoOutcome
from smartray.ingest.reconcile import quarantine_id, reconcile
from smartray.sources.base import Listing, SourceEntry
from smartray.tables.parts import PartFile
from smartray.types import Reason


def part(path, rows=1):
    return PartFile(path, 100, rows, f'{{"numRecords": {rows}}}')


def outcome(uri, status, asset_id=None, reason=None):
    return Outcome(uri, status, asset_id, reason, reason and "why")


def test_every_listed_input_ends_as_exactly_one_outcome():
    listing = Listing(entries=[SourceEntry(f"/r/{n}", 10, 1, root="/r") for n in "abcde"])
    listing.reject("/r/link", Reason.OUTSIDE_ROOT, "leaves the root")
    results = [
        BlockResult(
            part("p1", rows=2),
            [
                outcome("/r/a", "new", "id-a"),
                outcome("/r/b", "known", "id-a"),
                outcome("/r/c", "rejected", "id-c", reason="corrupt"),
                outcome("/r/d", "new", "id-d"),
            ],
        ),
        BlockResult(part("p2"), [outcome("/r/d", "new", "id-d")]),  # reported again: once
    ]
    rec = reconcile(listing, results, run_id="run")
    assert [p.path for p in rec.parts] == ["p1"]
    assert sorted(rec.sources.column("source_uri").to_pylist()) == ["/r/a", "/r/b", "/r/d"]
    q = {r["source_uri"]: r["reason"] for r in rec.quarantine.to_pylist()}
    assert q == {"/r/link": "outside_root", "/r/c": "corrupt", "/r/e": "worker_crash"}
    assert rec.counts == {
        "listed": 6,
        "unchanged": 0,
        "candidates": 2,
        "known": 1,
        "videos": 0,
        "videos_new": 0,
        "quarantined": 3,
        "worker_crash": 1,
    }


def test_videos_give_frame_parts_and_video_rows_once():
    listing = Listing(entries=[SourceEntry(f"/r/{n}.mp4", 10, 1, root="/r") for n in "abc"])
    v1 = {
        "video_id": "v1", "source_uri": "/r/a.mp4", "container": "mov,mp4", "codec": "h264",
        "width": 64, "height": 48,
        "fps": 10.0, "duration_s": 2.0, "frame_count": 20, "source_bytes": 10, "run_id": "run",
    }  # fmt: skip
    results = [
        # the same new video at two paths (both report it), and one seen before
        BlockResult(part("f1", 3), [VideoOutcome("/r/a.mp4", "new", "v1", frames=3, video_row=v1)]),
        BlockResult(part("f2", 3), [VideoOutcome("/r/b.mp4", "new", "v1", frames=3, video_row=v1)]),
        BlockResult(None, [VideoOutcome("/r/c.mp4", "known", "v0", frames=0)]),
    ]
    rec = reconcile(listing, [], results, run_id="run")
    assert rec.parts == []
    assert [p.path for p in rec.frame_parts] == ["f1", "f2"]
    assert rec.videos.column("video_id").to_pylist() == ["v1"]
    assert rec.sources.column("asset_id").to_pylist() == ["v1", "v1", "v0"]
    assert (rec.counts["videos"], rec.counts["videos_new"], rec.counts["candidates"]) == (3, 1, 0)


def test_quarantine_id_is_stable_and_content_sensitive():
    assert quarantine_id("/a", "corrupt", "x") == quarantine_id("/a", "corrupt", "x")
    assert quarantine_id("/a", "corrupt", "x") != quarantine_id("/a", "corrupt", "y")
