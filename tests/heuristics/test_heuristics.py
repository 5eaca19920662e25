"""Known-answer tests of the pure heuristics on hand-built arrays."""
import numpy as np
import pytest

from labelnext import heuristics as alf
from labelnext.utils import checks
from labelnext import knn

# Rows ordered from certain to uncertain: every uncertainty measure ranks them the same way.
PROBS = np.array([
    [1.00, 0.00, 0.00],
    [0.90, 0.05, 0.05],
    [0.60, 0.30, 0.10],
    [0.40, 0.35, 0.25],
    [1 / 3, 1 / 3, 1 / 3],
], dtype=np.float32)


def test_entropy_known_values():
    s = alf.entropy_scores(PROBS)
    assert s[0] == pytest.approx(0.0, abs=1e-6)
    assert s[4] == pytest.approx(np.log(3), rel=1e-5)
    assert list(np.argsort(s)) == [0, 1, 2, 3, 4]


def test_margin_and_least_confidence_known_values():
    np.testing.assert_allclose(alf.margin_scores(PROBS), [0.0, 0.15, 0.7, 0.95, 1.0], atol=1e-6)
    np.testing.assert_allclose(alf.least_confidence_scores(PROBS), [0.0, 0.1, 0.4, 0.6, 2 / 3], atol=1e-6)


@pytest.mark.parametrize("method", ["entropy", "margin", "least_confidence", "combined"])
def test_uncertainty_selection_keeps_top_half(method):
    mask, scores = alf.uncertainty_selection(PROBS, threshold_percentile=50, method=method)
    assert mask.tolist() == [False, False, True, True, True]
    assert np.argmax(scores) == 4


def test_combined_is_entropy_or_margin():
    # Row 0 is high on margin only, row 1 high on entropy only: combined keeps both.
    probs = np.array([[0.5, 0.5, 0.0, 0.0], [0.4, 0.2, 0.2, 0.2], [0.97, 0.01, 0.01, 0.01], [0.9, 0.1, 0.0, 0.0]])
    ent, mar = alf.entropy_scores(probs), alf.margin_scores(probs)
    assert np.argmax(mar) == 0 and np.argmax(ent) == 1
    mask, _ = alf.uncertainty_selection(probs, 75, "combined")
    assert mask.tolist() == [True, True, False, False]


def test_select_top_orders_and_breaks_ties_with_seed():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.3])
    top = alf.select_top(scores, 3, random_state=0)
    assert set(top[:2].tolist()) == {1, 3} and top[2] == 2
    runs = {tuple(alf.select_top(scores, 2, random_state=s)) for s in range(20)}
    assert runs == {(1, 3), (3, 1)}  # ties really are broken at random
    np.testing.assert_array_equal(alf.select_top(scores, 2, random_state=7), alf.select_top(scores, 2, random_state=7))


def test_select_top_large_input_uses_partial_path():
    rng = np.random.default_rng(0)
    scores = rng.random(10_000)
    top = alf.select_top(scores, 10, random_state=0)
    np.testing.assert_array_equal(top, np.argsort(-scores)[:10])


def test_knn_exact_known_answer_and_cosine():
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]], dtype=np.float32)
    q = np.array([[0.9, 0.0], [4.0, 0.0]], dtype=np.float32)
    d, i = knn.knn_search(q, ref, 2)
    np.testing.assert_array_equal(i, [[1, 0], [2, 1]])
    np.testing.assert_allclose(d, [[0.1, 0.9], [1.0, 3.0]], atol=1e-5)
    d, i = knn.knn_search(np.array([[1.0, 1.0]]), np.array([[2.0, 2.0], [1.0, 0.0]]), 2, metric="cosine")
    np.testing.assert_array_equal(i, [[0, 1]])
    np.testing.assert_allclose(d, [[0.0, 1 - np.cos(np.pi / 4)]], atol=1e-5)


def test_knn_exclude_self_and_hnsw_agree_with_exact():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 16)).astype(np.float32)
    de, ie = knn.knn_search(x, x, 5, exclude_self=True, method="exact")
    assert not (ie == np.arange(500)[:, None]).any()
    dh, ih = knn.knn_search(x, x, 5, exclude_self=True, method="hnsw", random_state=0)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ie, ih)])
    assert recall > 0.95
    np.testing.assert_allclose(np.sort(de, axis=1)[:, 0], de[:, 0])


def test_diversity_known_clusters():
    # Two tight clusters and one far member per cluster: those two are "far from centroid".
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.05, size=(20, 2)) + [0, 0]
    b = rng.normal(0, 0.05, size=(20, 2)) + [10, 10]
    x = np.vstack([a, [[1.5, 0.0]], b, [[10.0, 11.5]]]).astype(np.float32)
    res = alf.diversity_selection(x, n_clusters=2, distance_percentile=96, random_state=0, standardized=True)
    assert np.flatnonzero(res["mask"]).tolist() == [20, 41]
    assert len(set(res["clusters"][:21])) == 1 and res["clusters"][0] != res["clusters"][30]
    # Each representative sits in its own cluster, closest to the centre.
    for c, r in enumerate(res["representatives"]):
        assert res["clusters"][r] == c
        assert res["scores"][r] == res["scores"][res["clusters"] == c].min()


def test_novelty_far_items_score_highest():
    labeled = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]])
    pool = np.array([[0.05, 0.05], [3.0, 3.0], [1.0, 0.0]])
    x = np.vstack([labeled, pool]).astype(np.float32)
    mask = np.array([True] * 3 + [False] * 3)
    keep, scores = alf.novelty_selection(x, mask, k_neighbors=2, novelty_percentile=50, standardized=True)
    assert keep.tolist() == [False, True, True]
    assert np.argsort(scores).tolist() == [0, 2, 1]


def test_intersection_ranks_and_fills():
    masks = {"u": np.array([1, 1, 1, 0, 0], bool), "d": np.array([1, 1, 0, 1, 0], bool), "n": np.array([0, 1, 1, 1, 0], bool)}
    scores = {"u": np.array([5, 4, 3, 2, 1.0]), "d": np.array([5, 4, 3, 2, 1.0]), "n": np.array([5, 4, 3, 2, 1.0])}
    sel, info = alf.intersection_selection(masks, scores)
    assert sel.tolist() == [1] and info["n_intersection"] == 1 and not info["filled"]
    sel, info = alf.intersection_selection(masks, scores, budget=3, random_state=0)
    assert sel.tolist() == [1, 0, 2] and info["n_filled"] == 2 and info["filled"]
    assert info["pairwise"] == {"u&d": 2, "u&n": 2, "d&n": 2}


def test_empty_intersection_is_not_an_error():
    masks = {"u": np.array([1, 0], bool), "d": np.array([0, 1], bool)}
    scores = {"u": np.array([1.0, 0.0]), "d": np.array([0.0, 1.0])}
    sel, info = alf.intersection_selection(masks, scores)
    assert sel.size == 0 and info["n_intersection"] == 0
    sel, info = alf.intersection_selection(masks, scores, budget=2, random_state=0)
    assert sorted(sel.tolist()) == [0, 1] and info["n_filled"] == 2


def test_class_balance_and_balanced_pick():
    bal = alf.class_balance(np.array([0, 0, 1, 2, 2, 2, -1]), 3, target_per_class=2)
    assert bal["counts"] == [2, 1, 3] and bal["shortfall"] == [0, 1, 0] and not bal["met"]
    picked = alf.balanced_pick(np.array([10, 11, 12, 13, 14, 15]), np.array([2, 2, 2, 0, -1, 1]), 3, 2)
    assert picked.tolist() == [10, 11, 13, 15]


def test_standardize_handles_tiny_magnitudes():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(100, 4)) * 1e-11).astype(np.float32)
    z = knn.standardize(x)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: checks.check_probs(np.array([[0.5, np.nan]])), "NaN"),
        (lambda: checks.check_probs(np.array([[0.5, 0.7]])), "sum to 1"),
        (lambda: checks.check_probs(np.array([0.5, 0.5])), "2-D"),
        (lambda: alf.uncertainty_selection(PROBS, 101), "threshold_percentile must be a number between 0 and 100"),
        (lambda: alf.uncertainty_selection(PROBS, 50, "bald"), r"method must be one of \['entropy'"),
        (lambda: alf.diversity_selection(np.ones((5, 2)), n_clusters=6), "n_clusters must be an integer between 1 and 5"),
        (lambda: alf.novelty_selection(np.ones((5, 2)), np.array([1, 1, 0, 0, 0], bool), k_neighbors=3), "k_neighbors must be an integer between 1 and 2"),
        (lambda: alf.novelty_selection(np.ones((3, 2)), np.zeros(3, bool)), "labeled set is empty"),
        (lambda: checks.check_embeddings(np.array([[1.0, np.inf]])), "NaN or infinite"),
        (lambda: alf.select_top(np.ones(3), 4), "k \\(budget\\) must be an integer between 0 and 3"),
        (lambda: alf.intersection_selection({"u": np.ones(3, bool)}, {"u": np.ones(3)}, budget=4), "budget must be"),
    ],
)
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_standardize_scales_features_far_below_1e_11():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 3)) * 1e-14).astype(np.float64)
    x[:, 2] = 5e-14  # a constant feature stays constant (std replaced by 1), not blown up
    z = knn.standardize(x)
    np.testing.assert_allclose(z[:, :2].std(axis=0), 1.0, rtol=1e-3)
    np.testing.assert_allclose(z[:, 2], 0.0, atol=1e-6)
