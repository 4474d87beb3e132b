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
    """Per row of `x`: the squared distance to the nearest of `centers`, exact (float64).

    A float32 product finds each row's nearest center; the distance to it is then
    computed in float64, and rows where another center comes within rounding of it are
    measured against every center in float64.
    """
    x32 = np.ascontiguousarray(x, np.float32)
    c32 = np.ascontiguousarray(centers, np.float32)
    xn, cn = sq_norms(x32), sq_norms(c32)
    best = np.full(len(x32), np.inf, np.float32)
    which = np.zeros(len(x32), np.int64)
    near_tie = np.zeros(len(x32), bool)
    slack = (1e-4 * (xn + cn.max(initial=0.0)) + 1e-12).astype(np.float32)
    for s in range(0, len(c32), CHUNK):  # float32: which center is nearest
        block = x32 @ c32[s : s + CHUNK].T
        block *= -2.0
        block += cn[None, s : s + CHUNK].astype(np.float32)
        block += xn[:, None].astype(np.float32)
        j = block.argmin(axis=1)
        low = block[np.arange(len(x32)), j]
        near_tie |= (block < np.minimum(best, low)[:, None] + slack[:, None]).sum(axis=1) > 1
        near_tie |= np.abs(low - best) < slack
        better = low < best
        best[better], which[better] = low[better], j[better] + s
    c64 = c32.astype(np.float64)
    out = np.empty(len(x32))
    order = np.argsort(which, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(which[order]) != 0])
    for rows in np.split(order, starts[1:]):  # float64: the distance to it, per center
        j = which[rows[0]]
        out[rows] = xn[rows] + cn[j] - 2.0 * (x32[rows].astype(np.float64) @ c64[j])
    for rows in np.array_split(np.flatnonzero(near_tie), max(1, near_tie.sum() // 512)):
        if len(rows):  # close calls: every center, in float64
            dots = x32[rows].astype(np.float64) @ c64.T
            out[rows] = (xn[rows, None] + cn[None, :] - 2.0 * dots).min(axis=1)
    result: np.ndarray = np.maximum(out, 0.0)
    return result


class Coverage:
    """Each row's squared distance to its nearest center, exact as centers are added.

    Adding a center measures only the rows it might be nearer to. A `rank`-dimensional
    principal projection `z` of each row, with the norm of its residual appended, gives
    a lower bound of any distance: `|z_x - z_c|^2 <= |x - c|^2` (the residuals' norms
    differ by at most their distance). A row is measured, exactly and in float64, only
    when that bound (less a margin for float32 rounding) is below its distance so far;
    late centers are near few rows, so most rows cost `rank + 1` numbers, not `D`.
    """

    def __init__(self, x: F32, centers: F32 | None = None, *, rank: int = 32, seed: int = 0):
        self.x = np.ascontiguousarray(x, np.float32)
        self.xn = sq_norms(self.x)
        n, dim = self.x.shape
        self.mind = np.full(n, np.inf) if centers is None or not len(centers) else (
            nearest(self.x, centers)
        )  # fmt: skip
        sample = self.x[np.random.default_rng(seed).permutation(n)[:20_000]]
        self.mean = sample.mean(axis=0, dtype=np.float64).astype(np.float32)
        centred = sample - self.mean
        _, vecs = np.linalg.eigh(centred.T.astype(np.float64) @ centred)
        self.basis = np.ascontiguousarray(vecs[:, ::-1][:, : min(rank, dim)], np.float32)
        self.z = self._project(self.x)
        self.zn = sq_norms(self.z)  # |x - mean|^2, as projected
        self.slack = 1e-4 * self.zn + 1e-12
        # a row is measured when z_x . z_c > threshold - (|z_c|^2 - its slack) / 2
        self.threshold = (self.zn - self.slack - self.mind) / 2.0
        self.measured = 0  # rows measured exactly, over all centers

    def _project(self, x: F32) -> np.ndarray:
        """`[z, |residual|]` of rows `x` (float32)."""
        centred = np.asarray(x, np.float32) - self.mean
        z = centred @ self.basis
        resid = np.maximum(sq_norms(centred) - sq_norms(z), 0.0)
        return np.ascontiguousarray(np.hstack([z, np.sqrt(resid)[:, None]]), np.float32)

    def drop(self, rows: np.ndarray) -> None:
        """Rows that no longer need their distance kept (picked, or out of the pool)."""
        self.threshold[rows] = np.inf

    def add(self, c: F32) -> None:
        """Adds the center `c`: every row not dropped keeps its exact nearest distance."""
        c32 = np.asarray(c, np.float32)
        zc = self._project(c32[None, :])[0]
        zcn = float(zc.astype(np.float64) @ zc)
        check = np.flatnonzero(self.z @ zc > self.threshold + (zcn - 1e-4 * zcn) / 2.0)
        if not len(check):
            return
        self.measured += len(check)
        c64 = c32.astype(np.float64)
        d = np.maximum(
            self.xn[check] + c64 @ c64 - 2.0 * (self.x[check].astype(np.float64) @ c64), 0.0
        )
        nearer = d < self.mind[check]
        rows = check[nearer]
        self.mind[rows] = d[nearer]
        self.threshold[rows] = (self.zn[rows] - self.slack[rows] - d[nearer]) / 2.0


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
        gone = comps.members(i)
        alive[gone] = False
        cover.drop(gone)
        cover.add(cover.x[i])
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
        if name != "kcenter" and w:
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
            cover.drop(comps.members(i))
            cover.add(cover.x[i])
    return Picks(np.array(picks, np.int64), np.array(scores))


def prefilter(score: F32, keep: int, groups: np.ndarray | None = None) -> np.ndarray:
    """The first stage of a two-stage selection: rows to keep, sorted by row.

    The most uncertain row of each component stands for it (the second stage can pick
    one per component anyway), and the `keep` components with the highest scores pass:
    survivors never crowd into a few videos or duplicate groups. Only the top rows are
    sorted (doubling their number while components repeat), not the whole pool.
    """
    score = np.asarray(score, np.float64)
    n = len(score)
    k = min(n, keep)
    while k > 0:
        if k < n:  # the top k, and every row tied with the k-th: ties go by row below
            kth = score[np.argpartition(-score, k - 1)[k - 1]]
            top = np.flatnonzero(score >= kth)
        else:
            top = np.arange(n)
        top = top[np.lexsort((top, -score[top]))]  # best first; ties by row
        if groups is None:
            return np.sort(top[:keep])
        _, first = np.unique(np.asarray(groups)[top], return_index=True)
        best = top[np.sort(first)]  # each component's best row, best first
        if len(best) >= keep or k == n:
            return np.sort(best[:keep])
        k = min(n, 2 * k)
    return np.arange(0)
