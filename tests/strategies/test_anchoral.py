"""AnchorAL, SEALS and random subpools on hand-built pools with known answers."""
import numpy as np
import pytest

from labelnext.utils import checks
from labelnext.strategies.anchoral import anchoral_subpool, random_subpool, seals_subpool, select_anchors


def planted_pool(n_noise=400, dim=16, per_anchor=3, random_state=0):
    """Two classes with 2 labeled items each; 3 near copies of every labeled item planted in noise.

    Labeled items are unit vectors along distinct axes; noise items point elsewhere
    (axes 8..15), so under cosine the planted copies are the anchors' only close items.
    """
    rng = np.random.default_rng(random_state)
    labeled = np.zeros((4, dim), dtype=np.float32)
    for i in range(4):
        labeled[i, i] = 1.0
    planted = np.repeat(labeled, per_anchor, axis=0) + rng.normal(scale=0.05, size=(4 * per_anchor, dim)).astype(np.float32)
    noise = np.zeros((n_noise, dim), dtype=np.float32)
    noise[:, 8:] = rng.normal(size=(n_noise, 8))
    x = np.vstack([labeled, planted, noise]).astype(np.float32)
    order = rng.permutation(len(x))
    x = x[order]
    where = np.argsort(order)  # new row of each original row
    mask = np.zeros(len(x), dtype=bool)
    mask[where[:4]] = True
    labels = np.full(len(x), -1, dtype=np.int64)
    labels[where[:4]] = [0, 0, 1, 1]
    planted_rows = where[4:4 + 4 * per_anchor]
    return x, mask, labels, planted_rows


def test_subpool_is_the_planted_neighbours_of_the_anchors():
    x, mask, labels, planted = planted_pool()
    rows = anchoral_subpool(x, mask, labels, num_anchors=2, k_neighbors=3, subpool_size=len(planted), random_state=0)
    assert rows.dtype == np.int64
    assert sorted(rows.tolist()) == sorted(planted.tolist())


def test_planted_neighbours_rank_first_and_labeled_rows_never_returned():
    x, mask, labels, planted = planted_pool()
    rows = anchoral_subpool(x, mask, labels, num_anchors=2, k_neighbors=20, subpool_size=50, random_state=0)
    # Anchors share many retrieved noise items: the union is smaller than 4 x 20.
    assert len(planted) < len(rows) <= 50
    assert set(rows[:len(planted)].tolist()) == set(planted.tolist())
    assert not mask[rows].any()
    assert len(set(rows.tolist())) == len(rows)


def test_exact_and_hnsw_give_the_same_subpool():
    x, mask, labels, planted = planted_pool()
    kw = dict(num_anchors=2, k_neighbors=3, subpool_size=len(planted), random_state=0)
    exact = anchoral_subpool(x, mask, labels, method="exact", **kw)
    approx = anchoral_subpool(x, mask, labels, method="hnsw", **kw)
    assert set(exact.tolist()) == set(approx.tolist()) == set(planted.tolist())


def test_memory_mapped_embeddings_give_the_same_subpool(tmp_path):
    x, mask, labels, _ = planted_pool()
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    kw = dict(num_anchors=2, k_neighbors=10, subpool_size=30, random_state=3)
    np.testing.assert_array_equal(anchoral_subpool(mm, mask, labels, **kw), anchoral_subpool(x, mask, labels, **kw))


def test_blocked_reference_path_gives_the_same_subpool(monkeypatch):
    """A pool too large to hold is searched in reference blocks with a running top-k."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 16)).astype(np.float32)  # no distance ties
    mask = np.zeros(500, dtype=bool)
    mask[:12] = True
    labels = np.where(mask, np.arange(500) % 3, -1)
    kw = dict(num_anchors=2, k_neighbors=10, subpool_size=30, random_state=3, method="exact")
    whole = anchoral_subpool(x, mask, labels, **kw)
    monkeypatch.setattr(checks, "BLOCK_ELEMENTS", 16 * 50)
    np.testing.assert_array_equal(anchoral_subpool(x, mask, labels, **kw), whole)


def test_same_seed_same_subpool():
    x, mask, labels, _ = planted_pool()
    rng = np.random.default_rng(1)
    mask2 = mask.copy()
    extra = rng.choice(np.flatnonzero(~mask), 40, replace=False)
    mask2[extra] = True
    labels2 = labels.copy()
    labels2[extra] = rng.integers(0, 2, 40)
    a = anchoral_subpool(x, mask2, labels2, num_anchors=3, k_neighbors=10, subpool_size=25, random_state=7)
    b = anchoral_subpool(x, mask2, labels2, num_anchors=3, k_neighbors=10, subpool_size=25, random_state=7)
    np.testing.assert_array_equal(a, b)


def test_anchors_spread_over_a_class_and_small_classes_give_all():
    # Class 0: two tight groups of 5 (axes 0 and 1); class 1: a single labeled item.
    x = np.zeros((30, 4), dtype=np.float32)
    x[:5, 0] = 1.0
    x[5:10, 1] = 1.0
    x[10, 2] = 1.0
    x[11:, 3] = 1.0
    mask = np.zeros(30, dtype=bool)
    mask[:11] = True
    labels = np.full(30, -1)
    labels[:10] = 0
    labels[10] = 1
    anchors = select_anchors(x, mask, labels, num_anchors=2, random_state=0)
    assert len(anchors) == 3
    class0 = anchors[:2]
    assert (class0 < 5).sum() == 1 and ((class0 >= 5) & (class0 < 10)).sum() == 1
    assert anchors[2] == 10


def test_subpool_size_and_k_neighbors_are_clipped_to_what_exists():
    x, mask, labels, _ = planted_pool(n_noise=20)
    rows = anchoral_subpool(x, mask, labels, num_anchors=2, k_neighbors=1000, subpool_size=1000, random_state=0)
    assert sorted(rows.tolist()) == np.flatnonzero(~mask).tolist()


@pytest.mark.parametrize("param, value, message", [
    ("num_anchors", 0, "num_anchors must be an integer >= 1, got 0"),
    ("num_anchors", 2.5, "num_anchors must be an integer >= 1, got 2.5"),
    ("k_neighbors", 0, "k_neighbors must be an integer >= 1, got 0"),
    ("k_neighbors", True, "k_neighbors must be an integer >= 1, got True"),
    ("subpool_size", -3, "subpool_size must be an integer >= 1, got -3"),
    ("subpool_size", "10", "subpool_size must be an integer >= 1, got '10'"),
    ("method", "annoy", r"method must be one of \['auto', 'exact', 'hnsw', 'faiss', 'ivf'\], got 'annoy'"),
])
def test_bad_parameters_name_the_parameter(param, value, message):
    x, mask, labels, _ = planted_pool(n_noise=20)
    kwargs = {param: value}
    with pytest.raises(ValueError, match=message):
        anchoral_subpool(x, mask, labels, **kwargs)


def test_labeled_rows_need_known_labels():
    x, mask, labels, _ = planted_pool(n_noise=20)
    labels = labels.copy()
    labels[np.flatnonzero(mask)[0]] = -1
    with pytest.raises(ValueError, match="every labeled row needs a class >= 0"):
        anchoral_subpool(x, mask, labels)


def test_empty_labeled_set_and_empty_pool():
    x, mask, labels, _ = planted_pool(n_noise=20)
    with pytest.raises(ValueError, match="labeled set, which is empty"):
        anchoral_subpool(x, np.zeros_like(mask), labels)
    with pytest.raises(checks.EmptyPoolError, match="the pool is empty"):
        seals_subpool(x, np.ones_like(mask))
    with pytest.raises(checks.EmptyPoolError, match="the pool is empty"):
        random_subpool(np.ones(5, dtype=bool), 3)


def test_seals_is_the_union_of_the_labeled_items_neighbours_and_grows():
    x, mask, labels, planted = planted_pool()
    rows = seals_subpool(x, mask, k_neighbors=3, random_state=0)
    assert sorted(rows.tolist()) == sorted(planted.tolist())
    grown = mask.copy()
    grown[np.flatnonzero(~mask)[:10]] = True
    more = seals_subpool(x, grown, k_neighbors=3, random_state=0)
    assert len(more) > len(rows)
    assert not grown[more].any()


def test_seals_bad_k_neighbors():
    x, mask, _, _ = planted_pool(n_noise=20)
    with pytest.raises(ValueError, match="k_neighbors must be an integer >= 1, got 0"):
        seals_subpool(x, mask, k_neighbors=0)


def test_random_subpool_size_seed_and_clip():
    mask = np.zeros(100, dtype=bool)
    mask[::10] = True
    a = random_subpool(mask, 20, random_state=4)
    assert len(a) == 20 and a.dtype == np.int64 and not mask[a].any() and len(set(a.tolist())) == 20
    np.testing.assert_array_equal(a, random_subpool(mask, 20, random_state=4))
    assert sorted(random_subpool(mask, 1000, random_state=0).tolist()) == np.flatnonzero(~mask).tolist()
    with pytest.raises(ValueError, match="subpool_size must be an integer >= 1, got 0"):
        random_subpool(mask, 0)
