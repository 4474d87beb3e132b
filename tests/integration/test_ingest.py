"""The ingest job end to end on a local Ray: every input accounted for, exactly once."""

import io
import json
import os

import cloudpickle
import numpy as np
import pytest
from PIL import Image

from jobs import ingest as ingest_job
from smartray import Lake
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import FaceDetector, SanitizeConfig
from smartray.sanitize.cv import cv2
from smartray.sources import LocalReader
from tests.integration.conftest import BAD, GOOD

LIGHT = ["asset_id", "source_format", "format", "width", "height", "channels", "blurred_regions"]


def outcomes(lake, root):
    sources = lake.table("asset_sources", to="polars")
    quarantine = lake.table("quarantine", to="polars")
    rel = lambda uri: os.path.relpath(uri, root)  # noqa: E731
    return (
        {rel(u): a for u, a in zip(sources["source_uri"], sources["asset_id"], strict=True)},
        {rel(u): r for u, r in zip(quarantine["source_uri"], quarantine["reason"], strict=True)},
    )


def test_ingest_accounts_for_every_input_and_rerun_adds_nothing(corpus, tmp_path, capsys):
    lake_uri = str(tmp_path / "lake")
    ingest_job.main([str(corpus), "--lake", lake_uri])
    line = capsys.readouterr().out
    assert "listed 16, unchanged 0, ingested 9, duplicates 1, quarantined 6" in line
    lake = Lake(lake_uri)
    sources, quarantine = outcomes(lake, corpus)
    # Every listed input is exactly one of: asset source or quarantine row.
    assert set(sources) == set(GOOD)
    assert quarantine == BAD
    assert not set(sources) & set(quarantine)
    assets = lake.table("assets", columns=LIGHT, to="polars")
    assert assets.height == 9 == len(set(sources.values()))
    assert sources["photo.jpg"] == sources["photo copy.jpg"]  # same bytes: one asset
    by_id = {r["asset_id"]: r for r in assets.to_dicts()}
    assert by_id[sources["cmyk.jpg"]]["channels"] == 3
    assert by_id[sources["deep16.png"]]["channels"] == 1
    assert by_id[sources["rgba.png"]]["channels"] == 4
    assert (by_id[sources["anim.gif"]]["source_format"], by_id[sources["anim.gif"]]["format"]) == (
        "gif",
        "png",
    )
    runs = lake.table("runs", to="polars").to_dicts()
    assert len(runs) == 1
    assert runs[0]["status"] == "succeeded"
    counts = json.loads(runs[0]["counts"])
    assert counts["listed"] == 16
    assert counts["quarantined"] == 6
    versions = {name: lake.version(name) for name in ("assets", "asset_sources", "quarantine")}
    assert json.loads(runs[0]["output_versions"])["assets"] == versions["assets"]

    ingest_job.main([str(corpus), "--lake", lake_uri])
    # Unchanged inputs are skipped unread: the 10 good ones and the 4 whose reason depends
    # on the bytes alone; the pixel bomb and the escaping symlink are refused again.
    rerun = capsys.readouterr().out
    assert "listed 16, unchanged 14, ingested 0, duplicates 0, quarantined 2 (0 new rows)" in rerun
    assert {n: lake.version(n) for n in versions} == versions
    assert lake.table("assets", columns=["asset_id"]).num_rows == 9
    assert lake.table("asset_sources", columns=["asset_id"]).num_rows == 10
    assert lake.table("quarantine", columns=["reason"]).num_rows == 6
    assert lake.table("runs", columns=["run_id"]).num_rows == 2


def test_stored_images_are_sanitized(corpus, tmp_path):
    lake_uri = str(tmp_path / "lake")
    ingest(IngestConfig(sources=(str(corpus),), lake=lake_uri))
    lake = Lake(lake_uri)
    sources, _ = outcomes(lake, corpus)
    assets = {r["asset_id"]: r for r in lake.table("assets").to_pylist()}
    gps = assets[sources["gps.jpg"]]
    stored = Image.open(io.BytesIO(gps["data"]))
    assert len(stored.getexif()) == 0
    assert b"Exif" not in gps["data"]
    assert gps["captured_at"] is not None
    astro = assets[sources["astronaut.jpg"]]
    assert astro["blurred_regions"] >= 1
    gray = cv2.imdecode(np.frombuffer(astro["data"], np.uint8), cv2.IMREAD_GRAYSCALE)
    assert FaceDetector()(gray) == []
    thumb = cv2.imdecode(np.frombuffer(astro["thumbnail"], np.uint8), cv2.IMREAD_COLOR)
    assert max(thumb.shape[:2]) == 128


class FailingReader(LocalReader):
    """A disk that fails with EIO on one file (root can read any file, so inject it)."""

    def __init__(self, fail_name):
        self.fail_name = fail_name

    def read_file(self, path, max_bytes=None):
        if path.endswith(self.fail_name):
            raise OSError(5, "Input/output error", path)
        return super().read_file(path, max_bytes)


def test_a_read_that_fails_is_quarantined_and_the_rest_ingested(corpus, tmp_path):
    import sys

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # ship the class to workers
    lake_uri = str(tmp_path / "lake")
    summary = ingest(
        IngestConfig(sources=(str(corpus),), lake=lake_uri, sanitize=SanitizeConfig(blur=False)),
        reader=FailingReader("gray.jpg"),
    )
    assert summary.counts["quarantined"] == 7
    assert summary.counts["ingested"] == 8
    sources, quarantine = outcomes(Lake(lake_uri), corpus)
    assert quarantine["gray.jpg"] == "unreadable"
    assert "gray.jpg" not in sources
    assert "cmyk.jpg" in sources


def test_max_pixels_flag_is_applied(corpus, tmp_path, capsys):
    lake_uri = str(tmp_path / "lake")
    # photo.jpg is 64x48 = 3072 pixels, the one under sub/ 32x24 = 768.
    argv = [str(corpus / "sub"), str(corpus / "photo.jpg"), "--lake", lake_uri]
    ingest_job.main([*argv, "--max-pixels", "1000"])
    assert "unchanged 0, ingested 1, duplicates 0, quarantined 1" in capsys.readouterr().out
    sources, quarantine = outcomes(Lake(lake_uri), corpus)
    assert quarantine == {"photo.jpg": "too_many_pixels"}
    assert list(sources) == ["sub/naïve façade 写真.jpg"]


@pytest.mark.parametrize("blocks", [1, 5])
def test_duplicates_across_blocks_are_one_asset(tmp_path, blocks):
    from smartray.testing import files

    src = tmp_path / "src"
    src.mkdir()
    data = files.png(files.pattern(16, 16, seed=9))
    for i in range(6):
        (src / f"copy{i}.png").write_bytes(data)
    lake_uri = str(tmp_path / "lake")
    cfg = IngestConfig(sources=(str(src),), lake=lake_uri, num_blocks=blocks)
    summary = ingest(cfg)
    assert (summary.counts["ingested"], summary.counts["duplicates"]) == (1, 5)
    lake = Lake(lake_uri)
    assert lake.table("assets", columns=["asset_id"]).num_rows == 1
    assert lake.table("asset_sources", columns=["asset_id"]).num_rows == 6
    parquet = [p for p in os.listdir(tmp_path / "lake" / "assets") if p.endswith(".parquet")]
    assert len(parquet) == 1  # duplicate parts were removed, not left behind


def test_a_touched_file_is_read_once_more_then_skipped_again(tmp_path):
    from smartray.testing import files

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"p{i}.png").write_bytes(files.png(files.pattern(8, 8, seed=i)))
    lake_uri = str(tmp_path / "lake")
    cfg = IngestConfig(sources=(str(src),), lake=lake_uri, sanitize=SanitizeConfig(blur=False))
    ingest(cfg)
    st = os.stat(src / "p1.png")
    os.utime(src / "p1.png", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched
    second = ingest(cfg)
    assert (second.counts["unchanged"], second.counts["ingested"], second.counts["duplicates"]) == (
        2,
        0,
        1,
    )
    third = ingest(cfg)
    assert third.counts["unchanged"] == 3
    lake = Lake(lake_uri)
    assert lake.table("assets", columns=["asset_id"]).num_rows == 3
    # Both versions of the source are on record.
    uris = lake.table("asset_sources", columns=["source_uri"]).column("source_uri").to_pylist()
    assert sorted(os.path.basename(u) for u in uris) == ["p0.png", "p1.png", "p1.png", "p2.png"]
