"""Near-duplicate groups from candidate pairs and the links that always group.

Rows are numbered 0..n-1 in the order the caller gives them (sorted by `asset_id`).
`component_labels` joins the rows that always share a group (a video's frames, an
augmented child and its parent) into units; `star_groups` makes the groups: a
representative and the units confirmed near it, named by the representative's asset id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

I64 = npt.NDArray[np.int64]


def chain_edges(values: Sequence[str | None] | I64) -> I64:
    """Edges that chain together the rows sharing a value (a video id, a stored group).

    Each row is linked to the next row with the same value: k rows, k-1 edges. None (or
    a negative number, for integer codes) shares with nothing.
    """
    if isinstance(values, np.ndarray):
        codes = values.astype(np.int64)
    else:
        present = [v for v in values if v is not None]
        table = {v: i for i, v in enumerate(sorted(set(present)))}
        codes = np.array([-1 if v is None else table[v] for v in values], dtype=np.int64)
    rows = np.flatnonzero(codes >= 0)
    if len(rows) < 2:
        return np.empty((0, 2), dtype=np.int64)
    order = rows[np.argsort(codes[rows], kind="stable")]
    same = codes[order[1:]] == codes[order[:-1]]
    return np.stack([order[:-1][same], order[1:][same]], axis=1).astype(np.int64)


def parent_edges(asset_ids: Sequence[str], parent_ids: Sequence[str | None]) -> I64:
    """Edges from each row to its parent's row, for parents that are rows too."""
    index = {a: i for i, a in enumerate(asset_ids)}
    pairs = [(i, index[p]) for i, p in enumerate(parent_ids) if p is not None and p in index]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def component_labels(n: int, *edges: I64) -> I64:
    """The connected component of each of `n` rows (numbers 0..k-1, in no set order)."""
    parts = [e for e in edges if len(e)]
    if not parts:
        return np.arange(n, dtype=np.int64)
    both = np.concatenate(parts)
    graph = coo_matrix((np.ones(len(both), dtype=np.int8), (both[:, 0], both[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


def group_names(asset_ids: Sequence[str], labels: I64) -> list[str]:
    """Each row's group name: the smallest asset id of its component."""
    smallest: dict[int, str] = {}
    for aid, label in zip(asset_ids, labels.tolist(), strict=True):
        if label not in smallest or aid < smallest[label]:
            smallest[label] = aid
    return [smallest[label] for label in labels.tolist()]


ScoreFn = Callable[[I64], npt.NDArray[np.float32]]


def star_groups(
    asset_ids: Sequence[str],
    units: I64,
    candidates: I64,
    stored: Sequence[str | None],
    score: ScoreFn,
    threshold: float,
) -> tuple[list[str], int, int]:
    """Groups in which every member is a confirmed near-duplicate of the representative.

    Connected components chain: A near B near C puts A and C together however far apart
    they are, and on low-texture images one component swallows a corpus. Here a group is
    a star instead: a representative and the units confirmed near it.

    Args:
        asset_ids: Row ids.
        units: Each row's hard unit (`component_labels` over the links that always group:
            a video's frames, an augmented child and its parent). A unit moves whole.
        candidates: Candidate pairs of rows, [m, 2] (hash neighbours).
        stored: Each row's stored group (its representative's asset id), None if new.
        score: Scores a batch of row pairs ([k, 2] -> [k]); a pair is confirmed when its
            score reaches `threshold`. Called once, with one row pair per pair of units.
        threshold: Smallest confirmed score.

    Returns:
        Each row's group name (its representative's asset id), the pairs scored and the
        pairs confirmed.

    The rules, in order:
    1. A unit with a stored member keeps that group (the one most of its stored members
       have; ties: the smallest name); groups never merge.
    2. A new unit confirmed near stored representatives joins the one it is most alike
       (highest score; ties: the smallest name).
    3. The other new units form stars: in order of how many unplaced units each is
       confirmed near (most first; ties: smallest asset id), a unit not yet placed
       becomes a representative and takes every unplaced unit confirmed near it. An
       original with its copies thus leads their star, not a look-alike of it.
    """
    n = len(asset_ids)
    n_units = int(units.max()) + 1 if n else 0
    first = [""] * n_units  # each unit's smallest asset id: its name if it leads a star
    for row, unit in enumerate(units.tolist()):
        if not first[unit] or asset_ids[row] < first[unit]:
            first[unit] = asset_ids[row]
    link: dict[tuple[int, int], tuple[int, int]] = {}  # one row pair per pair of units
    for i, j in candidates.tolist():
        a, b = int(units[i]), int(units[j])
        if a != b:
            link.setdefault((a, b) if a < b else (b, a), (i, j))
    keys = list(link)
    rows = np.array([link[k] for k in keys], dtype=np.int64).reshape(-1, 2)
    scores = score(rows) if len(rows) else np.empty(0, dtype=np.float32)
    near: dict[int, dict[int, float]] = {}
    for (a, b), s in zip(keys, scores.tolist(), strict=True):
        if s >= threshold:
            near.setdefault(a, {})[b] = s
            near.setdefault(b, {})[a] = s
    confirmed = sum(len(v) for v in near.values()) // 2
    group_of: dict[int, str] = {}
    votes: dict[int, dict[str, int]] = {}
    for row, g in enumerate(stored):
        if g is not None:
            tally = votes.setdefault(int(units[row]), {})
            tally[g] = tally.get(g, 0) + 1
    for unit, tally in votes.items():
        group_of[unit] = min(tally, key=lambda g: (-tally[g], g))
    row_of = {aid: row for row, aid in enumerate(asset_ids)}
    rep_units = {int(units[row_of[g]]): g for g in set(group_of.values()) if g in row_of}
    for unit in range(n_units):  # 2. new units near stored representatives
        if unit in group_of:
            continue
        options = [(-s, rep_units[r]) for r, s in near.get(unit, {}).items() if r in rep_units]
        if options:
            group_of[unit] = min(options)[1]
    free = [u for u in range(n_units) if u not in group_of]  # 3. stars
    free_set = set(free)
    degree = {u: sum(1 for v in near.get(u, {}) if v in free_set) for u in free}
    for center in sorted(free, key=lambda u: (-degree[u], first[u])):
        if center in group_of:
            continue
        group_of[center] = first[center]
        for other in near.get(center, {}):
            if other in free_set and other not in group_of:
                group_of[other] = first[center]
    return [group_of[int(u)] for u in units.tolist()], len(keys), confirmed
