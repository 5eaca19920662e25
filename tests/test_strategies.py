"""Contract tests for strategies.py: every strategy returns exactly ``budget`` unique pool rows."""
import numpy as np
import pytest

import strategies as st


def make_ctx(n=300, d=8, c=4, n_labeled=30, seed=0):
    """A pool whose probabilities are the softmax head over its embeddings (as in the benchmark)."""
    rng = np.random.RandomState(seed)
    emb = rng.randn(n, d).astype(np.float32)
    w, b = rng.randn(d, c), rng.randn(c)
    z = emb @ w + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = rng.randint(0, c, n)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, n_labeled, replace=False)] = True
    y[np.flatnonzero(mask)[:c]] = np.arange(c)  # every class labeled at least once
    return st.SelectionContext(p, emb, mask, labels=np.where(mask, y, -1), head=(w, b),
                               params={"gnn": {"epochs": 20}})


FAST = [s for s in st.available_strategies() if s != "gnn"]


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("budget", [1, 17])
def test_exact_budget_unique_unlabeled(name, budget):
    ctx = make_ctx()
    rows = st.select(name, ctx, budget, random_state=0)
    assert rows.shape == (budget,)
    assert len(np.unique(rows)) == budget
    assert not ctx.labeled_mask[rows].any()


def test_gnn_exact_budget_unique_unlabeled():
    ctx = make_ctx()
    rows = st.select("gnn", ctx, 10, random_state=0)
    assert rows.shape == (10,) and len(np.unique(rows)) == 10
    assert not ctx.labeled_mask[rows].any()


@pytest.mark.parametrize("name", FAST)
def test_reproducible_with_seed(name):
    ctx = make_ctx()
    np.testing.assert_array_equal(st.select(name, ctx, 12, random_state=3), st.select(name, ctx, 12, random_state=3))


@pytest.mark.parametrize("name", FAST)
def test_budget_of_whole_pool(name):
    ctx = make_ctx(n=60, n_labeled=30)
    rows = st.select(name, ctx, 30, random_state=0)
    np.testing.assert_array_equal(np.sort(rows), ctx.pool_rows)


def test_budget_above_pool_raises():
    ctx = make_ctx(n=60, n_labeled=30)
    with pytest.raises(ValueError, match="budget"):
        st.select("entropy", ctx, 31)


def test_unknown_strategy_lists_allowed():
    with pytest.raises(ValueError, match="strategy must be one of .*'random'"):
        st.get_strategy("nope")


def test_pool_labels_are_refused():
    ctx = make_ctx()
    labels = ctx.labels.copy()
    labels[ctx.pool_rows[0]] = 1
    with pytest.raises(ValueError, match="-1 for every unlabeled row"):
        st.SelectionContext(ctx.probs, ctx.embeddings, ctx.labeled_mask, labels=labels)


def test_entropy_picks_the_uniform_rows():
    # Known answer: rows 5 and 9 are uniform (max entropy); the rest are confident.
    p = np.tile([0.97, 0.01, 0.01, 0.01], (20, 1)).astype(np.float32)
    p[[5, 9]] = 0.25
    mask = np.zeros(20, dtype=bool)
    mask[:3] = True
    ctx = st.SelectionContext(p, np.eye(20, 4, dtype=np.float32), mask)
    assert set(st.select("entropy", ctx, 2, random_state=0)) == {5, 9}
    assert set(st.select("margin", ctx, 2, random_state=0)) == {5, 9}
    assert set(st.select("least_confidence", ctx, 2, random_state=0)) == {5, 9}


def test_modal_entropy_matches_our_entropy_ranking():
    ctx = make_ctx()
    ours = st.select("entropy", ctx, 10, random_state=0)
    peer = st.select("modal_entropy", ctx, 10, random_state=0)
    assert set(ours) == set(peer)


def test_uncertainty_clustering_starts_with_top_entropy():
    ctx = make_ctx()
    rows = st.select("uncertainty_clustering", ctx, 20, random_state=0)
    top = st.select("entropy", ctx, 4, random_state=0)  # alpha = 0.2 -> 4 of 20
    assert set(rows[:4]) == set(top)


def test_composite_subpool_hook_with_fake_subpool():
    ctx = make_ctx()
    fake = ctx.pool_rows[:40]
    st.register_subpool("fake", lambda c, rs: fake)
    try:
        rows = st.select("fake_entropy", ctx, 10, random_state=0)
        assert set(rows) <= set(fake) and len(set(rows)) == 10
        # A subpool smaller than the budget is topped up to exactly the budget.
        rows = st.select("fake_random", ctx, 50, random_state=0)
        assert len(set(rows)) == 50 and set(fake) <= set(rows)
        assert not ctx.labeled_mask[rows].any()
    finally:
        st.SUBPOOLS.pop("fake")


def test_anchoral_composite():
    pytest.importorskip("anchoral")
    ctx = make_ctx()
    ctx.params["anchoral"] = {"num_anchors": 2, "num_neighbours": 20, "subpool_size": 50}
    rows = st.select("anchoral_entropy", ctx, 10, random_state=0)
    assert rows.shape == (10,) and not ctx.labeled_mask[rows].any()
