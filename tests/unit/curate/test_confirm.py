"""Pixel confirmation and star groups: what keeps low-texture corpora from chaining."""

import numpy as np
import pytest

from smartray.curate import confirm
from smartray.curate.config import CLOSE_CONFIRM_THRESHOLD, CONFIRM_THRESHOLD
from smartray.curate.groups import star_groups
from smartray.sanitize.cv import cv2
from smartray.sanitize.descriptor import descriptor
from smartray.testing.nearcopies import KINDS, near_copy


def _photo_crops(n: int, side: int = 96) -> list[np.ndarray]:
    from skimage import data

    out = []
    for photo in (data.camera(), data.coins(), data.moon()):
        for y in range(0, photo.shape[0] - side, side):
            for x in range(0, photo.shape[1] - side, side):
                crop = photo[y : y + side, x : x + side]
                if crop.std() > 20:
                    out.append(np.ascontiguousarray(crop))
    return out[:n]


def _image(gray: np.ndarray) -> np.ndarray:
    return confirm.as_images(np.frombuffer(descriptor(gray), np.uint8))[0]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_near_copy_is_confirmed(kind):
    rng = np.random.default_rng(0)
    crops = _photo_crops(12)
    scores = [confirm.pair_score(_image(c), _image(near_copy(c, kind, rng))) for c in crops]
    assert np.mean(np.array(scores) >= CONFIRM_THRESHOLD) >= 0.9, scores


def test_different_photos_are_not_confirmed():
    crops = _photo_crops(12)
    images = [_image(c) for c in crops]
    pairs = np.array([(i, j) for i in range(len(images)) for j in range(i + 1, len(images))])
    kept, _ = confirm.confirm(np.stack(images), pairs, CONFIRM_THRESHOLD)
    assert len(kept) == 0


def test_pairs_close_in_the_hashes_need_less_pixel_evidence():
    # a cropped copy of small faces (lfw_subset at 25 px): some reach only the close
    # threshold, and those are kept when their hashes are within close_bits, refused otherwise
    from skimage.data import lfw_subset

    rng = np.random.default_rng(3)
    crops = [cv2.resize(f, (25, 25)) for f in (lfw_subset()[:12] * 255).astype(np.uint8)]
    images = [_image(c) for c in crops] + [_image(near_copy(c, "crop", rng)) for c in crops]
    pairs = np.array([(k, k + len(crops)) for k in range(len(crops))])
    raw = np.array([confirm.pair_score(images[i], images[j]) for i, j in pairs])
    assert ((raw >= CLOSE_CONFIRM_THRESHOLD) & (raw < CONFIRM_THRESHOLD)).any(), raw
    need = confirm.needed(np.array([3, 12] * 6), CONFIRM_THRESHOLD, 5, CLOSE_CONFIRM_THRESHOLD)
    assert need.tolist() == pytest.approx([CLOSE_CONFIRM_THRESHOLD, CONFIRM_THRESHOLD] * 6)
    kept, scores = confirm.confirm(np.stack(images), pairs, CONFIRM_THRESHOLD, need)
    expect = [tuple(p) for p, r, n in zip(pairs.tolist(), raw, need, strict=True) if r >= n - 1e-6]
    assert [tuple(p) for p in kept.tolist()] == expect
    assert (scores >= CONFIRM_THRESHOLD).all()


def test_flat_images_match_only_at_the_same_brightness():
    white, white2, black = (np.full((40, 40), v, np.uint8) for v in (250, 247, 10))
    assert confirm.pair_score(_image(white), _image(white2)) == 1.0
    assert confirm.pair_score(_image(white), _image(black)) == 0.0
    textured = _photo_crops(1)[0]
    assert confirm.pair_score(_image(white), _image(textured)) == 0.0


def _groups(pairs, scores=None, stored=None, units=None, n=None):
    """Star groups over candidate `pairs` whose confirmation scores are `scores` (1.0)."""
    n = n or 1 + max(max(p) for p in pairs)
    ids = [f"a{i}" for i in range(n)]
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    table = {
        frozenset(map(int, p)): s
        for p, s in zip(pairs, scores if scores is not None else [1.0] * len(pairs), strict=True)
    }
    asked = []

    def score(batch):
        asked.extend(frozenset(map(int, p)) for p in batch)
        return np.array([table[frozenset(map(int, p))] for p in batch], np.float32)

    units = np.arange(n) if units is None else np.array(units)
    names, scored, _ = star_groups(ids, units, pairs, stored or [None] * n, score, 0.9)
    assert scored == len(asked) == len(set(asked))  # no pair is scored twice
    return names


def test_a_chain_does_not_make_one_group():
    # a0~a1~a2~a3~a4: components would make one group; stars keep a0 and a4 apart
    names = _groups([(0, 1), (1, 2), (2, 3), (3, 4)])
    assert names[0] != names[4]
    for i, g in enumerate(names):  # every member is near its group's representative
        rep = int(g[1:])
        assert i == rep or abs(i - rep) == 1


def test_the_unit_near_most_others_leads_the_star():
    names = _groups([(0, 3), (1, 3), (2, 3), (4, 5)])
    assert names[:4] == ["a3"] * 4
    assert names[4] == names[5] == "a4"


def test_a_new_asset_near_two_stored_groups_joins_the_more_alike():
    stored = ["a0", "a0", "a2", "a2", None]
    names = _groups([(4, 0), (4, 2), (4, 1)], scores=[0.95, 0.99, 1.0], stored=stored)
    assert names == ["a0", "a0", "a2", "a2", "a2"]  # near a1 does not count: not a representative


def test_a_rejected_candidate_is_not_grouped():
    names = _groups([(0, 1), (0, 2)], scores=[0.99, 0.5])
    assert names == ["a0", "a0", "a2"]


def test_units_move_whole_and_stored_groups_stay():
    # a1 and a2 are frames of one video (one unit); a3 is near a2 only
    names = _groups([(2, 3)], units=[0, 1, 1, 2])
    assert names[1] == names[2] == names[3] == "a1"
    assert names[0] == "a0"
    again = _groups([(2, 3)], units=[0, 1, 1, 2], stored=names)
    assert again == names
