"""`pipeline.choose`: which scores feed which strategy, the two-stage selection, and pick
indices that point into the pool. Hand-built `Inputs`, no lake and no Ray."""

import subprocess
import sys

import numpy as np
import pytest

from smartray.errors import ConfigError
from smartray.predict.scorer import uncertainty
from smartray.selection import maths, pipeline
from smartray.selection.config import SelectConfig


def pool(n, seed=0, groups=None, mutual_info=None, centers=True, dim=8):
    """`n` scored candidates of 4 classes; mutual info all missing unless given."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(4), n).astype(np.float32)
    columns = {
        **uncertainty(probs),
        "mutual_info": np.full(n, np.nan, np.float32) if mutual_info is None else mutual_info,
    }
    return pipeline.Inputs(
        ids=[f"asset-{i:05d}" for i in range(n)],
        groups=np.arange(n, dtype=np.int64) if groups is None else groups,
        columns=columns,
        probabilities=probs,
        embedding=rng.normal(size=(n, dim)).astype(np.float32),
        centers=rng.normal(size=(5, dim)).astype(np.float32) if centers else None,
    )


def config(strategy, budget=5, **kw):
    return SelectConfig(experiment="exp", budget=budget, strategy=strategy, **kw)


def most_uncertain(inputs, keep):
    """Rows of the `keep` smallest margins (the default `prefilter_by`), by row: the
    smallest margin of each component stands for it."""
    best = {}
    for i in np.argsort(inputs.columns["margin"], kind="stable").tolist():
        best.setdefault(int(inputs.groups[i]), i)
    return np.sort(np.array(list(best.values())[:keep]))


def test_importing_the_pipeline_starts_no_ray():
    # in a fresh interpreter: this process may hold the suite's own Ray
    code = "import smartray.selection.pipeline, ray; print(ray.is_initialized())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("strategy", ["bald", "kcenter", "weighted"])
@pytest.mark.parametrize(
    "missing", [np.full(20, np.nan, np.float32), np.array([0.1] * 19 + [None], object)]
)
def test_bald_without_monte_carlo_scores_is_refused(strategy, missing):
    inputs = pool(20, mutual_info=missing)
    # bald itself, or bald as the first stage / an objective of a diversity strategy
    cfg = {
        "bald": config("bald"),
        "kcenter": config("kcenter", prefilter_over=10, prefilter_by="bald"),
        "weighted": config("weighted", weights={"bald": 1.0}),
    }[strategy]
    with pytest.raises(ConfigError, match="smartray score --mc-dropout"):
        pipeline.choose(inputs, cfg, seed=0)


def test_bald_with_monte_carlo_scores_picks_the_largest_mutual_information():
    mi = np.array([0.1, 0.9, 0.3, 0.8, 0.0, 0.7], np.float32)
    inputs = pool(6, mutual_info=mi, groups=np.array([0, 1, 2, 1, 3, 4]))
    picks, survivors = pipeline.choose(inputs, config("bald", budget=3), seed=0)
    assert picks.index.tolist() == [1, 5, 2]  # row 3 shares row 1's group
    assert survivors == 0


@pytest.mark.parametrize(
    ("strategy", "column", "smallest"),
    [
        ("margin", "margin", True),
        ("least-confidence", "confidence", True),
        ("entropy", "entropy", False),
    ],
)
def test_uncertainty_strategies_rank_by_their_own_column(strategy, column, smallest):
    inputs = pool(50, seed=1)
    picks, _ = pipeline.choose(inputs, config(strategy, budget=7), seed=0)
    values = inputs.columns[column]
    order = np.argsort(values if smallest else -values, kind="stable")[:7]
    assert picks.index.tolist() == order.tolist()


@pytest.mark.parametrize("strategy", ["kcenter", "badge", "weighted"])
def test_a_pool_over_prefilter_over_is_two_stage(strategy):
    inputs = pool(300, seed=2)
    cfg = config(strategy, budget=5, prefilter_over=100, prefilter_factor=4)
    picks, survivors = pipeline.choose(inputs, cfg, seed=3)
    assert survivors == 4 * 5
    assert len(picks.index) == 5
    assert set(picks.index.tolist()) <= set(most_uncertain(inputs, 20).tolist())
    # a pool of exactly prefilter_over rows is one stage
    _, one_stage = pipeline.choose(pool(100, seed=2), cfg, seed=3)
    assert one_stage == 0


def test_a_large_pool_at_cold_start_samples_its_first_stage_from_the_seed():
    inputs = pool(300, seed=2)
    inputs.columns, inputs.probabilities = {}, None  # no model: descriptors only
    cfg = config("kcenter", prefilter_over=100, prefilter_factor=4)
    picks, survivors = pipeline.choose(inputs, cfg, seed=3)
    assert survivors == 20  # 4 x the budget of 5
    sample = maths.prefilter(np.random.default_rng(3).random(300), 20, inputs.groups)
    want = maths.kcenter_greedy(inputs.embedding[sample], 5, inputs.groups[sample],
                                inputs.centers, 3)  # fmt: skip
    assert picks.index.tolist() == sample[want.index].tolist()
    again, _ = pipeline.choose(inputs, cfg, seed=3)
    assert again.index.tolist() == picks.index.tolist()


@pytest.mark.parametrize("strategy", ["kcenter", "badge"])
def test_two_stage_picks_map_back_to_pool_rows(strategy):
    inputs = pool(300, seed=4, groups=np.arange(300) // 2)
    picks, _ = pipeline.choose(
        inputs, config(strategy, budget=6, prefilter_over=50, prefilter_factor=5), seed=9
    )
    rows = most_uncertain(inputs, 30)
    emb, groups = inputs.embedding[rows], inputs.groups[rows]
    if strategy == "kcenter":
        local = maths.kcenter_greedy(emb, 6, groups, inputs.centers, 9)
    else:
        local = maths.badge(inputs.probabilities[rows], emb, 6, groups, 9)
    assert picks.index.tolist() == rows[local.index].tolist()
    assert picks.score.tolist() == local.score.tolist()
    # as pool rows: the same embeddings and groups the strategy saw
    np.testing.assert_array_equal(inputs.embedding[picks.index], emb[local.index])
    assert len(set(inputs.groups[picks.index].tolist())) == 6


@pytest.mark.parametrize("strategy", ["kcenter", "badge", "weighted"])
def test_two_stage_fills_the_budget_when_the_most_uncertain_rows_share_a_video(strategy):
    # 30 frames of one video are the most uncertain rows; 30 single images follow. The
    # pool has 31 components, so `select` accepts a budget of 3 (budget <= components)
    n = 60
    inputs = pool(n, seed=5, groups=np.r_[np.zeros(30, np.int64), np.arange(1, 31)])
    inputs.columns["margin"] = np.r_[np.full(30, 0.05), np.full(30, 0.6)].astype(np.float32)
    cfg = config(strategy, budget=3, prefilter_over=10, prefilter_factor=10)
    picks, survivors = pipeline.choose(inputs, cfg, seed=0)
    assert survivors == 30
    assert len(picks.index) == 3  # one frame of the video, and two more components


def test_a_zero_strength_is_no_objective_and_a_non_finite_one_is_refused():
    from pydantic import ValidationError

    from smartray.selection.config import SelectConfig

    cfg = SelectConfig(experiment="e", budget=3, strategy="weighted",
                       weights={"margin": 1.0, "bald": 0.0})  # fmt: skip
    assert cfg.weights == {"margin": 1.0}
    inputs = pool(40, seed=1)
    picks, _ = pipeline.choose(inputs, cfg, seed=0)  # bald's scores are never asked for
    assert len(picks.index) == 3
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValidationError, match="finite number >= 0"):
            SelectConfig(experiment="e", budget=3, weights={"margin": bad})
