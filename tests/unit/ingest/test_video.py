"""Ingest of one batch of videos, Ray-free: frames, known frames, and what is kept."""

import json

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartray.ingest.ops import known_id_index
from smartray.ingest.outcomes import KNOWN, NEW, REJECTED
from smartray.ingest.video import frame_asset_id, ingest_video_block, is_video
from smartray.sanitize import SanitizeConfig, sha256_hex
from smartray.sources import LocalReader, list_local
from smartray.tables import LakeLocation
from smartray.testing.videos import scene_frames
from smartray.video.config import VideoSettings
from smartray.video.sampling import SamplingConfig

CFG = SanitizeConfig(blur=False)
NONE = known_id_index(pa.array([], pa.string()))
GPS = "+59.3293+018.0686/"


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    clip = root / "scenes.mp4"
    with av.open(str(clip), "w") as out:  # with a location atom and a title
        out.metadata["location"] = GPS
        out.metadata["title"] = "holiday at home"
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for image in scene_frames(6, 10, 2.0):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    (root / "random.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    return root


DEFAULT = SamplingConfig()


def part(tmp_path, out):
    """The Parquet part a block wrote (a path inside the table's folder)."""
    return tmp_path / "lake" / "assets" / out.part.path


def run(folder, lake, known=NONE, videos=NONE, sampling=DEFAULT, name=None):
    """The block's result, or with `name` that video's outcome and the block's result."""
    listing = list_local([str(folder)])
    out = ingest_video_block(
        listing.entries, config=CFG, video=VideoSettings(sampling=sampling), location=lake,
        run_id="run-1", known_ids=known, known_videos=videos, reader=LocalReader(),
    )  # fmt: skip
    by_name = {o.uri.rsplit("/", 1)[1]: o for o in out.outcomes}
    return (by_name[name], out) if name else (by_name, out)


def test_frames_become_assets_and_the_video_a_videos_row(folder, tmp_path):
    lake = LakeLocation.from_uri(str(tmp_path / "lake"))
    rows, out = run(folder, lake)
    good, bad = rows["scenes.mp4"], rows["random.mp4"]
    assert (bad.status, bad.reason) == (REJECTED, "corrupt")
    video_id = sha256_hex((folder / "scenes.mp4").read_bytes())
    assert (good.status, good.asset_id) == (NEW, video_id)
    frames = pq.read_table(part(tmp_path, out)).to_pylist()
    assert good.frames == len(frames) == out.part.num_records >= 3
    for f in frames:
        assert f["asset_id"] == frame_asset_id(video_id, f["frame_index"])
        assert (f["media_type"], f["video_id"], f["format"]) == ("frame", video_id, "jpeg")
        assert (f["width"], f["height"], f["source_format"]) == (128, 96, "h264")
        assert f["timestamp_ms"] == f["frame_index"] * 100
        assert f["thumbnail"]
        assert f["data"][:2] == b"\xff\xd8"
    video = good.video_row
    assert video["source_uri"] == str(folder / "scenes.mp4")
    assert {k: video[k] for k in ("video_id", "codec", "width", "height", "frame_count")} == {
        "video_id": video_id, "codec": "h264", "width": 128, "height": 96, "frame_count": 60
    }  # fmt: skip


def test_container_metadata_never_reaches_the_lake(folder, tmp_path):
    source = (folder / "scenes.mp4").read_bytes()
    at = source.index(b"loci")  # the MP4 location atom the muxer wrote from GPS
    location = source[at : at + 31]
    assert b"holiday at home" in source
    lake = LakeLocation.from_uri(str(tmp_path / "lake"))
    good, out = run(folder, lake, name="scenes.mp4")
    written = part(tmp_path, out).read_bytes() + json.dumps(good.video_row).encode()
    for secret in (location, b"holiday at home", b"earth"):
        assert secret not in written


def test_a_known_video_adds_only_frames_not_yet_there(folder, tmp_path):
    lake = LakeLocation.from_uri(str(tmp_path / "lake"))
    first, out = run(folder, lake, name="scenes.mp4")
    ids = pa.array([r["asset_id"] for r in pq.read_table(part(tmp_path, out)).to_pylist()])
    videos = known_id_index(pa.array([first.asset_id]))
    again, _ = run(folder, lake, known_id_index(ids), videos, name="scenes.mp4")
    assert (again.status, again.frames, again.video_row) == (KNOWN, 0, None)
    more, out = run(folder, lake, known_id_index(ids), videos, SamplingConfig(fps=5), "scenes.mp4")
    new_ids = {r["asset_id"] for r in pq.read_table(part(tmp_path, out)).to_pylist()}
    assert more.status == NEW
    assert new_ids
    assert not new_ids & set(ids.to_pylist())


@pytest.mark.parametrize(
    ("name", "video"),
    [("a.MP4", True), ("b.mov", True), ("c.avi", True), ("d.mkv", True), ("e.jpg", False),
     ("f.mp4.txt", False)],
)  # fmt: skip
def test_videos_are_taken_by_extension(name, video):
    assert is_video(f"/x/{name}") is video
