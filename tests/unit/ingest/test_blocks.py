from itertools import pairwise

import pytest

from smartray.ingest import blocks
from smartray.sources.base import SourceEntry


def entries(n, size, prefix="/d/"):
    return [SourceEntry(f"{prefix}{i:06d}", size) for i in range(n)]


def work(block, blur=False):
    return sum(blocks.input_seconds(e, blur=blur) for e in block)


def test_small_images_get_big_blocks_and_photos_small_ones():
    tiny = blocks.by_work(entries(70_000, 800), workers=2, target_s=1.5)
    photos = blocks.by_work(entries(5_000, 200_000), workers=2, target_s=1.5)
    assert 2_000 < len(tiny[0]) < 5_000  # ~1.5 s of 28 px PNGs, not 128 of them
    assert 60 < len(photos[0]) < 150
    assert 15 < len(tiny) < 40
    assert 40 < len(photos) < 80


@pytest.mark.parametrize(("n", "size"), [(70_000, 800), (5_000, 200_000), (997, 30_000)])
def test_blocks_keep_order_cover_everything_and_shrink_toward_the_end(n, size):
    listed = entries(n, size)
    cut = blocks.by_work(listed, workers=2, target_s=1.5)
    assert [e for b in cut for e in b] == listed
    seconds = [work(b) for b in cut]
    assert max(seconds) < 1.5 + 2 * blocks.input_seconds(listed[0], blur=False)
    assert seconds[-1] < seconds[0] / 2  # a short tail
    one = blocks.input_seconds(listed[0], blur=False)
    assert seconds[-1] <= 1.5 * blocks.MIN_BLOCK_S + one  # the last takes what remains
    assert all(a >= b - one for a, b in pairwise(seconds[:-1]))


def test_a_few_inputs_make_one_task_and_one_input_one():
    assert [len(b) for b in blocks.by_work(entries(8, 800), workers=2, target_s=1.5)] == [8]
    assert [len(b) for b in blocks.by_work(entries(1, 10**9), workers=2, target_s=1.5)] == [1]
    assert blocks.by_work([], workers=2, target_s=1.5) == []


def test_blur_and_s3_cost_more_so_blocks_are_smaller():
    plain = blocks.by_work(entries(2_000, 200_000), workers=2, target_s=1.5)
    blurred = blocks.by_work(entries(2_000, 200_000), workers=2, target_s=1.5, blur=True)
    s3 = blocks.by_work(entries(20_000, 800, "s3://b/k"), workers=2, target_s=1.5)
    local = blocks.by_work(entries(20_000, 800), workers=2, target_s=1.5)
    assert len(blurred[0]) < len(plain[0]) / 3
    assert len(s3[0]) < len(local[0]) / 3


def test_a_block_holds_a_bounded_number_of_bytes():
    cut = blocks.by_work(entries(50, 10 * 2**20), workers=1, target_s=600, max_bytes=64 * 2**20)
    assert max(sum(e.size for e in b) for b in cut) <= 64 * 2**20
    assert sum(len(b) for b in cut) == 50


def test_count_overrides():
    listed = entries(10, 800)
    assert [len(b) for b in blocks.by_count(listed, 4)] == [4, 4, 2]
    assert [len(b) for b in blocks.into(listed, 3)] == [3, 4, 3]
    assert [len(b) for b in blocks.into(listed[:2], 5)] == [1, 1]
