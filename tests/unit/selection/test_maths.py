"""The selection strategies of `smartray.selection.maths` against brute force on small pools.

Each brute force is written from the strategy's definition, not from the code: a greedy
loop over the rows still alive, a component removed by comparing group ids, distances
recomputed in float64 from the coordinates.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smartray.predict.scorer import mutual_information, uncertainty
from smartray.selection import maths

SETTINGS = settings(max_examples=60, deadline=None)


# -- data ------------------------------------------------------------------------------------


@st.composite
def component_ids(draw, n=None, max_n=24):
    """A component id per row: some shared, arbitrary int64 values (not 0..k-1)."""
    n = draw(st.integers(1, max_n)) if n is None else n
    k = draw(st.integers(1, n))
    ids = draw(st.lists(st.integers(-(2**40), 2**40), min_size=k, max_size=k, unique=True))
    return np.array(draw(st.lists(st.sampled_from(ids), min_size=n, max_size=n)), np.int64)


def int_points(n, dim, low=-3, high=3):
    """Integer-valued float32 coordinates: every distance is exact, ties are common."""
    return hnp.arrays(np.int64, (n, dim), elements=st.integers(low, high)).map(
        lambda a: a.astype(np.float32)
    )


@st.composite
def probabilities(draw, n, classes):
    """Class probabilities from small integer weights (ties and one-hot rows included)."""
    w = draw(hnp.arrays(np.int64, (n, classes), elements=st.integers(0, 6)))
    w[:, 0] += w.sum(axis=1) == 0  # no all-zero row
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def float_scores(n):
    """float32 scores, often tied."""
    ties = st.sampled_from([0.0, 0.5, 1.0])
    return hnp.arrays(np.float32, n, elements=st.one_of(ties, st.floats(-10, 10, width=32)))


def clustered(seed, n=2000, dim=64, clusters=20, spread=6.0):
    """Gaussian blobs around `clusters` random centres, float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * spread
    x = centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim))
    return x.astype(np.float32)


def n_components(groups):
    return len(np.unique(groups))


# -- brute force -----------------------------------------------------------------------------


def greedy_by_score(score, budget, groups):
    """The highest score among the rows alive (lowest row on ties), then drop its component."""
    score = np.asarray(score, np.float64)
    alive = np.ones(len(score), bool)
    picks = []
    while len(picks) < budget and alive.any():
        best = max(np.flatnonzero(alive).tolist(), key=lambda r: (score[r], -r))
        picks.append(best)
        alive[groups == groups[best]] = False
    return picks


def sq_dist(x, c):
    """Squared distances of every row of `x` to the point `c`, from the differences."""
    return ((np.asarray(x, np.float64) - np.asarray(c, np.float64)) ** 2).sum(axis=1)


def farthest_first(x, budget, groups, centers=None, seed=0):
    """Greedy farthest-point picks, every distance computed in full (no pruning).

    Without centers the first pick is the documented seeded draw: the same `rng.choice`.
    """
    n = len(x)
    mind = np.full(n, np.inf)
    for c in [] if centers is None else centers:
        mind = np.minimum(mind, sq_dist(x, c))
    alive = np.ones(n, bool)
    rng = np.random.default_rng(seed)
    picks, scores = [], []
    while len(picks) < budget and alive.any():
        if np.isinf(mind[alive]).all():  # nothing covered yet: a seeded draw
            i = int(rng.choice(np.flatnonzero(alive)))
        else:
            i = int(np.where(alive, mind, -1.0).argmax())
        picks.append(i)
        scores.append(math.sqrt(mind[i]))
        alive[groups == groups[i]] = False
        mind = np.minimum(mind, sq_dist(x, x[i]))
    return picks, scores


def gradient_embeddings(probs, embedding):
    """BADGE's `(p - onehot(argmax p)) x e`, formed explicitly as flattened outer products."""
    probs = np.asarray(probs, np.float64)
    out = []
    for p, e in zip(probs, np.asarray(embedding, np.float64), strict=True):
        a = p.copy()
        a[np.argmax(p)] -= 1.0
        out.append(np.outer(a, e).ravel())
    return np.array(out)


def min_pairwise(x):
    return min(
        float(np.linalg.norm(x[i].astype(np.float64) - x[j]))
        for i, j in itertools.combinations(range(len(x)), 2)
    )


# -- top_scores: least-confidence, margin, entropy, BALD -------------------------------------


@given(st.data())
@SETTINGS
def test_top_scores_takes_the_highest_score_left_one_per_component(data):
    groups = data.draw(component_ids())
    n = len(groups)
    ties = st.sampled_from([-1.0, 0.0, 0.25, 0.5, 3.0])
    score = np.array(data.draw(st.lists(ties, min_size=n, max_size=n)))
    budget = data.draw(st.integers(0, n + 2))
    picks = maths.top_scores(score.astype(np.float32), budget, groups)
    assert picks.index.tolist() == greedy_by_score(score, budget, groups)
    assert picks.score.tolist() == score[picks.index].tolist()


def ranked_as_choose_does(strategy, u):
    """Higher = more uncertain, as `pipeline.uncertainty_of` feeds `top_scores`."""
    if strategy == "margin":
        return 1.0 - u["margin"].astype(np.float64)
    if strategy == "least-confidence":
        return 1.0 - u["confidence"].astype(np.float64)
    return u["entropy"].astype(np.float64)


def by_definition(strategy, probs):
    """Margin (top two apart), confidence (top) or entropy (nats), from sorted rows."""
    p = np.sort(probs.astype(np.float64), axis=1)[:, ::-1]
    if strategy == "margin":
        return p[:, 0] - (p[:, 1] if p.shape[1] > 1 else 0.0)
    if strategy == "least-confidence":
        return p[:, 0]
    return np.array([-sum(q * math.log(q) for q in row if q > 0) for row in p])


@pytest.mark.parametrize("strategy", ["margin", "least-confidence", "entropy"])
@given(data=st.data())
@SETTINGS
def test_uncertainty_strategies_pick_the_most_uncertain_row_left(strategy, data):
    groups = data.draw(component_ids())
    n = len(groups)
    probs = data.draw(probabilities(n, data.draw(st.integers(1, 4))))
    u = uncertainty(probs)
    stored = u["confidence" if strategy == "least-confidence" else strategy].astype(np.float64)
    np.testing.assert_allclose(stored, by_definition(strategy, probs), atol=1e-6)
    # most uncertain: the smallest margin or confidence, the largest entropy
    uncertain = stored if strategy == "entropy" else -stored
    budget = data.draw(st.integers(1, n + 1))
    picks = maths.top_scores(ranked_as_choose_does(strategy, u), budget, groups).index.tolist()
    assert len(picks) == min(budget, n_components(groups))
    alive = np.ones(n, bool)
    for i in picks:  # each pick: at least as uncertain as every row still in the pool
        assert alive[i]
        assert uncertain[i] == uncertain[alive].max()
        alive[groups == groups[i]] = False
    assert picks == greedy_by_score(uncertain, budget, groups)  # ties: the lower row


def test_margin_strategy_picks_the_rows_whose_top_two_classes_are_closest():
    probs = np.array([[0.5, 0.45, 0.05],  # margin 0.05
                      [0.9, 0.05, 0.05],  # 0.85
                      [0.4, 0.3, 0.3],    # 0.10 (least confident, but not the smallest margin)
                      [0.48, 0.47, 0.05],  # 0.01, same video as row 0
                      [0.6, 0.35, 0.05]], np.float32)  # 0.25  # fmt: skip
    groups = np.array([7, 8, 9, 7, 10])
    picks = maths.top_scores(1.0 - uncertainty(probs)["margin"].astype(np.float64), 3, groups)
    assert picks.index.tolist() == [3, 2, 4]  # row 0 shares row 3's video


# -- k-center greedy -------------------------------------------------------------------------


@given(st.data())
@SETTINGS
def test_kcenter_greedy_equals_farthest_first_recomputing_every_distance(data):
    groups = data.draw(component_ids(max_n=30))
    n = len(groups)
    dim = data.draw(st.sampled_from([1, 2, 3, 5, 8, 40]))  # 40 > rank 32: residual bound
    x = data.draw(int_points(n, dim))
    centers = data.draw(
        st.one_of(st.none(), st.integers(0, 4).flatmap(lambda m: int_points(m, dim)))
    )
    budget = data.draw(st.integers(1, n + 1))
    seed = data.draw(st.integers(0, 2**32))
    got = maths.kcenter_greedy(x, budget, groups, centers, seed)
    want, scores = farthest_first(x, budget, groups, centers, seed)
    assert got.index.tolist() == want
    np.testing.assert_array_equal(got.score, scores)


@pytest.mark.parametrize("with_centers", [False, True])
def test_kcenter_greedy_equals_farthest_first_on_clustered_gaussians(with_centers):
    x = clustered(0)
    groups = np.arange(len(x)) // 3  # components of three rows
    centers = clustered(1, n=100) if with_centers else None
    got = maths.kcenter_greedy(x, 50, groups, centers, seed=5)
    want, scores = farthest_first(x, 50, groups, centers, seed=5)
    assert got.index.tolist() == want
    np.testing.assert_allclose(got.score, scores, rtol=1e-9)


def test_coverage_measures_far_fewer_rows_than_every_row_per_pick(monkeypatch):
    made = []

    class Recorded(maths.Coverage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(maths, "Coverage", Recorded)
    x = clustered(2)
    maths.kcenter_greedy(x, 50, np.arange(len(x)), seed=0)
    assert len(made) == 1
    assert made[0].measured < 20_000  # 8,247 here; 2,000 rows x 50 picks = 100,000 unpruned


def test_nearest_is_the_smallest_squared_distance_across_center_blocks():
    rng = np.random.default_rng(3)
    x = rng.integers(-4, 5, (40, 6)).astype(np.float32)
    centers = rng.integers(-4, 5, (maths.CHUNK // 8 + 37, 6)).astype(np.float32)  # two blocks
    want = np.array([sq_dist(centers, row).min() for row in x])
    np.testing.assert_array_equal(maths.nearest(x, centers), want)


@pytest.mark.parametrize("seed", range(5))
def test_kcenter_picks_lie_farther_apart_than_random_picks(seed):
    x = clustered(10 + seed, n=320, dim=16, clusters=8, spread=10.0)
    groups = np.arange(len(x))
    kc = maths.kcenter_greedy(x, 8, groups, seed=seed).index
    rnd = maths.random_picks(len(x), 8, groups, seed=seed).index
    assert min_pairwise(x[kc]) > min_pairwise(x[rnd])


# -- BADGE -----------------------------------------------------------------------------------


@given(st.data())
@SETTINGS
def test_badge_starts_at_the_largest_gradient_norm_and_scores_explicit_distances(data):
    groups = data.draw(component_ids(max_n=16))
    n = len(groups)
    probs = data.draw(probabilities(n, data.draw(st.integers(2, 4))))
    dim = data.draw(st.integers(1, 5))
    emb = data.draw(hnp.arrays(np.float32, (n, dim), elements=st.floats(-4, 4, width=32)))
    budget = data.draw(st.integers(1, n + 1))
    picks = maths.badge(probs, emb, budget, groups, seed=data.draw(st.integers(0, 1000)))
    g = gradient_embeddings(probs, emb)
    norms = np.linalg.norm(g, axis=1)
    a = probs.astype(np.float64) - np.eye(probs.shape[1])[probs.argmax(axis=1)]
    by_factors = np.linalg.norm(a, axis=1) * np.linalg.norm(emb.astype(np.float64), axis=1)
    np.testing.assert_allclose(norms, by_factors, rtol=1e-9, atol=1e-12)  # |a x e| = |a| |e|
    first = picks.index[0]
    assert norms[first] >= norms.max() * (1 - 1e-9)
    assert len(picks.index) == min(budget, n_components(groups))
    # each later score: the squared distance, between explicit outer products, to the
    # nearest earlier pick (what the factorised formula must equal)
    scale = max(1.0, float((norms**2).max()))
    for k in range(1, len(picks.index)):
        d = ((g[picks.index[:k]] - g[picks.index[k]]) ** 2).sum(axis=1).min()
        assert picks.score[k] == pytest.approx(d, rel=1e-9, abs=1e-9 * scale)


def test_factorised_distance_equals_the_outer_product_distance():
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(5), 6).astype(np.float32)
    emb = rng.normal(size=(6, 7)).astype(np.float32)
    a, e = maths.gradient_factors(probs, emb)
    for i, j in itertools.combinations(range(6), 2):
        explicit = np.outer(a[i], e[i]) - np.outer(a[j], e[j])
        factorised = (
            (a[i] @ a[i]) * (e[i] @ e[i])
            + (a[j] @ a[j]) * (e[j] @ e[j])
            - 2.0 * (a[i] @ a[j]) * (e[i] @ e[j])
        )
        assert factorised == pytest.approx((explicit**2).sum(), rel=1e-9)
    onehot = np.eye(5)[probs.argmax(axis=1)]
    np.testing.assert_allclose(a, probs.astype(np.float64) - onehot)


def class_pool(seed, per_class=40, classes=4, dim=8):
    """Confident rows of every class, and less confident (larger gradient) rows of class 0."""
    rng = np.random.default_rng(seed)
    predicted = np.repeat(np.arange(classes), per_class)
    probs = np.full((len(predicted), classes), 0.1 / (classes - 1))
    probs[np.arange(len(predicted)), predicted] = 0.9
    probs[predicted == 0] = 0.6 / (classes - 1)
    probs[predicted == 0, 0] = 0.4
    probs += rng.uniform(0, 0.01, probs.shape)
    probs /= probs.sum(axis=1, keepdims=True)
    emb = 1.0 + 0.01 * rng.normal(size=(len(predicted), dim))
    return probs.astype(np.float32), emb.astype(np.float32), predicted


@pytest.mark.parametrize(("seed", "budget"), [(0, 4), (1, 4), (2, 6), (3, 3), (4, 8)])
def test_badge_spans_more_predicted_classes_than_the_largest_gradients(seed, budget):
    probs, emb, predicted = class_pool(seed)
    assert (probs.argmax(axis=1) == predicted).all()
    picks = maths.badge(probs, emb, budget, np.arange(len(probs)), seed=seed).index
    norms = np.linalg.norm(gradient_embeddings(probs, emb), axis=1)
    by_norm = np.argsort(-norms, kind="stable")[:budget]
    spanned = len(set(predicted[picks].tolist()))
    assert spanned > len(set(predicted[by_norm].tolist()))
    assert spanned >= min(budget, 4) - 1


def test_badge_is_the_same_for_a_seed_and_differs_across_seeds():
    rng = np.random.default_rng(8)
    probs = rng.dirichlet(np.ones(4), 300).astype(np.float32)
    emb = rng.normal(size=(300, 8)).astype(np.float32)
    groups = np.arange(300) // 2
    runs = [maths.badge(probs, emb, 20, groups, seed=s) for s in (3, 3, 4)]
    assert runs[0].index.tolist() == runs[1].index.tolist()
    assert runs[0].score.tolist() == runs[1].score.tolist()
    assert runs[0].index.tolist() != runs[2].index.tolist()
    assert runs[0].index[0] == runs[2].index[0]  # the largest gradient, whatever the seed


# -- weighted --------------------------------------------------------------------------------


@given(st.data())
@SETTINGS
def test_weighted_with_one_objective_equals_top_scores(data):
    groups = data.draw(component_ids())
    n = len(groups)
    # on a grid of 1/64: min-max scaling keeps distinct values distinct (wider ranges of
    # float32 may collapse, e.g. -1e-38 and 0 beside -1 both scale to 1.0: a tie)
    grid = st.integers(-640, 640).map(lambda k: k / 64)
    score = data.draw(hnp.arrays(np.float32, n, elements=grid))
    name = data.draw(st.sampled_from(["margin", "least-confidence", "entropy", "bald"]))
    weight = data.draw(st.sampled_from([0.5, 1.0, 2.0]))
    budget = data.draw(st.integers(1, n + 1))
    got = maths.weighted({name: score}, {name: weight}, budget, groups)
    assert got.index.tolist() == maths.top_scores(score, budget, groups).index.tolist()


@given(st.data())
@SETTINGS
def test_weighted_class_balance_keeps_class_counts_within_one(data):
    groups = data.draw(component_ids(max_n=30))
    n = len(groups)
    predicted = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    score = data.draw(hnp.arrays(np.float32, n, elements=st.floats(0, 1, width=32)))
    budget = data.draw(st.integers(1, n + 1))
    picks = maths.weighted({"margin": score}, {"margin": 1.0}, budget, groups, predicted=predicted)
    classes = set(predicted.tolist())
    counts = dict.fromkeys(classes, 0)
    alive = np.ones(n, bool)
    for i in picks.index.tolist():
        left = set(predicted[alive].tolist())
        fewest = min(counts[c] for c in left)
        assert alive[i]
        assert counts[predicted[i]] == fewest  # from a class with the fewest picks so far
        eligible = alive & np.isin(predicted, [c for c in left if counts[c] == fewest])
        assert score[i] == score[eligible].max()  # the best of those
        counts[predicted[i]] += 1
        if left == classes:  # every class had candidates left
            assert max(counts.values()) - min(counts.values()) <= 1
        alive[groups == groups[i]] = False
    assert len(picks.index) == min(budget, n_components(groups))


@given(st.data())
@SETTINGS
def test_weighted_with_only_a_kcenter_weight_picks_the_farthest_from_the_centers(data):
    groups = data.draw(component_ids(max_n=30))
    n = len(groups)
    dim = data.draw(st.sampled_from([1, 2, 4, 40]))
    x = data.draw(int_points(n, dim))
    centers = data.draw(st.integers(1, 4).flatmap(lambda m: int_points(m, dim)))
    budget = data.draw(st.integers(1, n + 1))
    got = maths.weighted({}, {"kcenter": 1.0}, budget, groups, embedding=x, centers=centers)
    mind = np.min([sq_dist(x, c) for c in centers], axis=0)
    assert got.index[0] == int(np.argmax(mind))
    assert got.index.tolist() == maths.kcenter_greedy(x, budget, groups, centers).index.tolist()


def test_weighted_needs_embeddings_for_a_kcenter_weight():
    with pytest.raises(ValueError, match="kcenter weight needs the embeddings"):
        maths.weighted({}, {"kcenter": 1.0}, 1, np.arange(3))


def test_normalised_maps_the_pool_minimum_to_0_and_maximum_to_1():
    # its docstring: "Min-max to 0..1 over the pool (all 0 when constant)"
    np.testing.assert_allclose(maths.normalised(np.array([2.0, 3.0, 2.5])), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(maths.normalised(np.array([-3.0, -1.0])), [0.0, 1.0])
    np.testing.assert_array_equal(maths.normalised(np.array([0.5, 0.5])), [0.0, 0.0])


# -- every strategy: one pick per component --------------------------------------------------


def run_strategy(strategy, groups, budget, data):
    n = len(groups)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    probs = rng.dirichlet(np.ones(3), n).astype(np.float32)
    emb = rng.normal(size=(n, 4)).astype(np.float32)
    if strategy == "random":
        return maths.random_picks(n, budget, groups, seed=1)
    if strategy == "top_scores":
        return maths.top_scores(1.0 - uncertainty(probs)["margin"], budget, groups)
    if strategy == "kcenter":
        return maths.kcenter_greedy(emb, budget, groups, emb[:2] if n % 2 else None, seed=1)
    if strategy == "badge":
        return maths.badge(probs, emb, budget, groups, seed=1)
    return maths.weighted(
        {"margin": 1.0 - uncertainty(probs)["margin"]},
        {"margin": 1.0, "kcenter": 1.0},
        budget,
        groups,
        embedding=emb,
        predicted=probs.argmax(axis=1),
    )


@pytest.mark.parametrize("strategy", ["random", "top_scores", "kcenter", "badge", "weighted"])
@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_no_two_picks_share_a_component(strategy, data):
    groups = data.draw(component_ids(max_n=30))
    budget = data.draw(st.integers(1, len(groups) + 2))
    picks = run_strategy(strategy, groups, budget, data).index
    taken = groups[picks].tolist()
    assert len(set(picks.tolist())) == len(picks)
    assert len(set(taken)) == len(taken)
    if budget >= n_components(groups):  # exactly one of each
        assert sorted(taken) == sorted(set(groups.tolist()))
    else:
        assert len(picks) == budget


# -- random, prefilter -----------------------------------------------------------------------


def test_random_picks_follow_the_seed():
    groups = np.arange(200) // 4
    same = [maths.random_picks(200, 20, groups, seed=7).index.tolist() for _ in range(2)]
    assert same[0] == same[1]
    others = {tuple(maths.random_picks(200, 20, groups, seed=s).index.tolist()) for s in range(10)}
    assert len(others) == 10
    assert maths.random_picks(200, 20, groups, seed=7).score.tolist() == [0.0] * 20


@given(st.data())
@SETTINGS
def test_prefilter_keeps_exactly_the_highest_scores(data):
    n = data.draw(st.integers(1, 40))
    score = data.draw(float_scores(n))
    keep = data.draw(st.integers(0, n + 2))
    kept = maths.prefilter(score, keep)
    assert kept.tolist() == sorted(set(kept.tolist()))  # by row, no row twice
    assert len(kept) == min(keep, n)
    rest = np.setdiff1d(np.arange(n), kept)
    if len(kept) and len(rest):
        assert score[kept].min() >= score[rest].max()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_prefilter_keeps_each_components_best_row_and_the_best_components(data):
    n = data.draw(st.integers(1, 40))
    score = data.draw(float_scores(n))
    groups = np.array(data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)))
    keep = data.draw(st.integers(0, n + 2))
    kept = maths.prefilter(score, keep, groups)
    assert len(set(groups[kept].tolist())) == len(kept)  # one row per component
    assert len(kept) == min(keep, len(set(groups.tolist())))
    for i in kept:  # each survivor is its component's highest score
        assert score[i] >= score[groups == groups[i]].max()
    best = {g: score[groups == g].max() for g in set(groups.tolist())}
    out = [b for g, b in best.items() if g not in set(groups[kept].tolist())]
    if len(kept) and out:
        assert min(score[kept]) >= max(out)


# -- Components ------------------------------------------------------------------------------


@given(component_ids(max_n=40))
@SETTINGS
def test_components_members_are_the_rows_with_the_same_id(groups):
    comps = maths.Components(groups)
    for row in range(len(groups)):
        assert sorted(comps.members(row).tolist()) == np.flatnonzero(groups == groups[row]).tolist()


# -- mutual information (BALD) ---------------------------------------------------------------


def test_mutual_information_is_zero_when_every_pass_agrees():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0], [0.2, 0.8]], np.float32)
    passes = np.stack([probs] * 5)
    np.testing.assert_allclose(mutual_information(passes), 0.0, atol=1e-6)


def test_mutual_information_is_high_when_confident_passes_disagree():
    passes = np.array([[[0.99, 0.01], [0.5, 0.5]], [[0.01, 0.99], [0.5, 0.5]]], np.float32)
    mi = mutual_information(passes)
    assert mi[0] > 0.5  # ln 2 - H(0.99) = 0.637: each pass is sure, they disagree
    assert mi[1] == pytest.approx(0.0, abs=1e-6)  # each pass unsure, all agree


def test_mutual_information_is_the_entropy_of_the_mean_minus_the_mean_entropy():
    def h(p):
        return -sum(q * math.log(q) for q in p if q > 0)

    passes = np.array([[[0.9, 0.1]], [[0.5, 0.5]]], np.float32)
    want = h([0.7, 0.3]) - (h([0.9, 0.1]) + h([0.5, 0.5])) / 2
    assert want == pytest.approx(0.1017492, abs=1e-7)
    assert mutual_information(passes)[0] == pytest.approx(want, abs=1e-6)
