import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from smartray.curate import lsh
from smartray.curate.groups import chain_edges, component_labels, group_names, parent_edges


def brute_pairs(sig, threshold):
    n = sig.shape[1]
    return {
        (i, j)
        for i, j in itertools.combinations(range(n), 2)
        if sum(int(w[i] ^ w[j]).bit_count() for w in sig) <= threshold
    }


def flip(word, bits):
    for b in bits:
        word ^= np.uint64(1) << np.uint64(b)
    return word


@given(st.lists(st.integers(0, 20), min_size=0, max_size=60), st.data())
@settings(max_examples=60, deadline=None)
def test_bucket_pairs_are_exactly_the_pairs_with_equal_keys(keys, data):
    keys = np.array(keys, dtype=np.uint64)
    marked = np.array(data.draw(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys))))
    want = {(i, j) for i, j in itertools.combinations(range(len(keys)), 2) if keys[i] == keys[j]}
    got = {tuple(p) for p in lsh.bucket_pairs(keys).tolist()}
    assert got == want
    if len(keys):
        inv = {tuple(p) for p in lsh.bucket_pairs(keys, involving=marked).tolist()}
        assert inv == {(i, j) for i, j in want if marked[i] or marked[j]}


def test_pairs_within_the_threshold_are_found_and_no_pair_beyond_it():
    rng = np.random.default_rng(3)
    centres = rng.integers(0, 2**64, size=(2, 40), dtype=np.uint64)
    sig = centres.copy()
    # each centre gets a copy 0..6 bits away
    copies = []
    for k in range(40):
        bits = rng.choice(128, size=int(rng.integers(0, 7)), replace=False)
        c = centres[:, k].copy()
        for b in bits:
            c[b // 64] = flip(c[b // 64], [b % 64])
        copies.append(c)
    sig = np.ascontiguousarray(np.concatenate([centres, np.stack(copies, axis=1)], axis=1))
    found = {tuple(p) for p in lsh.near_pairs(sig, lsh.band_positions(96, 20, 128), 8).tolist()}
    truth = brute_pairs(sig, 8)
    assert {(k, k + 40) for k in range(40)} <= truth
    assert found <= truth  # confirmation never keeps a pair beyond the threshold
    assert len(found) == len(truth)  # 6 bits apart: P(miss) = 1e-7 per pair with 96 bands


def test_recall_formula_matches_sampling():
    p = lsh.share_probability(10, 20, 128)
    assert 0.15 < p < 0.2
    assert lsh.recall_at(10, 96, 20, 128) > 0.9999
    assert lsh.recall_at(0, 1, 20, 128) == 1.0


def test_band_positions_are_the_same_every_run():
    a, b = lsh.band_positions(8, 20, 128), lsh.band_positions(8, 20, 128)
    assert (a == b).all()
    assert a.shape == (8, 20)
    assert a.max() < 128
    assert all(len(set(row)) == 20 for row in a.tolist())


def test_groups_are_components_named_by_smallest_id():
    ids = ["e", "a", "c", "d", "b", "f"]
    near = np.array([[0, 2]])  # e ~ c
    video = chain_edges([None, "v1", None, "v1", None, None])  # a, d frames of one video
    parents = parent_edges(ids, [None, None, None, None, "e", "zz"])  # b child of e
    labels = component_labels(len(ids), near, video, parents)
    assert group_names(ids, labels) == ["b", "a", "b", "a", "b", "f"]


def test_chain_edges_links_each_value_once():
    edges = chain_edges(np.array([3, -1, 3, 3, 7, 7]))
    assert sorted(map(tuple, edges.tolist())) == [(0, 2), (2, 3), (4, 5)]
    assert len(chain_edges([None, None])) == 0


def test_a_pair_far_apart_in_one_hash_is_not_kept_however_near_in_total():
    a = np.array([[0], [0]], dtype=np.uint64)
    far_in_phash = np.array([[2**15 - 1], [0]], dtype=np.uint64)  # 15 bits, all in word 0
    sig = np.ascontiguousarray(np.concatenate([a, far_in_phash], axis=1))
    bands = lsh.band_positions(200, 8, 128)
    assert lsh.near_pairs(sig, bands, 26).tolist() == [[0, 1]]
    assert lsh.near_pairs(sig, bands, 26, max_word=14).tolist() == []
    total, worst = lsh.distances(sig, np.array([[0, 1]]))
    assert (total.tolist(), worst.tolist()) == ([15], [15])
