"""``auto``: the regime switch at the measured labels-per-class, the reason it gives, and the strategy contract."""
import numpy as np
import pytest

from labelnext import strategies as st
from labelnext.strategies import auto


def make_ctx(n_labeled, n=200, c=4, d=5, random_state=0, params=None):
    """Four Gaussian blobs; the first ``n_labeled`` rows (cycling through the classes) are labeled."""
    rng = np.random.RandomState(random_state)
    y = np.arange(n) % c
    emb = (rng.randn(n, d) + 4 * np.eye(c, d)[y]).astype(np.float32)
    z = emb @ np.eye(d, c) * 2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    mask = np.zeros(n, dtype=bool)
    mask[:n_labeled] = True
    return st.SelectionContext(p, emb, mask, labels=np.where(mask, y, -1), params=params or {})


def test_choice_flips_at_the_switch_point():
    # 4 classes, switch at 3 labels per class: 11 labeled (2.75 per class) is low, 12 (3.0) is high.
    params = {"auto": {"switch_labels_per_class": 3, "low": "probcover", "high": "cluster_margin"}}
    name, reason = auto.auto_choice(make_ctx(11, params=params), 10)
    assert name == "probcover"
    assert reason.startswith("2.8 labels per class (11 labeled / 4 classes) < 3: probcover")
    name, reason = auto.auto_choice(make_ctx(12, params=params), 10)
    assert name == "cluster_margin"
    assert reason.startswith("3.0 labels per class (12 labeled / 4 classes) >= 3: cluster_margin")


def test_default_switch_is_the_measured_constant():
    below = int(np.ceil(auto.SWITCH_LABELS_PER_CLASS * 4)) - 1
    assert auto.auto_choice(make_ctx(below), 5)[0] == auto.LOW_DEFAULT
    assert auto.auto_choice(make_ctx(below + 1), 5)[0] == auto.HIGH_DEFAULT


@pytest.mark.parametrize("n_labeled", [4, 60])
def test_auto_runs_the_method_it_names(n_labeled):
    ctx = make_ctx(n_labeled)
    name, _ = auto.auto_choice(ctx, 12)
    got = st.select("auto", ctx, 12, random_state=3)
    np.testing.assert_array_equal(got, st.select(name, ctx, 12, random_state=3))


@pytest.mark.parametrize("n_labeled", [4, 60])
def test_contract_exactly_budget_unique_pool_rows(n_labeled):
    ctx = make_ctx(n_labeled)
    rows = st.select("auto", ctx, 25, random_state=0)
    assert rows.shape == (25,) and len(np.unique(rows)) == 25
    assert not ctx.labeled_mask[rows].any()


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="low must be one of"):
        st.select("auto", make_ctx(8, params={"auto": {"low": "margin"}}), 5)
    with pytest.raises(ValueError, match="switch_labels_per_class must be a number"):
        st.select("auto", make_ctx(8, params={"auto": {"switch_labels_per_class": -1}}), 5)
