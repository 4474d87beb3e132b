"""Near-duplicate groups from confirmed pairs and known links (frames, augmented children).

Rows are numbered 0..n-1 in the order the caller gives them (sorted by `asset_id`); a
group is a connected component of the graph whose edges are the confirmed near pairs,
each frame to the other frames of its video, each augmented child to its parent, and
each already grouped asset to the other members of its stored group. Its label is the
smallest `asset_id` in it.
"""

from __future__ import annotations

from collections.abc import Sequence

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
