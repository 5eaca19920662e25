"""Known-answer tests for the selection methods of the literature (strategies/<method>.py)."""
import numpy as np
import pytest

from labelnext.strategies import SelectionContext
from labelnext.strategies.badge import badge_select, badge_sq_distances, badge_strategy
from labelnext.strategies.bald import (
    BaldOptions,
    bald_scores,
    bald_select,
    bald_strategy,
    mc_dropout_probs,
)
from labelnext.strategies.cluster_margin import (
    cluster_margin_select,
    cluster_margin_strategy,
    round_robin,
)
from labelnext.strategies.coreset import coreset_select, coreset_strategy
from labelnext.strategies.dbal import dbal_select, dbal_strategy
from labelnext.strategies.probcover import default_delta, probcover_select, probcover_strategy
from labelnext.strategies.typiclust import typiclust_select, typiclust_strategy


# --------------------------------------------------------------------------- fixtures
def grids(centres):
    """A 5 x 5 grid of unit spacing at each centre: the middle point (row 12 of each grid)
    is the unique most typical one."""
    g = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0), indexing="ij"), axis=-1).reshape(25, 2)
    return np.concatenate([g + c for c in centres]).astype(np.float32)


def softmax_rows(rng, n, c, temperature=1.0):
    z = rng.randn(n, c) / temperature
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def blobs(sizes, dim=3, scale=10.0, noise=0.05, seed=0):
    """Tight blobs along the coordinate axes; returns embeddings and each row's blob."""
    rng = np.random.RandomState(seed)
    which = np.repeat(np.arange(len(sizes)), sizes)
    centres = scale * np.eye(dim)[which]
    return (centres + noise * rng.randn(which.size, dim)).astype(np.float32), which


def random_problem(n=80, n_labeled=20, d=6, c=3, seed=0):
    rng = np.random.RandomState(seed)
    emb = rng.randn(n, d).astype(np.float32)
    probs = softmax_rows(rng, n, c)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, n_labeled, replace=False)] = True
    mc = np.stack([softmax_rows(rng, n, c) for _ in range(4)])
    return probs, emb, mask, mc


# Every method as f(probs, emb, mask, mc_probs, budget, random_state) -> rows.
METHODS = {
    "typiclust": lambda p, e, m, mc, b, rs: typiclust_select(e, m, b, random_state=rs),
    "probcover": lambda p, e, m, mc, b, rs: probcover_select(e, m, b, random_state=rs),
    "coreset": lambda p, e, m, mc, b, rs: coreset_select(e, m, b, random_state=rs),
    "badge": lambda p, e, m, mc, b, rs: badge_select(p, e, m, b, random_state=rs),
    "bald": lambda p, e, m, mc, b, rs: bald_select(mc, m, b, random_state=rs),
    "cluster_margin": lambda p, e, m, mc, b, rs: cluster_margin_select(p, e, m, b, random_state=rs),
    "dbal": lambda p, e, m, mc, b, rs: dbal_select(p, e, m, b, random_state=rs),
}
ADAPTERS = {
    "typiclust": typiclust_strategy, "probcover": probcover_strategy, "coreset": coreset_strategy,
    "badge": badge_strategy, "bald": bald_strategy, "cluster_margin": cluster_margin_strategy, "dbal": dbal_strategy,
}


# --------------------------------------------------------------------------- typiclust
@pytest.mark.parametrize("scale", [1.0, 1e-11])  # untrained embeddings can be ~1e-11: standardised first
def test_typiclust_picks_the_middle_of_each_dense_cluster(scale):
    x = grids([(0, 0), (100, 0), (0, 100)]) * scale
    rows = typiclust_select(x, np.zeros(75, dtype=bool), 3, random_state=0)
    assert sorted(rows) == [12, 37, 62]


def test_typiclust_skips_the_cluster_that_already_has_a_label():
    x = grids([(0, 0), (100, 0), (0, 100)])
    mask = np.zeros(75, dtype=bool)
    mask[0] = True  # a corner of the first grid is labeled
    rows = typiclust_select(x, mask, 2, random_state=0)
    assert sorted(rows) == [37, 62]


# --------------------------------------------------------------------------- coreset
def test_coreset_picks_the_far_outlier_first_then_the_next_farthest():
    x = np.array([[0.0], [0.1], [0.2], [1.0], [2.0], [50.0], [10.0]], dtype=np.float32)
    x = np.hstack([x, np.zeros_like(x)])
    mask = np.array([1, 1, 1, 0, 0, 0, 0], dtype=bool)
    np.testing.assert_array_equal(coreset_select(x, mask, 3, random_state=0), [5, 6, 4])


def test_coreset_without_labels_starts_anywhere_then_goes_far():
    x = np.array([[0.0, 0.0], [0.1, 0.0], [9.0, 0.0], [10.0, 0.0]], dtype=np.float32)
    rows = coreset_select(x, np.zeros(4, dtype=bool), 2, random_state=0)
    assert {rows[0] // 2, rows[1] // 2} == {0, 1}  # one from each end


# --------------------------------------------------------------------------- probcover
def test_probcover_covers_three_blobs_with_three_picks_largest_first():
    x, which = blobs([12, 9, 6])
    rows = probcover_select(x, np.zeros(27, dtype=bool), 3, delta=0.5, random_state=0)
    np.testing.assert_array_equal(which[rows], [0, 1, 2])


def test_probcover_skips_covered_blobs_then_falls_back_to_random():
    x, which = blobs([12, 9, 6])
    mask = np.zeros(27, dtype=bool)
    mask[0] = True  # blob 0 is covered by a labeled item
    rows = probcover_select(x, mask, 4, delta=0.5, random_state=0)
    np.testing.assert_array_equal(which[rows[:2]], [1, 2])
    assert len(set(rows)) == 4 and not mask[rows].any()


def test_probcover_default_delta_holds_about_k_neighbours():
    x = np.random.RandomState(0).randn(500, 5).astype(np.float32)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    delta = default_delta(x, 10, random_state=0)
    within = (np.linalg.norm(unit[:, None] - unit[None], axis=2) <= delta).sum(axis=1) - 1
    assert 9 <= np.median(within) <= 11


def test_probcover_rejects_a_radius_off_the_unit_sphere():
    x, _ = blobs([5, 5])
    with pytest.raises(ValueError, match="delta must be a number in"):
        probcover_select(x, np.zeros(10, dtype=bool), 2, delta=3.0)


# --------------------------------------------------------------------------- badge
def test_badge_implicit_distance_equals_the_materialised_gradient_embedding():
    rng = np.random.RandomState(0)
    probs, h = softmax_rows(rng, 6, 3), rng.randn(6, 4).astype(np.float32)
    q = probs.astype(np.float64).copy()
    q[np.arange(6), probs.argmax(axis=1)] -= 1.0
    g = (q[:, :, None] * (h / np.sqrt(np.mean(h.astype(np.float64) ** 2)))[:, None, :]).reshape(6, -1)
    for c in range(6):
        np.testing.assert_allclose(badge_sq_distances(probs, h, c), ((g - g[c]) ** 2).sum(axis=1), rtol=1e-5, atol=1e-6)
    # One global scale: tiny (untrained) embeddings give the same distances.
    np.testing.assert_allclose(badge_sq_distances(probs, h * 1e-11, 2), badge_sq_distances(probs, h, 2), rtol=1e-5, atol=1e-6)


def test_badge_picks_the_largest_gradient_first_even_when_confident():
    rng = np.random.RandomState(0)
    n = 20
    probs = np.tile(np.float32([0.5, 0.3, 0.2]), (n, 1))
    h = rng.randn(n, 4).astype(np.float32) * 0.1
    probs[7], h[7] = [0.9, 0.05, 0.05], [100.0, 0, 0, 0]  # confident but far: ||g||^2 = 0.015 * 1e4
    assert badge_select(probs, h, np.zeros(n, dtype=bool), 1, random_state=0)[0] == 7


def test_badge_second_center_is_the_only_item_not_on_the_first():
    probs = np.tile(np.float32([0.5, 0.5, 0.0]), (6, 1))
    h = np.tile(np.float32([3.0, 0.0]), (6, 1))
    probs[5], h[5] = [0.6, 0.4, 0.0], [0.0, 1.0]  # smaller ||g||, the only one off the duplicates
    rows = badge_select(probs, h, np.zeros(6, dtype=bool), 3, random_state=0)
    assert rows[0] < 5 and rows[1] == 5 and len(set(rows)) == 3


# --------------------------------------------------------------------------- bald
def test_bald_scores_known_mutual_information():
    mc = np.array([
        [[1.0, 0.0], [0.5, 0.5], [1.0, 0.0], [0.9, 0.1]],
        [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0], [0.1, 0.9]],
    ])
    h09 = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))
    np.testing.assert_allclose(bald_scores(mc), [np.log(2), 0.0, 0.0, np.log(2) - h09], atol=1e-6)
    np.testing.assert_array_equal(bald_select(mc, np.zeros(4, dtype=bool), 2, random_state=0), [0, 3])
    np.testing.assert_array_equal(bald_select(mc, np.array([1, 0, 0, 0], dtype=bool), 1, random_state=0), [3])


def test_bald_rejects_probabilities_without_passes():
    with pytest.raises(ValueError, match="mc_probs must be a non-empty 3-D array"):
        bald_scores(np.full((4, 2), 0.5))


def test_bald_adapter_says_what_is_missing():
    probs, emb, mask, _ = random_problem()
    ctx = SelectionContext(probs, emb, mask)
    with pytest.raises(ValueError, match="bald needs MC-dropout samples"):
        bald_strategy(ctx, 3)
    ctx.head = (np.zeros((emb.shape[1], 3)), np.zeros(3))  # a head without its Dropout rate is not enough
    with pytest.raises(ValueError, match="no softmax head with the rate of the Dropout"):
        bald_strategy(ctx, 3)


# A hand-built head: class 0 reads feature 0, class 1 feature 1 (logits = the embedding).
EYE_HEAD = (np.eye(2, dtype=np.float32), np.zeros(2, dtype=np.float32))


def test_mc_dropout_rate_zero_every_pass_is_the_head():
    emb = np.array([[0.0, 0.0], [np.log(3.0), 0.0], [0.0, np.log(4.0)]], dtype=np.float32)
    mc = mc_dropout_probs(emb, EYE_HEAD, 0.0, 5, random_state=0)
    assert mc.shape == (5, 3, 2) and mc.dtype == np.float32
    np.testing.assert_allclose(mc, np.broadcast_to([[0.5, 0.5], [0.75, 0.25], [0.2, 0.8]], (5, 3, 2)), atol=1e-6)
    np.testing.assert_allclose(bald_scores(mc), 0.0, atol=1e-6)  # no disagreement between passes


def test_mc_dropout_drops_and_rescales_each_entry():
    # One feature of value ln 2 at rate 0.5: a pass keeps it doubled (logit ln 4: p = 0.8) or drops it (0.5).
    emb = np.full((400, 1), np.log(2.0), dtype=np.float32)
    head = (np.array([[1.0, 0.0]], dtype=np.float32), np.zeros(2, dtype=np.float32))
    mc = mc_dropout_probs(emb, head, 0.5, 10, random_state=0)[:, :, 0]
    kept = np.isclose(mc, 0.8, atol=1e-6)
    assert (kept | np.isclose(mc, 0.5, atol=1e-6)).all()
    assert abs(kept.mean() - 0.5) < 0.05  # 4,000 Bernoulli(0.5) draws
    assert bald_scores(mc_dropout_probs(emb, head, 0.5, 10, random_state=0)).min() > 0


def test_mc_dropout_same_seed_same_passes_whatever_the_blocks():
    _, emb, _, _ = random_problem()
    head = (np.random.RandomState(1).randn(emb.shape[1], 3), np.zeros(3))
    a = mc_dropout_probs(emb, head, 0.3, 6, random_state=7)
    np.testing.assert_array_equal(a, mc_dropout_probs(emb, head, 0.3, 6, block_rows=7, random_state=7))
    assert not np.array_equal(a, mc_dropout_probs(emb, head, 0.3, 6, random_state=8))


@pytest.mark.parametrize("kwargs, match", [
    ({"rate": 1.0}, r"rate must be a number in \[0.0, 1.0\), got 1.0"),
    ({"head": (np.eye(3), np.zeros(3))}, r"head must be \(weights of shape \(2, n_classes\)"),
    ({"n_passes": 0}, "n_passes must be an integer >= 1"),
])
def test_mc_dropout_bad_input(kwargs, match):
    args = {"embeddings": np.ones((4, 2), dtype=np.float32), "head": EYE_HEAD, "rate": 0.2, "n_passes": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        mc_dropout_probs(**args)


def test_bald_strategy_draws_passes_from_the_head_and_its_dropout_rate():
    probs, emb, mask, _ = random_problem()
    head = (np.random.RandomState(1).randn(emb.shape[1], 3).astype(np.float32), np.zeros(3, dtype=np.float32))
    ctx = SelectionContext(probs, emb, mask, head=head, dropout_rate=0.4, params={"bald": {"n_passes": 7}})
    rng = np.random.RandomState(3)
    expected = bald_select(mc_dropout_probs(emb, head, 0.4, 7, random_state=rng), mask, 5, random_state=rng)
    np.testing.assert_array_equal(bald_strategy(ctx, 5, random_state=np.random.RandomState(3)), expected)
    # Passes the user gave win over the head's.
    ctx.mc_probs = np.stack([probs, probs[::-1]])
    np.testing.assert_array_equal(bald_strategy(ctx, 3, random_state=0),
                                  bald_select(ctx.mc_probs, mask, 3, random_state=0))


def test_bald_options_refuse_a_single_pass():
    with pytest.raises(ValueError, match="n_passes must be an integer >= 2, got 1"):
        BaldOptions(n_passes=1)


# --------------------------------------------------------------------------- cluster_margin
def test_round_robin_smallest_cluster_first():
    clusters = np.array([0, 0, 0, 1, 2, 2])
    picks = round_robin(clusters, 5, random_state=0)
    np.testing.assert_array_equal(clusters[picks], [1, 2, 0, 2, 0])
    assert len(set(picks)) == 5


def blobs_with_uncertainty(sizes_uncertain, n_confident_per_blob, seed=0):
    """Blobs whose first items are uncertain (margin ~0) and the rest confident."""
    x, which = blobs([u + n_confident_per_blob for u in sizes_uncertain], seed=seed)
    uncertain = np.concatenate([np.arange(s + n_confident_per_blob) < s for s in sizes_uncertain])
    probs = np.where(uncertain[:, None], [[0.5, 0.49, 0.01]], [[0.98, 0.01, 0.01]]).astype(np.float32)
    return probs, x, which, uncertain


@pytest.mark.parametrize("max_hac_samples", [5000, 20])  # all items in the HAC fit, or most assigned to centroids
def test_cluster_margin_spreads_uncertain_picks_over_clusters(max_hac_samples):
    probs, x, which, uncertain = blobs_with_uncertainty([4, 3, 2], 10)
    # 3 x budget candidates = exactly the 9 uncertain items; the blob holding fewest of them goes first.
    rows = cluster_margin_select(probs, x, np.zeros(len(x), dtype=bool), 3, margin_multiple=3, n_clusters=3,
                                 max_hac_samples=max_hac_samples, random_state=0)
    np.testing.assert_array_equal(which[rows], [2, 1, 0])
    assert uncertain[rows].all()


# --------------------------------------------------------------------------- dbal
def test_dbal_takes_the_centre_of_each_uncertain_group():
    rng = np.random.RandomState(0)
    star = np.concatenate([np.zeros((1, 4)), np.eye(4), -np.eye(4)])  # centre + 8 symmetric points
    x = np.concatenate([star, star + 20, rng.randn(30, 4) * 3 + 10]).astype(np.float32)
    probs = np.tile(np.float32([0.98, 0.01, 0.01]), (48, 1))
    probs[:18] = [0.5, 0.45, 0.05]  # the two stars are uncertain, everything else confident
    rows = dbal_select(probs, x, np.zeros(48, dtype=bool), 2, beta=9, random_state=0)
    assert sorted(rows) == [0, 9]


# --------------------------------------------------------------------------- shared contract
@pytest.mark.parametrize("name", list(METHODS))
def test_budget_of_whole_pool(name):
    probs, emb, mask, mc = random_problem(n=40, n_labeled=10)
    rows = METHODS[name](probs, emb, mask, mc, 30, 0)
    np.testing.assert_array_equal(np.sort(rows), np.flatnonzero(~mask))


@pytest.mark.parametrize("name", list(METHODS))
@pytest.mark.parametrize("budget", [0, 31])
def test_budget_outside_one_to_pool_size_raises(name, budget):
    probs, emb, mask, mc = random_problem(n=40, n_labeled=10)
    with pytest.raises(ValueError, match="budget must be an integer between 1 and 30"):
        METHODS[name](probs, emb, mask, mc, budget, 0)


@pytest.mark.parametrize("name", list(METHODS))
def test_same_seed_same_rows(name):
    probs, emb, mask, mc = random_problem()
    np.testing.assert_array_equal(METHODS[name](probs, emb, mask, mc, 12, 3), METHODS[name](probs, emb, mask, mc, 12, 3))


@pytest.mark.parametrize("name", list(ADAPTERS))
@pytest.mark.parametrize("budget", [1, 17])
def test_adapter_returns_budget_unique_unlabeled_rows_from_a_memmap(name, budget, tmp_path):
    probs, emb, mask, mc = random_problem()
    mm = np.lib.format.open_memmap(tmp_path / "emb.npy", mode="w+", dtype=np.float32, shape=emb.shape)
    mm[:] = emb
    ctx = SelectionContext(probs, mm, mask, labels=np.where(mask, 0, -1))
    ctx.mc_probs = mc
    rows = np.asarray(ADAPTERS[name](ctx, budget, random_state=0))
    assert rows.shape == (budget,) and len(np.unique(rows)) == budget
    assert not ctx.labeled_mask[rows].any()


def test_adapter_passes_options():
    x, which = blobs([12, 9, 6])
    ctx = SelectionContext(np.full((27, 2), 0.5, dtype=np.float32), x, np.zeros(27, dtype=bool),
                           params={"probcover": {"delta": 0.5}})
    np.testing.assert_array_equal(which[probcover_strategy(ctx, 3, random_state=0)], [0, 1, 2])
