"""How a snapshot draws its members: pure functions over candidate rows.

Candidates come sorted by `asset_id`, and every draw uses `numpy.random.default_rng(seed)`,
so the same lake version, filter, strategy and seed always give the same members in the
same order. Each function returns row numbers in draw order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
STRATEGIES = ("random", "stratified", "balanced", "diverse")


def draw_random(n_rows: int, n: int, seed: int) -> I64:
    """`n` rows uniformly without replacement (all of them if fewer)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(n_rows)[: min(n, n_rows)].astype(np.int64)


def _strata(values: Sequence[object]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for i, v in enumerate(values):
        out["(null)" if v is None else str(v)].append(i)
    return dict(sorted(out.items()))


def draw_stratified(values: Sequence[object], n: int, seed: int) -> I64:
    """`n` rows with each value of the column in proportion to its share of the rows.

    Quotas are the largest remainders of n * share; each stratum is drawn at random.
    """
    strata = _strata(values)
    total = len(values)
    n = min(n, total)
    if not n:
        return np.empty(0, dtype=np.int64)
    exact = {k: n * len(rows) / total for k, rows in strata.items()}
    quota = {k: int(q) for k, q in exact.items()}
    left = n - sum(quota.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - quota[k]), k))[:left]:
        quota[k] += 1
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for k, rows in strata.items():
        order = rng.permutation(len(rows))[: quota[k]]
        picked.extend(rows[i] for i in order)
    # interleave the strata in a seeded order, so any prefix is stratified too
    return np.array(picked, dtype=np.int64)[rng.permutation(len(picked))]


def draw_balanced(values: Sequence[object], n: int, seed: int) -> I64:
    """`n` rows with the classes as equal as they allow: one of each class in turn.

    A class that runs out leaves its turns to the others.
    """
    strata = _strata(values)
    rng = np.random.default_rng(seed)
    queues = [[rows[i] for i in rng.permutation(len(rows))] for rows in strata.values()]
    picked: list[int] = []
    n = min(n, len(values))
    depth = 0
    while len(picked) < n:
        for q in queues:
            if depth < len(q) and len(picked) < n:
                picked.append(q[depth])
        depth += 1
    return np.array(picked, dtype=np.int64)


def draw_diverse(sig: npt.NDArray[np.uint64], n: int, seed: int) -> I64:
    """k-center greedy on Hamming distance between signatures ([words, rows] uint64).

    The first centre is a seeded random row; each next one is the row farthest from all
    centres so far (ties: the first such row). Rows identical to a centre are never
    picked while any other row is left.
    """
    n_rows = sig.shape[1]
    n = min(n, n_rows)
    if not n:
        return np.empty(0, dtype=np.int64)
    first = int(np.random.default_rng(seed).integers(n_rows))
    picked = [first]
    nearest = _distance_to(sig, first)
    nearest[first] = -1
    for _ in range(n - 1):
        nxt = int(np.argmax(nearest))
        picked.append(nxt)
        np.minimum(nearest, _distance_to(sig, nxt), out=nearest)
        nearest[nxt] = -1
    return np.array(picked, dtype=np.int64)


def _distance_to(sig: npt.NDArray[np.uint64], row: int) -> I64:
    total = np.zeros(sig.shape[1], dtype=np.int64)
    for word in sig:
        total += np.bitwise_count(word ^ word[row])
    return total
