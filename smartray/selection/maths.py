"""The selection strategies as plain array maths: no Ray, no lake.

Every function picks `budget` rows of a pool and returns their indices in pick order,
with the strategy's value at each pick. `groups` gives each row a component id: rows of
one near-duplicate group or one video share it, and a pick takes its whole component out
of the pool, so no batch holds two of a kind.

- `top_scores`: least-confidence, margin, entropy and BALD (the highest score first).
- `random_picks`: a seeded permutation.
- `kcenter_greedy`: core-set (Sener & Savarese 2018): each pick is the row farthest from
  every center (the labelled rows' embeddings, then the picks). Exact: the same picks as
  recomputing every distance, but a row is only measured against a new center when a
  lower bound from a low-rank projection allows it to be nearer (`Coverage`).
- `badge`: BADGE (Ash et al. 2020): k-means++ seeding on gradient embeddings
  `(p - onehot(argmax p)) x embedding`, their distances computed from the two factors
  without forming the `C x D` vectors.
- `weighted`: a weighted sum of objectives, each normalised to 0..1 over the pool
  (uncertainties, and the k-center distance as it shrinks), picked greedily, with class
  balance by predicted class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

F32 = np.ndarray  # float32 arrays, [N] or [N, D]
CHUNK = 4096  # rows per distance block against many centers


@dataclass(frozen=True)
class Picks:
    """Selected row indices in pick order and the strategy's value at each pick."""

    index: np.ndarray  # int64 [k]
    score: np.ndarray  # float64 [k]


class Components:
    """Rows grouped by component id: a pick removes its component from the pool."""

    def __init__(self, groups: np.ndarray):
        self.groups = np.asarray(groups)
        order = np.argsort(self.groups, kind="stable")
        sorted_ids = self.groups[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        ends = np.r_[starts[1:], len(order)]
        self._order, self._span = order, {}
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            if e - s > 1:  # singletons need no lookup: the row itself
                self._span[sorted_ids[s].item()] = (s, e)

    def members(self, row: int) -> np.ndarray:
        """The rows of `row`'s component (itself included)."""
        span = self._span.get(self.groups[row].item())
        if span is None:
            return np.array([row])
        return self._order[span[0] : span[1]]


def top_scores(score: F32, budget: int, groups: np.ndarray) -> Picks:
    """The `budget` highest scores, one per component; ties by row order."""
    score = np.asarray(score, np.float64)
    comps = Components(groups)
    taken = np.zeros(len(score), bool)
    picks: list[int] = []
    for i in np.argsort(-score, kind="stable").tolist():
        if len(picks) == budget:
            break
        if taken[i]:
            continue
        picks.append(i)
        taken[comps.members(i)] = True
    idx = np.array(picks, np.int64)
    return Picks(idx, score[idx])


def random_picks(n: int, budget: int, groups: np.ndarray, seed: int) -> Picks:
    """A seeded random order of the rows, one per component."""
    order = np.random.default_rng(seed).permutation(n)
    rank = np.empty(n)
    rank[order] = -np.arange(n, dtype=np.float64)  # the first in the order scores highest
    picks = top_scores(rank, budget, groups)
    return Picks(picks.index, np.zeros(len(picks.index)))


def sq_norms(x: F32) -> np.ndarray:
    """Squared row norms in float64."""
    out: np.ndarray = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    return out


def nearest(x: F32, centers: F32) -> np.ndarray:
    """Per row of `x`: the squared distance to the nearest of `centers` (float64)."""
    x64 = np.asarray(x, np.float64)
    xn = sq_norms(x64)
    best = np.full(len(x), np.inf)
    for s in range(0, len(centers), CHUNK // 8):
        c = np.asarray(centers[s : s + CHUNK // 8], np.float64)
        block = sq_norms(c)[None, :] - 2.0 * (x64 @ c.T)
        np.minimum(best, block.min(axis=1) + xn, out=best)
    out: np.ndarray = np.maximum(best, 0.0)
    return out


class Coverage:
    """Each row's squared distance to its nearest center, exact as centers are added.

    Adding a center measures only the rows it might be nearer to: a lower bound of the
    distance from a `rank`-dimensional principal projection plus the residual norms,
    `|P(x - c)|^2 + (|r_x| - |r_c|)^2 <= |x - c|^2`, rules the others out (with a margin
    for rounding). Late centers are near few rows, so most rows cost `rank` instead of
    `D` numbers; the distances that are computed are exact (float64).
    """

    def __init__(self, x: F32, centers: F32 | None = None, *, rank: int = 32, seed: int = 0):
        self.x = np.ascontiguousarray(x, np.float32)
        self.xn = sq_norms(self.x)
        n, dim = self.x.shape
        self.mind = np.full(n, np.inf) if centers is None or not len(centers) else (
            nearest(self.x, centers)
        )  # fmt: skip
        rank = min(rank, dim)
        sample = self.x[np.random.default_rng(seed).permutation(n)[:20_000]]
        self.mean = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
        centred = sample - self.mean
        _, vecs = np.linalg.eigh(centred.T.astype(np.float64) @ centred)
        self.basis = np.ascontiguousarray(vecs[:, ::-1][:, :rank], np.float32)
        self.z = (self.x - self.mean) @ self.basis
        self.zn = sq_norms(self.z)
        self.rn = np.sqrt(np.maximum(sq_norms(self.x - self.mean) - self.zn, 0.0))
        self.scale = self.zn + self.rn**2  # |x - mean|^2: the bound's rounding grows with it
        self.measured = 0  # rows measured exactly, over all centers

    def add(self, c: F32, rows: np.ndarray | None = None) -> None:
        """Adds the center `c`; only `rows` (a boolean mask; None: all) are kept exact."""
        c32 = np.asarray(c, np.float32)
        zc = (c32 - self.mean) @ self.basis
        zcn = float(zc.astype(np.float64) @ zc)
        rc = np.sqrt(max(float(((c32 - self.mean).astype(np.float64) ** 2).sum()) - zcn, 0.0))
        low = self.zn + zcn - 2.0 * (self.z @ zc) + (self.rn - rc) ** 2
        slack = 1e-4 * (self.scale + zcn + rc**2) + 1e-12
        maybe = low - slack < self.mind
        if rows is not None:
            maybe &= rows
        check = np.flatnonzero(maybe)
        if not len(check):
            return
        self.measured += len(check)
        c64 = c32.astype(np.float64)
        d = self.xn[check] + c64 @ c64 - 2.0 * (self.x[check].astype(np.float64) @ c64)
        np.minimum.at(self.mind, check, np.maximum(d, 0.0))


def kcenter_greedy(
    x: F32,
    budget: int,
    groups: np.ndarray,
    centers: F32 | None = None,
    seed: int = 0,
) -> Picks:
    """Core-set picks: each the row farthest from the centers so far (exact).

    `centers` are what is covered already (the labelled rows' embeddings); without them
    the first pick is drawn from `seed`. The score of a pick is its distance to the
    nearest center when it was picked.
    """
    cover = Coverage(x, centers, seed=seed)
    alive = np.ones(len(cover.x), bool)
    comps = Components(groups)
    picks: list[int] = []
    scores: list[float] = []
    rng = np.random.default_rng(seed)
    while len(picks) < budget and alive.any():
        if np.isinf(cover.mind[alive]).all():
            i = int(rng.choice(np.flatnonzero(alive)))
        else:
            i = int(np.where(alive, cover.mind, -1.0).argmax())
        picks.append(i)
        scores.append(float(np.sqrt(cover.mind[i])))
        alive[comps.members(i)] = False
        cover.add(cover.x[i], alive)
    return Picks(np.array(picks, np.int64), np.array(scores))


def gradient_factors(probs: F32, embedding: F32) -> tuple[np.ndarray, np.ndarray]:
    """BADGE's gradient embedding of each row as two factors, `a` and `e`.

    `a = p - onehot(argmax p)` is the last layer's gradient for the predicted label, `e`
    the embedding; the gradient embedding is their outer product `a x e`.
    """
    a = np.asarray(probs, np.float64).copy()
    a[np.arange(len(a)), a.argmax(axis=1)] -= 1.0
    return a, np.asarray(embedding, np.float64)


def badge(probs: F32, embedding: F32, budget: int, groups: np.ndarray, seed: int) -> Picks:
    """BADGE: k-means++ seeding over gradient embeddings, one pick per component.

    The first pick is the largest gradient norm; each next is drawn with probability
    proportional to its squared distance to the nearest pick. `<a_i x e_i, a_j x e_j> =
    (a_i . a_j)(e_i . e_j)` gives every distance from the factors. The score of a pick is
    its squared distance when drawn.
    """
    a, e = gradient_factors(probs, embedding)
    an, en = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", e, e)
    norm = an * en
    rng = np.random.default_rng(seed)
    comps = Components(groups)
    alive = np.ones(len(a), bool)
    mind = np.full(len(a), np.inf)
    picks: list[int] = []
    scores: list[float] = []
    while len(picks) < budget and alive.any():
        if not picks:
            i = int(np.where(alive, norm, -1.0).argmax())
        else:
            w = np.where(alive, mind, 0.0)
            total = w.sum()
            if total <= 0:  # every row left sits on a pick: take them in order
                i = int(np.flatnonzero(alive)[0])
            else:
                i = int(rng.choice(len(w), p=w / total))
        picks.append(i)
        scores.append(float(norm[i] if len(picks) == 1 else mind[i]))
        alive[comps.members(i)] = False
        d = norm + norm[i] - 2.0 * (a @ a[i]) * (e @ e[i])
        np.minimum(mind, np.maximum(d, 0.0), out=mind)
    return Picks(np.array(picks, np.int64), np.array(scores))


def normalised(values: F32) -> np.ndarray:
    """Min-max to 0..1 over the pool (all 0 when constant)."""
    v = np.asarray(values, np.float64)
    if not v.size:
        return v
    lo, hi = float(v.min()), float(v.max())
    return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)


def weighted(
    objectives: Mapping[str, F32],
    weights: Mapping[str, float],
    budget: int,
    groups: np.ndarray,
    *,
    embedding: F32 | None = None,
    centers: F32 | None = None,
    predicted: np.ndarray | None = None,
) -> Picks:
    """Greedy picks of the highest weighted sum of normalised objectives.

    `objectives` are per-row values where higher means more worth labelling (pass
    `1 - margin`, not the margin); each is normalised over the pool. With a `kcenter`
    weight, the distance to the nearest center (`centers`, then each pick), divided by
    the largest among the rows left, is one more objective that shrinks as picks cover
    the pool. With `predicted` (the predicted class per row), picks rotate over the
    classes: each pick comes from a class with the fewest picks so far.
    """
    n = len(groups)
    static = np.zeros(n)
    for name, w in weights.items():
        if name != "kcenter":
            static += w * normalised(objectives[name])
    w_div = float(weights.get("kcenter", 0.0))
    cover = None
    if w_div:
        if embedding is None:
            raise ValueError("a kcenter weight needs the embeddings")
        cover = Coverage(embedding, centers)
    comps = Components(groups)
    alive = np.ones(n, bool)
    taken = np.zeros(int(predicted.max()) + 1 if predicted is not None and n else 0, np.int64)
    picks: list[int] = []
    scores: list[float] = []
    while len(picks) < budget and alive.any():
        total = static.copy()
        if cover is not None:
            dist = np.sqrt(cover.mind)
            top = dist[alive & np.isfinite(dist)].max(initial=0.0)
            scaled = dist / top if top > 0 else np.zeros(n)
            total += w_div * np.where(np.isfinite(dist), scaled, 1.0)
        ok = alive
        if predicted is not None:
            present = np.unique(predicted[alive])
            fewest = present[taken[present] == taken[present].min()]
            ok = alive & np.isin(predicted, fewest)
        i = int(np.where(ok, total, -np.inf).argmax())
        picks.append(i)
        scores.append(float(total[i]))
        alive[comps.members(i)] = False
        if predicted is not None:
            taken[predicted[i]] += 1
        if cover is not None:
            cover.add(cover.x[i], alive)
    return Picks(np.array(picks, np.int64), np.array(scores))


def prefilter(score: F32, keep: int, groups: np.ndarray | None = None) -> np.ndarray:
    """The first stage of a two-stage selection: rows to keep, sorted by row.

    The most uncertain row of each component stands for it (the second stage can pick
    one per component anyway), and the `keep` components with the highest scores pass:
    survivors never crowd into a few videos or duplicate groups.
    """
    score = np.asarray(score, np.float64)
    order = np.argsort(-score, kind="stable")
    if groups is not None:
        _, first = np.unique(np.asarray(groups)[order], return_index=True)
        order = order[np.sort(first)]  # each component's best row, best first
    return np.sort(order[:keep])
