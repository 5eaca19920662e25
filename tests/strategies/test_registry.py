"""Strategies: one contract test over every registered strategy and subpool, typed options, known answers."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from labelnext import heuristics as alf
from labelnext.strategies import anchoral
from labelnext.utils import checks
from labelnext import gnn
from labelnext import knn
from labelnext import strategies as st
from labelnext.strategies import modal
from labelnext.strategies.base import Registered, softmax_head


def make_ctx(n=300, d=8, c=4, n_labeled=30, random_state=0, params=None):
    """A pool whose probabilities are the softmax head over its embeddings (as in the benchmark)."""
    rng = np.random.RandomState(random_state)
    emb = rng.randn(n, d).astype(np.float32)
    w, b = rng.randn(d, c), rng.randn(c)
    z = emb @ w + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = rng.randint(0, c, n)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, n_labeled, replace=False)] = True
    y[np.flatnonzero(mask)[:c]] = np.arange(c)  # every class labeled at least once
    # Five "MC-dropout passes": the head over noisy embeddings (bald reads them).
    zs = (emb[None] + 0.3 * rng.randn(5, n, d)) @ w + b
    mc = np.exp(zs - zs.max(axis=2, keepdims=True))
    mc /= mc.sum(axis=2, keepdims=True)
    return st.SelectionContext(p, emb, mask, labels=np.where(mask, y, -1), head=(w, b), mc_probs=mc.astype(np.float32),
                               params={"gnn": {"epochs": 5}} if params is None else params)


# Every registered strategy, and every subpool in front of entropy.
ALL = list(st.STRATEGIES) + [f"{sub}_entropy" for sub in st.SUBPOOLS]


def section_of(name):
    """The params section a name's options live under (the subpool's for a composite)."""
    return name if name in st.STRATEGIES else name.partition("_")[0]


# --------------------------------------------------------------------------- contract
@pytest.mark.parametrize("name", ALL)
def test_contract_unknown_option_is_refused(name):
    section = section_of(name)
    kind = "strategy" if section in st.STRATEGIES else "subpool"
    ctx = make_ctx(n=80, params={section: {"no_such_option": 1}})
    with pytest.raises(ValueError, match=f"{kind} '{section}' (has no option 'no_such_option'|takes no options)"):
        st.select(name, ctx, 5, random_state=0)


@pytest.mark.parametrize("name", ALL)
def test_contract_same_seed_same_rows(name):
    ctx = make_ctx(n=80)
    np.testing.assert_array_equal(st.select(name, ctx, 12, random_state=3), st.select(name, ctx, 12, random_state=3))


@pytest.mark.parametrize("name", ALL)
def test_contract_budget_of_whole_pool_takes_every_pool_row(name):
    ctx = make_ctx(n=60, n_labeled=30)
    rows = st.select(name, ctx, 30, random_state=0)
    np.testing.assert_array_equal(np.sort(rows), ctx.pool_rows)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("budget, allowed", [(31, "between 1 and 30, got 31"), (0, "between 1 and 30, got 0")])
def test_contract_budget_outside_pool_raises(name, budget, allowed):
    ctx = make_ctx(n=60, n_labeled=30)
    with pytest.raises(ValueError, match=f"budget must be an integer {allowed}"):
        st.select(name, ctx, budget)


def test_contract_violation_is_caught(monkeypatch):
    monkeypatch.setitem(st.STRATEGIES, "broken", Registered(lambda ctx, budget, random_state=None: ctx.pool_rows[[0, 0, 1]]))
    with pytest.raises(RuntimeError, match="'broken' returned 2 unique of 3 rows, expected 3 unique"):
        st.select("broken", make_ctx(), 3)


def test_empty_pool_raises():
    ctx = make_ctx(n=40, n_labeled=40)
    with pytest.raises(checks.EmptyPoolError, match="the pool is empty"):
        st.select("entropy", ctx, 1)


def test_random_depends_on_the_seed():
    ctx = make_ctx()
    assert set(st.select("random", ctx, 20, random_state=0)) != set(st.select("random", ctx, 20, random_state=1))


def test_unknown_strategy_lists_allowed():
    with pytest.raises(ValueError, match="strategy must be one of .*'random'"):
        st.get_strategy("nope")


def test_pool_labels_are_refused():
    ctx = make_ctx()
    labels = ctx.labels.copy()
    labels[ctx.pool_rows[0]] = 1
    with pytest.raises(ValueError, match="-1 for every unlabeled row"):
        st.SelectionContext(ctx.probs, ctx.embeddings, ctx.labeled_mask, labels=labels)


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("section, options, message", [
    ("uncertainty_clustering", {"beta": 0}, r"beta must be an integer >= 1, got 0"),
    ("dbal", {"beta": "10"}, r"beta must be an integer >= 1, got '10'"),
    ("typiclust", {"k_neighbors": 0}, r"k_neighbors must be an integer >= 1, got 0"),
    ("probcover", {"delta": 3.0}, r"delta must be a number in \(0.0, 2.0\], got 3.0"),
    ("cluster_margin", {"margin_multiple": 0}, r"margin_multiple must be an integer >= 1, got 0"),
    ("gnn", {"score": "bald"}, r"score must be one of \['hybrid', .*\], got 'bald'"),
    ("gnn", {"epochs": 0}, "epochs must be an integer >= 1, got 0"),
    ("gnn", {"lr": 0.0}, r"lr must be a number in \(0.0, inf\), got 0.0"),
    ("intersection", {"diversity": {"n_clusters": 0}}, "n_clusters must be an integer >= 1, got 0"),
    ("intersection", {"novelty": {"method": "annoy"}}, "method must be one of .*, got 'annoy'"),
    ("intersection", {"novelty": {"k": 3}}, r"novelty options \['k'\] are unknown"),
    ("intersection", {"diversity": 10}, "intersection option 'diversity' must be a dict"),
    ("anchoral", {"k_neighbors": 0}, "k_neighbors must be an integer >= 1, got 0"),
    ("anchoral", {"num_neighbours": 5}, r"subpool 'anchoral' has no option 'num_neighbours'; allowed options are "
                                        r"\['num_anchors', 'k_neighbors', 'subpool_size', 'method'\]"),
    ("seals", {"method": "annoy"}, "method must be one of .*, got 'annoy'"),
    ("randsub", {"subpool_size": -1}, "subpool_size must be an integer >= 1, got -1"),
    ("entropy", {"alpha": 0.2}, "strategy 'entropy' takes no options"),
    ("typo", {}, "params has options for 'typo', which is no strategy or subpool"),
])
def test_bad_options_are_refused_before_any_work(section, options, message, monkeypatch):
    calls = []
    for name, entry in st.STRATEGIES.items():
        monkeypatch.setitem(st.STRATEGIES, name, Registered(lambda *a, **k: calls.append(a), entry.options))
    ctx = make_ctx(params={section: options})
    with pytest.raises(ValueError, match=message):
        st.select("random", ctx, 5)
    assert calls == []


def test_options_reach_the_strategy_as_dict_or_typed():
    # beta = 1: DBAL clusters exactly the budget's most uncertain items, so it returns them.
    top = set(st.select("margin", make_ctx(), 10, random_state=0))
    for given in ({"beta": 1}, st.DbalOptions(beta=1)):
        ctx = make_ctx(params={"uncertainty_clustering": given})
        assert set(st.select("uncertainty_clustering", ctx, 10, random_state=0)) == top


def test_uncertainty_clustering_is_dbal():
    ctx = make_ctx()
    np.testing.assert_array_equal(st.select("uncertainty_clustering", ctx, 12, random_state=4),
                                  st.select("dbal", ctx, 12, random_state=4))


def test_a_strategy_called_directly_checks_its_options():
    ctx = make_ctx(params={"uncertainty_clustering": {"beta": 0}})
    with pytest.raises(ValueError, match="beta must be an integer"):
        st.get_strategy("uncertainty_clustering")(ctx, 5, 0)


def test_check_params_fills_defaults_and_drops_optionless_sections():
    typed = st.check_params({"gnn": {"epochs": 7}, "entropy": {}, "anchoral": None})
    assert typed == {"gnn": gnn.GNNOptions(epochs=7), "anchoral": st.AnchorALOptions()}


def test_intersection_bounds_depend_on_the_pool():
    ctx = make_ctx(n=60, n_labeled=30, params={"intersection": {"diversity": {"n_clusters": 31}}})
    with pytest.raises(ValueError, match="n_clusters must be an integer between 1 and 30, got 31"):
        st.select("intersection", ctx, 5)


# --------------------------------------------------------------------------- known answers
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


def test_modal_with_a_head_picks_what_it_picked_before():
    # Indices recorded on the code before modal could fit its own head: a model head is used as is.
    ctx = make_ctx(n=120, random_state=4)
    assert st.select("modal_entropy", ctx, 8, random_state=2).tolist() == [54, 32, 80, 83, 21, 119, 23, 87]
    assert st.select("modal_ranked_batch", ctx, 8, random_state=2).tolist() == [23, 119, 87, 21, 75, 46, 30, 88]
    assert st.selection_note("modal_entropy", ctx, 8) is None


@pytest.mark.parametrize("name", ["modal_entropy", "modal_ranked_batch", "anchoral_modal_entropy"])
def test_modal_without_a_head_fits_one_on_the_labeled_rows_and_says_so(name):
    ctx = make_ctx(n=120, random_state=4, params={})
    ctx.head = None
    rows = st.select(name, ctx, 8, random_state=2)
    assert len(set(rows)) == 8 and not ctx.labeled_mask[rows].any()
    np.testing.assert_array_equal(rows, st.select(name, ctx, 8, random_state=2))
    note = st.selection_note(name, ctx, 8)
    assert note.startswith("no softmax head of a model: modAL queries a multinomial logistic regression fitted on "
                           "the 30 labeled embeddings") and "4 of 4 classes labeled" in note


def test_modal_entropy_without_a_head_ranks_by_the_fitted_heads_entropy():
    ctx = make_ctx(n=120, random_state=4)
    ctx.head = None
    labeled = ctx.labeled_mask
    w, b = modal.fit_softmax_head(ctx.embeddings[labeled], ctx.labels[labeled], ctx.n_classes, random_state=0)
    pool = ctx.pool_rows
    p = softmax_head(ctx.embeddings[pool], w, b)
    expected = pool[np.argsort(-alf.entropy_scores(p), kind="stable")[:8]]
    assert set(st.select("modal_entropy", ctx, 8, random_state=2)) == set(expected)


def test_fit_softmax_head_is_the_regression_on_raw_rows_with_absent_classes_at_zero():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 2, 3], 10)
    x = rng.randn(30, 3) * [1.0, 10.0, 0.1] + [5.0, 0.0, 0.0] + y[:, None]  # features of unequal scales
    w, b = modal.fit_softmax_head(x, y, 5, random_state=0)
    assert w.shape == (3, 5) and b.shape == (5,)
    p = softmax_head(x, w, b)
    np.testing.assert_array_equal(p[:, [1, 4]], 0.0)  # no labeled row of class 1 or 4
    reg = LogisticRegression(max_iter=1000).fit(StandardScaler().fit_transform(x), y)
    np.testing.assert_allclose(p[:, [0, 2, 3]], reg.predict_proba(StandardScaler().fit(x).transform(x)), atol=1e-6)
    # Two classes: sklearn's single logit becomes two softmax columns.
    two = y != 3
    p2 = softmax_head(x[two], *modal.fit_softmax_head(x[two], y[two], 3, random_state=0))
    reg2 = LogisticRegression(max_iter=1000).fit(StandardScaler().fit_transform(x[two]), y[two])
    np.testing.assert_allclose(p2[:, [0, 2]], reg2.predict_proba(StandardScaler().fit(x[two]).transform(x[two])), atol=1e-6)


def test_fit_softmax_head_needs_two_classes():
    with pytest.raises(ValueError, match=r"needs labeled rows of at least 2 classes, got 1 \(\[2\]\)"):
        modal.fit_softmax_head(np.ones((4, 2)), [2, 2, 2, 2], 3)


def test_context_refuses_a_dropout_rate_outside_zero_one():
    with pytest.raises(ValueError, match=r"dropout_rate must be a number in \[0.0, 1.0\), got 1.5"):
        st.SelectionContext(np.full((3, 2), 0.5), np.ones((3, 2)), np.zeros(3, dtype=bool), dropout_rate=1.5)


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
    finally:
        st.SUBPOOLS.pop("fake")


def test_anchoral_entropy_is_entropy_inside_the_anchoral_subpool():
    opts = {"num_anchors": 2, "k_neighbors": 20, "subpool_size": 50}
    ctx = make_ctx(params={"anchoral": opts})
    sub = anchoral.anchoral_subpool(knn.StandardizedView(ctx.embeddings), ctx.labeled_mask, ctx.labels,
                                    random_state=np.random.RandomState(0), **opts)
    rows = st.select("anchoral_entropy", ctx, 10, random_state=0)
    entropy = alf.entropy_scores(ctx.probs)
    assert set(rows) <= set(sub)
    # The 10 highest-entropy rows of the subpool (no ties in continuous scores).
    assert set(rows) == set(sub[np.argsort(-entropy[sub])[:10]])
