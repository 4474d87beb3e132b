"""Decoding in a child process: the same frames, and a crash costs only that video."""

import pytest

from smartray.testing.videos import scene_frames, write_video
from smartray.types import Reason, RejectedInput
from smartray.video.decode import sample_video
from smartray.video.isolated import sample_isolated
from smartray.video.sampling import SamplingConfig

BIG = 10**8


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "scenes.mp4"
    return str(write_video(path, scene_frames(6, 10, 2.0), fps=10, gop=20))


def test_child_gives_the_same_frames_and_facts(clip):
    here = sample_video(clip, SamplingConfig(), BIG)
    frames = []
    there = sample_isolated(clip, SamplingConfig(), BIG, frames.append)
    assert there.info == here.info
    assert (there.decoded, there.kept) == (here.decoded, len(here.frames))
    assert [f.frame_index for f in frames] == [f.frame_index for f in here.frames]
    assert all((a.image == b.image).all() for a, b in zip(frames, here.frames, strict=True))
    assert [f.reasons for f in frames] == [f.reasons for f in here.frames]


def test_a_segfaulting_decoder_is_a_decoder_crash(clip):
    frames = []
    with pytest.raises(RejectedInput, match=r"died \(signal SIGSEGV\)") as e:
        sample_isolated(
            clip, SamplingConfig(), BIG, frames.append,
            child_module="tests.unit.video.crashing_child",
        )  # fmt: skip
    assert e.value.reason == Reason.DECODER_CRASH
    assert len(frames) == 1  # what came before the crash: the caller drops it


def test_a_decoder_past_its_time_is_stopped(clip):
    # The child hangs after one frame; a real decode of this clip can beat a short
    # timer on a loaded machine, a hung one cannot.
    frames = []
    with pytest.raises(RejectedInput, match="longer than 2 s") as e:
        sample_isolated(
            clip, SamplingConfig(), BIG, frames.append, timeout_s=2.0,
            child_module="tests.unit.video.stalling_child",
        )  # fmt: skip
    assert e.value.reason == Reason.DECODE_TIMEOUT
    assert len(frames) == 1
    frames.clear()
    sample_isolated(clip, SamplingConfig(), BIG, frames.append)  # the next video decodes
    assert len(frames) > 1


def test_rejections_come_back_with_their_reason(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(RejectedInput) as e:
        sample_isolated(str(empty), SamplingConfig(), BIG, lambda f: None)
    assert e.value.reason == Reason.EMPTY


def test_one_child_serves_video_after_video_and_a_new_one_follows_a_crash(clip, tmp_path):
    from smartray.video import isolated

    sample_isolated(clip, SamplingConfig(), BIG, lambda f: None)
    first = isolated._CHILDREN[isolated.CHILD_MODULE].proc.pid
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(RejectedInput):
        sample_isolated(str(empty), SamplingConfig(), BIG, lambda f: None)
    sample_isolated(clip, SamplingConfig(fps=2), BIG, lambda f: None)
    assert isolated._CHILDREN[isolated.CHILD_MODULE].proc.pid == first  # the same child
    gone = isolated._CHILDREN[isolated.CHILD_MODULE].proc
    gone.kill()  # it dies between two videos
    gone.wait()
    frames = []
    sample_isolated(clip, SamplingConfig(), BIG, frames.append)
    assert frames
    assert isolated._CHILDREN[isolated.CHILD_MODULE].proc.pid != first
