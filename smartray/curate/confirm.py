"""Pixel confirmation of near-duplicate candidates: align, then compare fine structure.

Hash agreement alone is not evidence on low-texture images (plain backgrounds, small gray
product shots): many bits agree by chance, and a trouser "matches" a sneaker. Every
candidate pair from the hash LSH is therefore confirmed on each asset's descriptor, its
32x32 grayscale image (`sanitize.descriptor`):

1. the second image is aligned to the first by an affine ECC fit (OpenCV
   `findTransformECC`, a few iterations), which undoes the small crops, rescales, shifts
   and rotations a near-copy carries;
2. both are band-passed (a difference of Gaussian blurs, sigma 1 and 4 px): what is left
   is the structure that tells two similar products apart, not their silhouette, and not
   the finest detail that re-encoding and resampling disturb in a copy;
3. the score is the correlation of the two band-passed images, inside a 2 px margin;
   brightness and contrast changes drop out with the mean and the norm.

A pair is a near-duplicate when the score reaches the threshold (`CurateConfig`; chosen
on `bench/dedup.py`'s three corpora, BENCHMARKS.md): 0.993 in general, for on a corpus of
small product shots unrelated images of one kind reach 0.95-0.99 (Fashion-MNIST's
shirts, coats and pullovers), and 0.95 for pairs whose hashes are within a few bits
(`needed`). Two flat images (no structure left after the band-pass) are
near-duplicates only if their brightness matches.

Numpy and OpenCV only: no Ray here (`pipeline.py` spreads the pairs over tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from smartray.sanitize.cv import cv2
from smartray.sanitize.descriptor import DESCRIPTOR_SIDE

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

# The band-pass (a difference of Gaussians, px at 32x32) keeps structure between these
# scales: finer detail is what resampling and JPEG disturb in a copy, coarser is the
# silhouette that look-alikes share.
BAND_LOW, BAND_HIGH = 1.0, 4.0
MARGIN = 2  # px left out at each border (the warp fills it by replication)
ECC_ITERATIONS = 10
ECC_EPS = 1e-3
FLAT_STD = 1.0  # a band-passed image with less spread than this (0-255) has no structure
# Pairs whose blurred images correlate less than GATE, or whose band-passed images less
# than FLOOR, unaligned, are no near-copies (a copy's small warp keeps both higher: on
# bench/dedup.py's corpora copies stay above 0.81 and 0.75): they are not aligned.
GATE, FLOOR = 0.8, 0.7
# The pairs left are first compared at whole-pixel shifts of up to SHIFT px: a copy that
# ECC confirms is never below SHIFT_FLOOR there (0.874 at the least on bench/dedup.py's
# photos, faces and Fashion-MNIST copies; ECC adds at most 0.12), while most look-alikes
# are (80 % of Fashion-MNIST's candidates are under 0.9): only pairs between are fitted.
SHIFT, SHIFT_FLOOR = 1, 0.85
FLAT_MEAN_DIFF = 8.0  # two flat images match when their means are this close (0-255)
# The largest warp taken for a near-copy's: scale (and shear) within 12 %, 6 degrees, 3 px.
MIN_SCALE, MAX_SCALE, MAX_TURN, MAX_SHIFT = 0.88, 1.12, 6.0, 3.0
_ALL = np.full((DESCRIPTOR_SIDE, DESCRIPTOR_SIDE), 255, dtype=np.uint8)  # ECC's mask: all


def as_images(descriptors: U8) -> F32:
    """Descriptors ([n, 1024] or [n, 32, 32] uint8) as float32 [n, 32, 32] images."""
    side = DESCRIPTOR_SIDE
    return np.asarray(descriptors, dtype=np.float32).reshape(-1, side, side)


def _band(img: F32) -> F32:
    return _band_whole(img)[MARGIN:-MARGIN, MARGIN:-MARGIN]


def _align(a: F32, b: F32) -> F32:
    """`b` warped onto `a` by the affine map ECC finds (`b` itself if ECC fails)."""
    start = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, ECC_EPS)
    try:
        _, warp = cv2.findTransformECC(a, b, start, cv2.MOTION_AFFINE, criteria, _ALL, 1)
    except cv2.error:  # no correlation to climb (flat or unrelated images): compare as is
        return b
    if not _small(np.asarray(warp)):  # a near-copy is only slightly moved: this is another image
        return b
    size = (a.shape[1], a.shape[0])
    flags = cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP
    return np.asarray(
        cv2.warpAffine(b, warp, size, flags=flags, borderMode=cv2.BORDER_REPLICATE),
        dtype=np.float32,
    )


def _small(warp: npt.NDArray[np.floating[Any]]) -> bool:
    """Whether an affine warp is small enough to be a near-copy's (scale, turn, shift)."""
    linear = np.asarray(warp[:, :2], dtype=np.float64)
    low, high = np.linalg.svd(linear, compute_uv=False)[[1, 0]]
    turn = abs(float(np.degrees(np.arctan2(linear[1, 0], linear[0, 0]))))
    shift = float(np.abs(warp[:, 2]).max())
    return bool(low >= MIN_SCALE and high <= MAX_SCALE and turn <= MAX_TURN and shift <= MAX_SHIFT)


def pair_score(a: F32, b: F32) -> float:
    """How alike two descriptor images are after alignment: -1..1 (1: the same)."""
    band_a = _band(a)
    flat_a = float(band_a.std()) < FLAT_STD
    flat_b = float(_band(b).std()) < FLAT_STD
    if flat_a or flat_b:
        same = flat_a and flat_b and abs(float(a.mean()) - float(b.mean())) <= FLAT_MEAN_DIFF
        return 1.0 if same else 0.0
    band_b = _band(_align(a, b))
    x = band_a - band_a.mean()
    y = band_b - band_b.mean()
    denom = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float((x * y).sum()) / denom if denom > 0 else 0.0


def needed(bits: I64, threshold: float, close_bits: int, close_threshold: float) -> F32:
    """The score each pair must reach, from the bits its hashes differ in."""
    return np.where(bits <= close_bits, close_threshold, threshold).astype(np.float32)


def score_pairs(images: F32, pairs: I64, threshold: float, need: F32 | None = None) -> F32:
    """The score of each pair (rows of `images`), in the order given.

    Scores are on the scale of `threshold`: a pair that must reach `need` (default:
    `threshold`) gets its difference from 1 stretched by (1 - threshold) / (1 - need), so
    that it is kept when the result reaches `threshold` (identical images stay at 1).

    Two vectorized checks spare most pairs the alignment: a pair whose band-passed
    images already correlate to what it must reach unaligned scores that (a re-encode
    or a brightness change); a pair whose blurred images correlate below `GATE`, or whose
    band-passed ones below `FLOOR`, is no near-copy (a copy's small warp keeps both close)
    and scores its unaligned value. The pairs between are compared at whole-pixel shifts
    (`SHIFT`): one that reaches its need there, or stays under `SHIFT_FLOOR`, is settled;
    only the rest are aligned by ECC (`pair_score`).
    """
    out = np.empty(len(pairs), dtype=np.float32)
    if not len(pairs):
        return out
    # per-image features once, and only for the images these pairs use (a task gets the
    # descriptors of every candidate row, but scores only its share of the pairs)
    used, local = np.unique(pairs, return_inverse=True)
    mine = images[used]
    whole = np.stack([_band_whole(img) for img in mine])
    bands = whole[:, MARGIN:-MARGIN, MARGIN:-MARGIN]
    flat = bands.reshape(len(mine), -1).std(axis=1) < FLAT_STD
    band, blur = _unit_rows(bands, _same), _unit_rows(mine, _blurred)
    need = np.full(len(pairs), threshold, np.float32) if need is None else need
    a, b = local.reshape(-1, 2)[:, 0], local.reshape(-1, 2)[:, 1]
    i, j = pairs[:, 0], pairs[:, 1]
    direct = np.einsum("ij,ij->i", band[a], band[b])
    gate = np.einsum("ij,ij->i", blur[a], blur[b])
    flat_i, flat_j = flat[a], flat[b]
    out[:] = direct
    either_flat = flat_i | flat_j
    for k in np.flatnonzero(either_flat).tolist():  # no structure: brightness decides
        out[k] = pair_score(images[i[k]], images[j[k]])
    align = np.flatnonzero(~either_flat & (direct < need) & (direct >= FLOOR) & (gate >= GATE))
    shifted = _best_shift(band, whole, a[align], b[align])
    out[align] = np.maximum(out[align], shifted)
    fit = align[(shifted < need[align]) & (shifted >= SHIFT_FLOOR)]
    for k in fit.tolist():
        out[k] = max(float(out[k]), pair_score(images[i[k]], images[j[k]]))
    stretch = (1.0 - threshold) / np.maximum(1.0 - need, 1e-6)
    return np.asarray(np.where(either_flat, out, 1.0 - (1.0 - out) * stretch), dtype=np.float32)


def _band_whole(img: F32) -> F32:
    """The band-passed image with its margin (`_band` leaves the margin out)."""
    fine = cv2.GaussianBlur(img, (0, 0), BAND_LOW)
    return np.asarray(fine - cv2.GaussianBlur(img, (0, 0), BAND_HIGH), dtype=np.float32)


def _best_shift(band: F32, whole: F32, a: I64, b: I64, chunk: int = 4096) -> F32:
    """For each pair (a, b): the best correlation of `band[a]` with a shifted `whole[b]`.

    `band` holds unit rows; `whole[b]` is moved by whole pixels, up to `SHIFT` each way
    (its windows stay inside the margin).
    """
    best = np.full(len(a), -1.0, dtype=np.float32)
    inner = whole.shape[1] - 2 * MARGIN
    for start in range(0, len(a), chunk):
        rows = slice(start, start + chunk)
        left, right = band[a[rows]], whole[b[rows]]
        for dy in range(-SHIFT, SHIFT + 1):
            for dx in range(-SHIFT, SHIFT + 1):
                y, x = MARGIN + dy, MARGIN + dx
                window = right[:, y : y + inner, x : x + inner].reshape(len(left), -1)
                window = window - window.mean(axis=1, keepdims=True)
                norm = np.linalg.norm(window, axis=1)
                dot = np.einsum("ij,ij->i", left, window)
                corr = np.divide(dot, norm, out=np.zeros_like(dot), where=norm > 0)
                np.maximum(best[rows], corr, out=best[rows])
    return best


def _same(img: F32) -> F32:
    return img


def _blurred(img: F32) -> F32:
    return np.asarray(cv2.GaussianBlur(img, (0, 0), 1.0), dtype=np.float32)


def _unit_rows(images: F32, fn: Callable[[F32], F32]) -> F32:
    """`fn` of each image, flattened, zero-mean and unit-norm (zero if flat)."""
    rows = np.stack([fn(img).ravel() for img in images]) if len(images) else np.empty((0, 1))
    rows = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0), np.float32)


def confirm(images: F32, pairs: I64, threshold: float, need: F32 | None = None) -> tuple[I64, F32]:
    """The pairs whose score reaches `threshold`, and their scores.

    Args:
        images: Descriptor images, [n, 32, 32] float32 (`as_images`).
        pairs: Candidate pairs of rows, [m, 2].
        threshold: Smallest score kept.
        need: What each pair's own score must reach (`needed`; default: `threshold`).
    """
    scores = score_pairs(images, pairs, threshold, need)
    keep = scores >= threshold
    return pairs[keep], scores[keep]
