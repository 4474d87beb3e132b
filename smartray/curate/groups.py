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
    a star instead: a representative and the units confirmed near it. Candidates are
    confirmed lazily, a batch at a time, so a corpus of look-alikes costs about one
    confirmation per asset rather than one per candidate pair.

    Args:
        asset_ids: Row ids.
        units: Each row's hard unit (`component_labels` over the links that always group:
            a video's frames, an augmented child and its parent). A unit moves whole.
        candidates: Candidate pairs of rows, [m, 2] (hash neighbours).
        stored: Each row's stored group (its representative's asset id), None if new.
        score: Scores a batch of row pairs ([k, 2] -> [k]); a pair is confirmed when its
            score reaches `threshold`.
        threshold: Smallest confirmed score.

    Returns:
        Each row's group name (its representative's asset id), the pairs scored and the
        pairs confirmed.

    The rules, in order:
    1. A unit with a stored member keeps that group (the one most of its stored members
       have; ties: the smallest name); groups never merge.
    2. A new unit with candidates among the stored representatives joins the one it is
       most alike (highest confirmed score; ties: the smallest name).
    3. The other new units form stars in rounds: the units with the most candidates
       (ties: smallest asset id) that are not candidates of each other become
       representatives; each unplaced candidate of theirs that they confirm joins the
       most alike of them; a representative that confirms nobody is a group of one.
    """
    n = len(asset_ids)
    n_units = int(units.max()) + 1 if n else 0
    first = [""] * n_units  # each unit's smallest asset id: its name if it leads a star
    lead_row = [-1] * n_units
    for row, unit in enumerate(units.tolist()):
        if not first[unit] or asset_ids[row] < first[unit]:
            first[unit], lead_row[unit] = asset_ids[row], row
    # one candidate row pair per pair of units
    link: dict[tuple[int, int], tuple[int, int]] = {}
    for i, j in candidates.tolist():
        a, b = int(units[i]), int(units[j])
        if a != b:
            link.setdefault((a, b) if a < b else (b, a), (i, j))
    near: dict[int, set[int]] = {}
    for a, b in link:
        near.setdefault(a, set()).add(b)
        near.setdefault(b, set()).add(a)
    scored = confirmed = 0

    def batch(unit_pairs: list[tuple[int, int]]) -> dict[tuple[int, int], float]:
        nonlocal scored, confirmed
        if not unit_pairs:
            return {}
        rows = np.array([link[(a, b) if a < b else (b, a)] for a, b in unit_pairs], dtype=np.int64)
        got = score(rows.reshape(-1, 2))
        scored += len(unit_pairs)
        out = {p: float(s) for p, s in zip(unit_pairs, got.tolist(), strict=True) if s >= threshold}
        confirmed += len(out)
        return out

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
    # 2. new units near stored representatives
    asks = [
        (u, r)
        for u in range(n_units)
        if u not in group_of
        for r in near.get(u, ())
        if r in rep_units
    ]
    best: dict[int, tuple[float, str]] = {}
    for (u, r), s in batch(asks).items():
        option = (-s, rep_units[r])
        if u not in best or option < best[u]:
            best[u] = option
    for u, (_, g) in best.items():
        group_of[u] = g
    # 3. stars among the rest, in rounds
    free = {u for u in range(n_units) if u not in group_of}
    while free:
        degree = {u: len(near.get(u, set()) & free) for u in free}
        centers: list[int] = []
        taken: set[int] = set()
        for u in sorted(free, key=lambda u: (-degree[u], first[u])):
            if u not in taken:
                centers.append(u)
                taken.add(u)
                taken.update(near.get(u, set()) & free)
        center_set = set(centers)
        asks = [
            (c, v)
            for c in centers
            for v in sorted(near.get(c, set()) & free)
            if v not in center_set
        ]
        joins: dict[int, tuple[float, str]] = {}
        for (c, v), s in batch(asks).items():
            option = (-s, first[c])
            if v not in joins or option < joins[v]:
                joins[v] = option
        for c in centers:
            group_of[c] = first[c]
        for v, (_, g) in joins.items():
            group_of[v] = g
        free -= center_set | joins.keys()
        # a unit whose candidates are all placed can only be a group of one
        free = {u for u in free if near.get(u, set()) & free} | set()
        for u in list(range(n_units)):
            if u not in group_of and u not in free:
                group_of[u] = first[u]
    for u in range(n_units):
        group_of.setdefault(u, first[u])
    return [group_of[int(u)] for u in units.tolist()], scored, confirmed
