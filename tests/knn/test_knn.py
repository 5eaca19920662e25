"""The inverted-file search (knn.ivf_knn, method='ivf'): recall against exact on planted
clusters, exact distances for the neighbours it returns, the exact fallback on data with
no cell structure, self-exclusion, reproducibility and what 'auto' picks; the recall of
neighbour lists and the PCA projection (knn.neighbour_recall, knn.pca_project)."""
import numpy as np
import pytest

from labelnext import knn
from labelnext.knn import ivf as knn_ivf

pytest.importorskip("faiss")


def _planted(n_query=6000, n_ref=2000, dim=32, n_centres=40, seed=0):
    """Tight, well separated clusters: every query's neighbours lie in its own cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(n_centres, dim)).astype(np.float32)
    ref = centres[rng.integers(0, n_centres, n_ref)] + rng.standard_normal((n_ref, dim), dtype=np.float32)
    query = centres[rng.integers(0, n_centres, n_query)] + rng.standard_normal((n_query, dim), dtype=np.float32)
    return query, ref


def test_ivf_recall_against_exact_on_planted_clusters():
    query, ref = _planted()
    d_e, i_e = knn.knn_search(query, ref, 5, method="exact")
    d_i, i_i, info = knn.ivf_knn(query, ref, 5, random_state=0)
    assert not info["fallback"]
    assert info["scan_fraction"] <= knn.IVF_MAX_SCAN
    assert info["recalls"][info["n_probe"]] >= knn.IVF_TARGET_RECALL
    assert knn.neighbour_recall(i_i, i_e) >= 0.995
    np.testing.assert_allclose(d_i.mean(axis=1), d_e.mean(axis=1), rtol=1e-3)


def test_ivf_distances_are_exact_for_the_neighbours_returned():
    query, ref = _planted(seed=1)
    dist, idx, _ = knn.ivf_knn(query, ref, 4, random_state=0)
    direct = np.linalg.norm(query[:, None, :] - ref[idx], axis=2)
    np.testing.assert_allclose(dist, direct, rtol=1e-4, atol=1e-4)
    assert (np.diff(dist, axis=1) >= 0).all()


def test_ivf_falls_back_to_exact_without_cell_structure():
    # Isotropic 64-d noise: no cell holds a query's neighbours, no n_probe reaches the target.
    rng = np.random.default_rng(2)
    query = rng.standard_normal((3000, 64), dtype=np.float32)
    ref = rng.standard_normal((2000, 64), dtype=np.float32)
    d_i, i_i, info = knn.ivf_knn(query, ref, 5, random_state=0)
    assert info["fallback"] and info["n_probe"] is None
    assert max(info["recalls"].values()) < knn.IVF_TARGET_RECALL
    d_f, i_f = knn.knn_search(query, ref, 5, method="faiss")
    np.testing.assert_array_equal(i_i, i_f)


def test_small_reference_runs_the_exact_search():
    query, ref = _planted(n_query=500, n_ref=knn.IVF_MIN_REFERENCE - 1)
    _, i_i, info = knn.ivf_knn(query, ref, 3, random_state=0)
    assert info["fallback"] and info["n_lists"] == 0
    np.testing.assert_array_equal(i_i, knn.knn_search(query, ref, 3, method="faiss")[1])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_ivf_exclude_self_never_returns_the_query(metric):
    _, ref = _planted(n_ref=3000, seed=3)
    d_i, i_i = knn.knn_search(ref, ref, 4, method="ivf", metric=metric, exclude_self=True, random_state=0)
    assert not (i_i == np.arange(len(ref))[:, None]).any()
    d_e, i_e = knn.knn_search(ref, ref, 4, method="exact", metric=metric, exclude_self=True)
    assert knn.neighbour_recall(i_i, i_e) >= 0.995
    # A missed neighbour is replaced by a farther one: never nearer than exact.
    assert (d_i >= d_e * (1 - 1e-4) - 1e-5).all()
    assert np.isclose(d_i, d_e, rtol=1e-3, atol=1e-5).all(axis=1).mean() >= 0.98


def test_ivf_is_reproducible_and_matches_knn_search():
    query, ref = _planted(seed=4)
    d1, i1, _ = knn.ivf_knn(query, ref, 5, random_state=7)
    d2, i2 = knn.knn_search(query, ref, 5, method="ivf", random_state=7)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)


def test_ivf_reads_a_lazy_standardised_view_like_an_array():
    query, ref = _planted(seed=5)
    view = knn.StandardizedView(np.vstack([ref, query]))
    x = np.asarray(view)
    _, i_view, _ = knn.ivf_knn(view[len(ref):], x[: len(ref)], 5, random_state=0)
    _, i_arr, _ = knn.ivf_knn(x[len(ref):], x[: len(ref)], 5, random_state=0)
    np.testing.assert_array_equal(i_view, i_arr)


def test_probing_every_cell_is_the_exact_search():
    query, ref = _planted(n_query=800, seed=6)
    index = knn_ivf.IVFIndex(ref, n_lists=16, random_state=0)
    labels, d2 = index.search(np.ascontiguousarray(query), 5, n_probe=16)
    _, i_e = knn.knn_search(query, ref, 5, method="exact")
    assert (labels == i_e).mean() > 0.999
    assert sorted(np.concatenate(index.lists).tolist()) == list(range(len(ref)))


def test_target_recall_is_checked():
    query, ref = _planted(n_query=100)
    with pytest.raises(ValueError, match=r"target_recall must be a number in \(0, 1\], got 1.5"):
        knn.ivf_knn(query, ref, 5, target_recall=1.5)


def test_auto_picks_ivf_only_for_large_flat_searches():
    assert knn.knn_method_for(1_000_000, 5_000, 576) == "ivf"
    assert knn.knn_method_for(100_000, 5_000, 576) == "faiss"
    assert knn.knn_method_for(1_000_000, knn.IVF_MIN_REFERENCE - 1, 576) == "faiss"
    assert knn.knn_method_for(10_000, 5_000, 576) == "exact"


def test_neighbour_recall_counts_exact_neighbours_found():
    exact = np.array([[1, 2], [0, 2], [0, 1]])
    found = np.array([[2, 1], [2, 3], [-1, -1]])  # both, one, none (-1 pads are misses)
    assert knn.neighbour_recall(found, exact) == pytest.approx(0.5)
    # A longer found list: the share of the exact k that it contains.
    assert knn.neighbour_recall(np.array([[5, 1, 2], [0, 9, 8], [7, 0, 1]]), exact) == pytest.approx(5 / 6)


def test_neighbour_recall_rejects_mismatched_rows():
    with pytest.raises(ValueError, match=r"same \(>= 1\) rows"):
        knn.neighbour_recall(np.zeros((2, 3), int), np.zeros((3, 3), int))


def test_pca_project_keeps_the_high_variance_axes():
    rng = np.random.default_rng(0)
    # Centred, mutually orthogonal columns: the covariance is diagonal, so the principal axes are the axes.
    a = rng.standard_normal((500, 5))
    cols = np.linalg.qr(a - a.mean(axis=0))[0]
    x = (cols * np.array([10.0, 5.0, 1.0, 0.1, 0.01]) * np.sqrt(500) + 7.0).astype(np.float32)
    z = knn.pca_project(x, 2, random_state=0)
    assert z.shape == (500, 2) and z.dtype == np.float32
    centred = x[:, :2] - x[:, :2].mean(axis=0)
    # Up to sign, the components are the first two axes (a sample of all 500 rows).
    np.testing.assert_allclose(np.abs(z), np.abs(centred), atol=1e-3)


def test_pca_project_preserves_distances_within_the_components_and_is_seeded():
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.standard_normal((8, 3)))[0]  # 3 orthonormal directions in 8-d
    x = (rng.standard_normal((3000, 3)) * [4.0, 2.0, 1.0] @ basis.T).astype(np.float32)
    z = knn.pca_project(x, 3, sample_size=500, random_state=0)
    pairs = rng.integers(0, 3000, (200, 2))
    np.testing.assert_allclose(np.linalg.norm(z[pairs[:, 0]] - z[pairs[:, 1]], axis=1),
                               np.linalg.norm(x[pairs[:, 0]] - x[pairs[:, 1]], axis=1), rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(z, knn.pca_project(x, 3, sample_size=500, random_state=0))


def test_pca_project_rejects_more_components_than_features():
    with pytest.raises(ValueError, match="n_components"):
        knn.pca_project(np.zeros((10, 4), np.float32), 5)
