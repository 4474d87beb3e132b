"""Frame sampling and decoding of generated videos (PyAV, in this process, no Ray)."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from smartray.testing.files import random_bytes
from smartray.testing.videos import (
    scene_frames,
    write_audio_only,
    write_vfr_video,
    write_video,
)
from smartray.types import Reason, RejectedInput
from smartray.video.decode import sample_video
from smartray.video.sampling import FrameSampler, SamplingConfig

BIG = 10**8


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """10 s at 10 fps, a scene cut every 2.5 s (frames 25, 50, 75), a keyframe every 2 s."""
    path = tmp_path_factory.mktemp("video") / "scenes.mp4"
    return str(write_video(path, scene_frames(10, 10, 2.5), fps=10, gop=20))


def kept(clip, **flags):
    result = sample_video(clip, SamplingConfig(**flags), BIG)
    return result, [f.frame_index for f in result.frames]


def test_default_is_keyframes_plus_scenes_at_most_one_per_second():
    cfg = SamplingConfig()
    assert (cfg.keyframes, cfg.scenes, cfg.fps, cfg.min_gap_s, cfg.max_frames) == (
        True, True, None, 1.0, 300
    )  # fmt: skip


def test_video_facts(clip):
    info = sample_video(clip, SamplingConfig(fps=1), BIG).info
    assert (info.codec, info.width, info.height, info.fps, info.frame_count) == (
        "h264", 128, 96, 10.0, 100
    )  # fmt: skip
    assert info.duration_s == pytest.approx(10.0, abs=0.1)


def test_rate_mode_keeps_one_frame_per_second(clip):
    result, frames = kept(clip, fps=1, dedupe_distance=0)
    assert frames == list(range(0, 100, 10))
    assert [f.timestamp_ms for f in result.frames] == list(range(0, 10000, 1000))
    assert result.frames[0].image.shape == (96, 128, 3)
    # with near-duplicate removal on (the default), a slowly drifting scene keeps fewer
    assert len(kept(clip, fps=1)[1]) < 10


def test_scene_mode_finds_the_cuts(clip):
    assert kept(clip, scenes=True)[1] == [0, 25, 50, 75]


def test_keyframe_mode_decodes_only_intra_frames(clip):
    result, frames = kept(clip, keyframes=True)
    assert result.decoded < 15  # of 100 frames
    assert frames[0] == 0
    assert all(f.reasons == ("keyframe",) for f in result.frames)
    assert frames == sorted(set(frames))


def test_default_mode_combines_keyframes_and_scenes_with_a_gap(clip):
    result, frames = kept(clip)
    assert {r for f in result.frames for r in f.reasons} >= {"keyframe", "scene"}
    assert all(b - a >= 10 for a, b in itertools.pairwise(frames))  # >= 1 s


def test_cap_per_video(clip):
    assert len(kept(clip, fps=5, max_frames=7, dedupe_distance=0)[1]) == 7


def test_near_identical_frames_are_dropped(tmp_path):
    still = [np.full((48, 64, 3), 120, np.uint8)] * 30  # 3 s of one image
    path = write_video(tmp_path / "still.mp4", still, fps=10)
    assert kept(str(path), fps=2)[1] == [0]


def test_sampler_alone_drops_too_soon_and_duplicates():
    sampler = FrameSampler(SamplingConfig(scenes=True, min_gap_s=1.0))
    a, b = np.zeros((36, 64, 3), np.uint8), np.full((36, 64, 3), 255, np.uint8)
    assert sampler.offer(0.0, a, True, 0).keep
    assert sampler.offer(0.5, b, False, -1).dropped == "too soon"
    assert sampler.offer(1.5, b, False, 0).dropped == "near-duplicate"
    assert sampler.offer(2.0, b, False, -1).reasons == ("scene",)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), Reason.EMPTY),
        (lambda p: p.write_bytes(random_bytes()), Reason.CORRUPT),
    ],
)
def test_bad_files_are_rejected_with_a_reason(tmp_path, make, reason):
    path = tmp_path / "bad.mp4"
    make(path)
    with pytest.raises(RejectedInput) as e:
        sample_video(str(path), SamplingConfig(), BIG)
    assert e.value.reason == reason


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = write_audio_only(tmp_path / "tone.mp4")
    with pytest.raises(RejectedInput, match="no video stream") as e:
        sample_video(str(path), SamplingConfig(), BIG)
    assert e.value.reason == Reason.UNSUPPORTED_FORMAT


def test_variable_frame_rate_keeps_true_times_and_distinct_indices(tmp_path):
    times = [0, 0.1, 0.15, 0.2, 1.5, 1.52, 3.0, 3.1, 5.0]
    path = str(write_vfr_video(tmp_path / "vfr.mp4", times))
    every = SamplingConfig(fps=1000, min_gap_s=0, dedupe_distance=0)  # every frame
    result = sample_video(path, every, BIG)
    assert [f.timestamp_ms for f in result.frames] == [round(t * 1000) for t in times]
    assert [f.frame_index for f in result.frames] == list(range(len(times)))
    per_second = sample_video(path, SamplingConfig(fps=1, dedupe_distance=0), BIG)
    assert [(f.frame_index, f.timestamp_ms) for f in per_second.frames] == [
        (0, 0), (4, 1500), (6, 3000), (8, 5000)
    ]  # fmt: skip


def test_a_frame_has_the_same_index_in_every_mode(clip):
    by_key = {f.timestamp_ms: f.frame_index for f in kept(clip, keyframes=True)[0].frames}
    by_all = {
        f.timestamp_ms: f.frame_index for f in kept(clip, fps=10, dedupe_distance=0)[0].frames
    }
    assert by_key
    assert all(by_all[t] == i for t, i in by_key.items())


def test_truncated_mp4s_are_truncated(tmp_path, clip):
    data = Path(clip).read_bytes()  # the index (moov) comes last: cut, it is missing
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    faststart = write_video(tmp_path / "fs.mp4", scene_frames(10, 10, 2.5), fps=10,
                            container_options={"movflags": "faststart"})  # fmt: skip
    (tmp_path / "cut-fs.mp4").write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])
    for name, words in (("cut.mp4", "'mdat' box needs"), ("cut-fs.mp4", "breaks off after")):
        with pytest.raises(RejectedInput, match=words) as e:
            sample_video(str(tmp_path / name), SamplingConfig(), BIG)
        assert e.value.reason == Reason.TRUNCATED


def test_pixel_cap_refuses_large_frames_before_decoding(clip):
    with pytest.raises(RejectedInput, match="128x96 frames exceed 10000 pixels") as e:
        sample_video(clip, SamplingConfig(), 10_000)
    assert e.value.reason == Reason.TOO_MANY_PIXELS
