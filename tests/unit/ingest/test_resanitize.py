import pyarrow as pa
import pyarrow.parquet as pq

from smartray.ingest.ops import known_id_index
from smartray.ingest.outcomes import KNOWN, NEW, REJECTED, blur_counts
from smartray.ingest.resanitize import CHANGED, gone, plan, resanitize_block
from smartray.sanitize import SanitizeConfig, sha256_hex
from smartray.sources import LocalReader
from smartray.tables import LakeLocation
from smartray.testing import files


def lake_tables(rows):
    """`assets` (id, media_type) and `asset_sources` (id, uri) from (id, kind, uri) rows."""
    assets = pa.table({"asset_id": [r[0] for r in rows], "media_type": [r[1] for r in rows]})
    sources = [(a, u) for a, k, u in rows if u]
    return assets, pa.table(
        {"asset_id": [a for a, _ in sources], "source_uri": [u for _, u in sources]}
    )


def test_plan_takes_image_sources_under_the_prefixes(tmp_path):
    a, b = str(tmp_path / "in" / "a.jpg"), str(tmp_path / "out" / "b.jpg")
    assets, sources = lake_tables(
        [("ia", "image", a), ("ib", "image", b), ("fr", "frame", None), ("ch", "augmented", None)]
    )
    sources = pa.concat_tables([sources, sources])  # a second version of each source
    entries, targets, skipped = plan(assets, sources, [str(tmp_path / "in")])
    assert [e.uri for e in entries] == [a]
    assert entries[0].root == str((tmp_path / "in").resolve())
    assert targets == {"ia": [a]}
    assert skipped == 2
    assert plan(assets, sources, ["s3://bucket/x"])[1] == {}


def test_batch_resanitizes_known_bytes_only_and_lists_the_rest(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    same = files.jpeg(files.pattern(40, 60))
    other = files.png(files.pattern(8, 8))
    for name, payload in [("a.jpg", same), ("a2.jpg", same), ("other.jpg", other)]:
        (src / name).write_bytes(payload)
    target = sha256_hex(same)
    assets, sources = lake_tables(
        [(target, "image", str(src / n)) for n in ("a.jpg", "a2.jpg")]
        + [("lost", "image", str(src / "gone.jpg")), ("was", "image", str(src / "other.jpg"))]
    )
    entries, targets, _ = plan(assets, sources, [str(src)])
    location = LakeLocation.from_uri(str(tmp_path / "lake"))
    out = resanitize_block(
        entries,
        config=SanitizeConfig(),
        location=location,
        run_id="r1",
        known_ids=known_id_index(pa.array(list(targets))),
        reader=LocalReader(),
    )
    status = {o.uri: o.status for o in out.outcomes}
    assert status == {
        str(src / "a.jpg"): NEW,
        str(src / "a2.jpg"): KNOWN,
        str(src / "gone.jpg"): REJECTED,
        str(src / "other.jpg"): CHANGED,
    }
    rows = pq.read_table(tmp_path / "lake" / "assets" / out.part.path)
    assert rows["asset_id"].to_pylist() == [target]
    assert rows["run_id"].to_pylist() == ["r1"]
    assert rows["blurred_boxes"].to_pylist() == ["[]"]
    lines = gone(targets, [out], {})
    assert len(lines) == 2
    assert lines[0].startswith(f"lost: {src / 'gone.jpg'} (read failed")
    assert lines[1] == f"was: {src / 'other.jpg'} (the source holds other bytes now)"
    assert gone(targets, [out], {str(src / "gone.jpg"): "worker died"})[0].endswith("(worker died)")
    assert blur_counts([out]) == {"blurred_regions": 0, "blurred_assets": 0}
