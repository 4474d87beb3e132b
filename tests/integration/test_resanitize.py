"""`smartray ingest --resanitize`: better settings reach assets already in the lake."""

import json
import shutil

import numpy as np
from skimage import data

from jobs import ingest as ingest_job
from smartray import Lake
from smartray.sanitize.cv import cv2
from smartray.testing import files
from tests.unit.sanitize.real_photos import mate, opencv_doc

OLD_FACE = "smartray.sanitize.detect:SingleCascadeFaceDetector"


def test_resanitize_replaces_rows_in_one_run_and_keeps_old_versions(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "Blinds.jpg").write_bytes(mate("nature/Blinds.jpg"))
    (photos / "left01.jpg").write_bytes(opencv_doc("left01.jpg"))
    astronaut = files.jpeg(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    (photos / "astronaut.jpg").write_bytes(astronaut)
    (photos / "astronaut copy.jpg").write_bytes(astronaut)  # one asset, two sources
    lake_uri = str(tmp_path / "lake")

    # 1. Ingested with the old single-cascade face detector: the leaf and the board blurred.
    ingest_job.main([str(photos), "--lake", lake_uri, "--detectors", OLD_FACE])
    first = capsys.readouterr().out
    assert "listed 4, unchanged 0, ingested 3, duplicates 1, quarantined 0" in first
    lake = Lake(lake_uri)
    old = {r["asset_id"]: r for r in lake.table("assets").to_pylist()}
    ids = {
        s["source_uri"].rsplit("/", 1)[1]: s["asset_id"]
        for s in lake.table("asset_sources").to_pylist()
    }
    blinds, left01, astro = ids["Blinds.jpg"], ids["left01.jpg"], ids["astronaut.jpg"]
    assert old[blinds]["blurred_regions"] >= 5
    assert old[left01]["blurred_regions"] >= 1
    assert {b["detector"] for b in json.loads(old[blinds]["blurred_boxes"])} == {OLD_FACE}
    regions = sum(r["blurred_regions"] for r in old.values())
    assert f"blurred {regions} regions in 3 assets" in first
    old_version = json.loads(lake.table("runs", to="polars")["output_versions"][0])["assets"]

    # 2. The board's source is gone; re-sanitize with today's default.
    (photos / "left01.jpg").unlink()
    ingest_job.main([str(photos), "--lake", lake_uri, "--resanitize"])
    out = capsys.readouterr().out
    assert "assets 3, resanitized 2, gone 1, frames and augmented skipped 0" in out
    assert "blurred 1 regions in 1 assets" in out
    assert f"gone: {left01}: {photos / 'left01.jpg'} (read failed" in out

    new = {r["asset_id"]: r for r in lake.table("assets").to_pylist()}
    assert set(new) == set(old)  # same asset ids, no row added
    assert (new[blinds]["blurred_regions"], new[blinds]["blurred_boxes"]) == (0, "[]")
    assert new[blinds]["data"] != old[blinds]["data"]
    assert new[blinds]["phash"] == old[blinds]["phash"]  # metrics are of the unblurred photo
    assert new[left01] == old[left01]  # gone: kept as it was
    (face,) = json.loads(new[astro]["blurred_boxes"])
    assert face["detector"] == "face"
    stored = cv2.imdecode(np.frombuffer(new[blinds]["data"], np.uint8), cv2.IMREAD_GRAYSCALE)
    source = cv2.imdecode(np.frombuffer(mate("nature/Blinds.jpg"), np.uint8), 0)
    assert np.abs(stored.astype(int) - source).mean() < 2  # only re-encoding, no blur

    # 3. One recorded run; the pinned old version still reads the old rows.
    runs = lake.table("runs", to="polars").sort("started_at")
    assert runs.height == 2
    counts = json.loads(runs["counts"][1])
    assert (counts["resanitized"], counts["gone"]) == (2, 1)
    before = {r["asset_id"]: r for r in lake.table("assets", version=old_version).to_pylist()}
    assert before[blinds]["data"] == old[blinds]["data"]
    assert before[blinds]["blurred_regions"] == old[blinds]["blurred_regions"]

    # 4. Nothing left behind: the staged parts were deleted after the upsert.
    leftovers = list((tmp_path / "lake" / "assets").glob("part-*-resanitize-*.parquet"))
    assert leftovers == []
    shutil.rmtree(photos)
