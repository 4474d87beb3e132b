"""Banded LSH over perceptual-hash signatures: candidates share a band, Hamming confirms.

A signature is the concatenation of an asset's 64-bit hashes (`phash` and `dhash` by
default: 128 bits as two uint64 words). Each band samples `bits` fixed bit positions; two
signatures whose bits agree on every position of some band are candidates, and a
candidate pair is kept when its Hamming distance is at most the threshold. A pair at
distance `d` over `w` bits shares a given band with probability C(w-d, k) / C(w, k), so
more bands raise recall and wider bands shrink buckets.

Everything here is numpy on arrays; `pipeline.py` spreads the bands over Ray tasks.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

# Bands are drawn from this seed, so every run (and every incremental update) of a lake
# uses the same band positions.
BAND_SEED = 20261128


def signatures(*hashes: npt.ArrayLike) -> U64:
    """Stacks 64-bit hashes (int64 bit patterns, one array per hash) as uint64 words.

    Returns:
        Shape [len(hashes), n] (word-major: each word a contiguous array), dtype uint64.
    """
    words = [np.asarray(h, dtype=np.int64).view(np.uint64) for h in hashes]
    return np.ascontiguousarray(np.stack(words, axis=0))


def band_positions(bands: int, bits: int, width: int, seed: int = BAND_SEED) -> I64:
    """Bit positions of each band: `bands` rows of `bits` distinct positions < `width`.

    The same arguments always give the same positions.
    """
    if not 1 <= bits <= min(width, 63):
        raise ValueError(f"bits per band must be 1..{min(width, 63)}, not {bits}")
    rng = np.random.default_rng(seed)
    return np.stack([np.sort(rng.choice(width, size=bits, replace=False)) for _ in range(bands)])


def band_keys(sig: U64, positions: I64) -> U64:
    """The key of each signature in one band: its bits at `positions`, packed."""
    key = np.zeros(sig.shape[1], dtype=np.uint64)
    bit_value = np.empty_like(key)
    for j, pos in enumerate(positions.tolist()):
        word, bit = divmod(pos, 64)
        np.right_shift(sig[word], np.uint64(bit), out=bit_value)
        bit_value &= np.uint64(1)
        bit_value <<= np.uint64(j)
        key |= bit_value
    return key


def bucket_pairs(keys: U64, *, involving: npt.NDArray[np.bool_] | None = None) -> I64:
    """Every pair (i < j) of rows with equal keys, as an [m, 2] array of row numbers.

    Args:
        keys: One key per row.
        involving: If given, only pairs with at least one row marked True (an incremental
            update compares new rows with everything, not old rows with each other).

    The work is the number of pairs in the buckets, not rows times the largest bucket.
    """
    rows = np.arange(len(keys), dtype=np.int64)
    if involving is not None:
        # only buckets that hold a marked row can yield a pair
        touched = np.isin(keys, np.unique(keys[involving]))
        rows, keys = rows[touched], keys[touched]
    order = np.argsort(keys, kind="stable")
    sk, sr = keys[order], rows[order]
    n = len(sk)
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
    sizes = np.diff(np.r_[starts, n])
    run_end = np.repeat(starts + sizes, sizes)  # one past the end of each row's bucket
    pos = np.flatnonzero(np.repeat(sizes, sizes) > 1)
    out: list[I64] = []
    offset = 1
    while len(pos):
        pos = pos[pos + offset < run_end[pos]]
        if not len(pos):
            break
        a, b = sr[pos], sr[pos + offset]
        out.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
        offset += 1
    pairs = np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)
    if involving is not None and len(pairs):
        pairs = pairs[involving[pairs[:, 0]] | involving[pairs[:, 1]]]
    return pairs


def hamming(sig: U64, pairs: I64) -> I64:
    """Bits that differ between the two signatures of each pair."""
    return distances(sig, pairs)[0]


def distances(sig: U64, pairs: I64) -> tuple[I64, I64]:
    """For each pair: the bits that differ in all, and in the word where most differ."""
    a, b = pairs[:, 0], pairs[:, 1]
    total = np.zeros(len(pairs), dtype=np.int64)
    worst = np.zeros(len(pairs), dtype=np.int64)
    for word in sig:
        d = np.bitwise_count(word[a] ^ word[b]).astype(np.int64)
        total += d
        np.maximum(worst, d, out=worst)
    return total, worst


def near_pairs(
    sig: U64,
    positions: I64,
    threshold: int,
    *,
    max_word: int = 64,
    involving: npt.NDArray[np.bool_] | None = None,
) -> I64:
    """Pairs that share a band and differ in <= `threshold` bits, <= `max_word` per hash.

    Args:
        sig: Signatures, [words, n] uint64.
        positions: Bands to use, [bands, bits] (a slice of `band_positions`).
        threshold: Largest Hamming distance of a kept pair, over all words.
        max_word: Largest distance in any single word (one 64-bit hash).
        involving: Restrict to pairs with at least one marked row.

    Returns:
        Unique pairs (i < j), [m, 2] int64, sorted.
    """
    n = sig.shape[1]
    found: list[I64] = []
    for band in positions:
        cand = bucket_pairs(band_keys(sig, band), involving=involving)
        if len(cand):
            total, worst = distances(sig, cand)
            kept = cand[(total <= threshold) & (worst <= max_word)]
            # a near pair is found again in many bands: keep each once, as one number
            found.append(np.unique(encode(kept, n)))
    return decode(np.unique(np.concatenate(found)) if found else np.empty(0, np.int64), n)


def encode(pairs: I64, n: int) -> I64:
    """Pairs (i < j < n) as single int64 numbers i * n + j (n < 2**31)."""
    return pairs[:, 0] * np.int64(n) + pairs[:, 1]


def decode(codes: I64, n: int) -> I64:
    """The inverse of `encode`: [m, 2] pairs."""
    return np.stack([codes // n, codes % n], axis=1).astype(np.int64)


def unique_pairs(parts: list[I64], n: int) -> I64:
    """The distinct pairs among several [m, 2] arrays over `n` rows, sorted."""
    codes = [encode(p, n) for p in parts if len(p)]
    if not codes:
        return np.empty((0, 2), dtype=np.int64)
    return decode(np.unique(np.concatenate(codes)), n)


def share_probability(distance: int, bits: int, width: int) -> float:
    """Chance that a pair `distance` bits apart agrees on all `bits` positions of a band."""
    p = 1.0
    for i in range(bits):
        p *= max(width - distance - i, 0) / (width - i)
    return p


def recall_at(distance: int, bands: int, bits: int, width: int) -> float:
    """Chance that a pair `distance` bits apart shares at least one of `bands` bands."""
    return 1.0 - (1.0 - share_probability(distance, bits, width)) ** bands
