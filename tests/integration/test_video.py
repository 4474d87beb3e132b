"""Videos and images in one ingest, on the suite's local Ray: good videos become a
`videos` row and frame assets, bad ones a quarantine row with a reason, and re-runs add
nothing (or only the frames other sampling flags choose)."""

import itertools
import shutil

import numpy as np
import pytest

from jobs import ingest as ingest_job
from smartray import Lake
from smartray.ingest import IngestConfig, ingest
from smartray.sanitize import SanitizeConfig
from smartray.testing import files
from smartray.testing.videos import (
    scene_frames,
    write_audio_only,
    write_vfr_video,
    write_video,
)
from smartray.video.config import VideoSettings
from tests.integration.test_s3 import upload

CAP = 4_000_000  # pixels: 4K frames (8.3 M) are over it, every other input under it
BAD_VIDEOS = {
    "truncated.mp4": "truncated",
    "random.mp4": "corrupt",
    "empty.mp4": "empty",
    "audio-only.mp4": "unsupported_format",
    "4k.mp4": "too_many_pixels",
}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    (root / "photo.jpg").write_bytes(files.jpeg(files.pattern(48, 64, seed=1)))
    scenes = write_video(root / "scenes.mp4", scene_frames(8, 10, 2.0), fps=10, gop=20)
    (root / "sub").mkdir()
    shutil.copy(scenes, root / "sub" / "scenes copy.mp4")  # the same video at two paths
    write_vfr_video(root / "vfr.mp4", [0, 0.1, 0.15, 1.5, 1.52, 3.0, 4.5])
    data = scenes.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "random.mp4").write_bytes(np.random.default_rng(1).bytes(20_000))
    (root / "empty.mp4").write_bytes(b"")
    write_audio_only(root / "audio-only.mp4")
    frames = (np.full((2160, 3840, 3), v, np.uint8) for v in (0, 120, 240))
    write_video(root / "4k.mp4", frames, fps=1, options={"preset": "ultrafast"})
    return root


def names(uris):
    return sorted(u.rsplit("/", 1)[1] for u in uris)


def test_mixed_ingest_then_reruns(mixed, tmp_path, capsys):
    lake_dir = str(tmp_path / "lake")
    ingest_job.main([str(mixed), "--lake", lake_dir, "--max-pixels", str(CAP), "--no-blur"])
    line = capsys.readouterr().out
    assert "listed 9, unchanged 0, ingested 3, duplicates 1, quarantined 5" in line
    lake = Lake(lake_dir)
    q = lake.table("quarantine", to="polars")
    reasons = dict(zip(names(q["source_uri"]), q.sort("source_uri")["reason"], strict=True))
    assert {n: reasons[n] for n in BAD_VIDEOS} == BAD_VIDEOS
    videos = lake.table("videos", to="polars")
    assert sorted(videos["codec"]) == ["h264", "h264"]
    assert sorted(videos["width"]) == [128, 128]
    assets = lake.table("assets", columns=["asset_id", "media_type", "video_id",
                                           "frame_index", "timestamp_ms"], to="polars")  # fmt: skip
    frames = assets.filter(assets["media_type"] == "frame")
    assert set(frames["video_id"]) == set(videos["video_id"])
    assert (assets["media_type"] == "image").sum() == 1
    assert f"videos 3 ({len(frames)} new frames)" in line
    # the VFR video: true times, one frame per second at most
    vfr = videos.filter(videos["frame_count"] == 7)["video_id"][0]
    times = sorted(frames.filter(frames["video_id"] == vfr)["timestamp_ms"])
    assert times[0] == 0
    assert set(times) <= {0, 100, 150, 1500, 1520, 3000, 4500}
    assert all(b - a >= 1000 for a, b in itertools.pairwise(times))

    versions = {t.name: t.version for t in lake.describe()}
    ingest_job.main([str(mixed), "--lake", lake_dir, "--max-pixels", str(CAP), "--no-blur"])
    again = capsys.readouterr().out
    assert "ingested 0, duplicates 3, quarantined 5 (0 new rows); videos 3 (0 new frames)" in again
    after_rerun = {t.name: t.version for t in lake.describe()}
    assert {t: after_rerun[t] for t in ("assets", "videos", "asset_sources", "quarantine")} == {
        t: versions[t] for t in ("assets", "videos", "asset_sources", "quarantine")
    }

    ingest_job.main([str(mixed), "--lake", lake_dir, "--max-pixels", str(CAP), "--no-blur",
                     "--fps", "2"])  # fmt: skip
    more = capsys.readouterr().out
    after = lake.table("assets", columns=["asset_id", "media_type"], to="polars")
    added = len(after) - len(assets)
    assert added > 0
    assert f"({added} new frames)" in more
    assert after["asset_id"].n_unique() == len(after)


def test_a_decoder_that_crashes_costs_its_videos_only(mixed, tmp_path):
    lake_dir = str(tmp_path / "lake")
    config = IngestConfig(
        sources=(str(mixed),),
        lake=lake_dir,
        sanitize=SanitizeConfig(blur=False, max_pixels=CAP),
        video=VideoSettings(decoder_module="tests.unit.video.crashing_child"),
    )
    summary = ingest(config)
    assert summary.counts["ingested"] == 1  # the photo
    q = Lake(lake_dir).table("quarantine", to="polars")
    crashed = q.filter(q["reason"] == "decoder_crash")
    # every video with a frame to send crashes its child; the rest fail before any frame
    assert names(crashed["source_uri"]) == ["scenes copy.mp4", "scenes.mp4", "vfr.mp4"]
    assert all("signal SIGSEGV" in d for d in crashed["detail"])


def test_videos_from_s3(s3_server, mixed, tmp_path, capsys):
    client = s3_server.client()
    client.create_bucket(Bucket="videos-raw")
    client.create_bucket(Bucket="videos-lake")
    pick = tmp_path / "pick"
    pick.mkdir()
    for name in ("scenes.mp4", "truncated.mp4", "photo.jpg"):
        shutil.copy(mixed / name, pick / name)
    upload(client, pick, "videos-raw", "in")
    ingest_job.main(["s3://videos-raw/in", "--lake", "s3://videos-lake/lake", "--no-blur"])
    line = capsys.readouterr().out
    assert "listed 3, unchanged 0, ingested 2, duplicates 0, quarantined 1" in line
    lake = Lake("s3://videos-lake/lake")
    assert lake.table("videos").num_rows == 1
    assert lake.table("quarantine", to="polars")["reason"].to_list() == ["truncated"]
