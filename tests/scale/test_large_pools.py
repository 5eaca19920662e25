"""Large-pool machinery on small arrays: approximate vs exact neighbours, the lazy
standardised view, reference-blocked exact search, memory-mapped pools and the
scale benchmark's command line."""
import json

import numpy as np
import pytest

from labelnext.utils import checks
from labelnext import knn
from labelnext.analysis.main import ActiveLearningAnalyzer
from benchmarks import scale
from benchmarks.synthetic import make_pool


@pytest.fixture(scope="module")
def pool():
    return make_pool(3000, dim=32, n_classes=4, n_labeled=200, n_centers=12, random_state=0)


def test_hnsw_neighbours_agree_with_exact(pool):
    emb, _, _, mask = pool
    x = knn.standardize(emb)
    d_e, i_e = knn.knn_search(x[~mask], x[mask], 5, method="exact")
    d_a, i_a = knn.knn_search(x[~mask], x[mask], 5, method="hnsw", random_state=0)
    recall = (i_a[:, :, None] == i_e[:, None, :]).any(axis=2).mean()
    assert recall >= 0.99
    np.testing.assert_allclose(d_a.mean(axis=1), d_e.mean(axis=1), rtol=0.02)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_faiss_flat_search_is_exact(pool, metric):
    pytest.importorskip("faiss")
    emb, _, _, mask = pool
    x = knn.standardize(emb)
    d_e, i_e = knn.knn_search(x[~mask], x[mask], 5, metric=metric, method="exact")
    d_f, i_f = knn.knn_search(x[~mask], x[mask], 5, metric=metric, method="faiss")
    assert (i_f == i_e).mean() > 0.999  # float rounding may swap near-ties
    np.testing.assert_allclose(d_f, d_e, rtol=1e-3, atol=1e-3)
    d_s, i_s = knn.knn_search(x, x, 4, metric=metric, method="faiss", exclude_self=True)
    assert not (i_s == np.arange(len(x))[:, None]).any()


def test_auto_keeps_small_problems_on_the_numpy_exact_path():
    assert knn.knn_method_for(10_000, 5_000, 576) == "exact"
    assert knn.knn_method_for(1_000_000, 5_000, 576) in ("faiss", "hnsw", "ivf")
    # Self-kNN on 100k nodes: building HNSW beats 1e10 flat pairs.
    assert knn.knn_method_for(100_000, 100_000, 576) == "hnsw"


def test_hnsw_is_reproducible_for_small_indexes(pool):
    emb, _, _, mask = pool
    runs = [knn.knn_search(emb[~mask], emb[mask], 5, method="hnsw", random_state=3)[1] for _ in range(3)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_standardized_view_reads_what_standardize_returns(pool):
    emb = pool[0]
    view, full = knn.StandardizedView(emb), knn.standardize(emb)
    np.testing.assert_array_equal(np.asarray(view), full)
    np.testing.assert_array_equal(view[100:250], full[100:250])
    np.testing.assert_array_equal(view[-1], full[-1])
    np.testing.assert_array_equal(view[::7][:3] if isinstance(view[::7], np.ndarray) else None, full[::7][:3])
    sel = full[:, 0] > 0
    sub = view[sel]
    assert isinstance(sub, knn.StandardizedView) and sub.shape == (int(sel.sum()), emb.shape[1])
    np.testing.assert_array_equal(np.asarray(sub[[5, 2, 9]]), full[sel][[5, 2, 9]])
    np.testing.assert_array_equal(sub[10:20], full[sel][10:20])
    assert checks.check_embeddings(view) is view


def test_standardized_view_rejects_bad_indices(pool):
    view = knn.StandardizedView(pool[0])
    with pytest.raises(IndexError, match="boolean index of shape"):
        view[np.ones(5, dtype=bool)]
    with pytest.raises(IndexError, match="out of range"):
        view[np.array([0, 10**6])]
    with pytest.raises(IndexError, match="out of range"):
        view[10**6]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_reference_blocked_exact_search_matches_the_whole_reference(monkeypatch, metric, exclude_self):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(700, 8)).astype(np.float32)
    query = ref if exclude_self else rng.normal(size=(50, 8)).astype(np.float32)
    whole = knn.knn_search(query, ref, 6, metric=metric, method="exact", exclude_self=exclude_self)
    monkeypatch.setattr(checks, "BLOCK_ELEMENTS", 8 * 64)  # 64 reference rows per block
    blocked = knn.knn_search(query, ref, 6, metric=metric, method="exact", exclude_self=exclude_self)
    np.testing.assert_array_equal(blocked[1], whole[1])
    np.testing.assert_allclose(blocked[0], whole[0], rtol=1e-5, atol=1e-5)


def _select(emb, probs, mask, labels, tmp_path, knn):
    an = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, labels, results_dir=tmp_path, random_state=0, verbose=False)
    out = {
        "uncertainty": an.run_uncertainty(write=False),
        "diversity": an.run_diversity(n_clusters=8, write=False),
        "novelty": an.run_novelty(method=knn, write=False),
    }
    out["intersection"] = an.find_intersection(budget=100, retrain=False, write=False)[0]
    return out


@pytest.mark.parametrize("knn", ["exact", "hnsw"])
def test_memory_mapped_embeddings_give_the_same_selection(pool, tmp_path, knn):
    emb, probs, labels, mask = pool
    np.save(tmp_path / "embeddings.npy", emb)
    mm = np.load(tmp_path / "embeddings.npy", mmap_mode="r")
    in_memory = _select(emb, probs, mask, labels, tmp_path, knn)
    mapped = _select(mm, probs, mask, labels, tmp_path, knn)
    for name in in_memory:
        np.testing.assert_array_equal(mapped[name], in_memory[name], err_msg=name)


def test_analyzer_does_not_copy_the_pool(pool, tmp_path):
    emb, probs, labels, mask = pool
    an = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, labels, results_dir=tmp_path, verbose=False)
    assert isinstance(an.standardized_, knn.StandardizedView)
    assert an.standardized_.base is an.embeddings_


def test_scale_benchmark_runs_and_checks_the_memory_mapped_path(tmp_path, capsys):
    out = tmp_path / "scale.json"
    # The parent runs here; every measurement runs in a child process, as on the command line.
    code = scale.main(["--sizes", "1500", "--pool", "1500", "--dim", "16", "--labeled", "60", "--budget", "50", "--mmap",
                       "--skip-baseline", "--recall-size", "0", "--json", str(out), "--workdir", str(tmp_path / "work")])
    assert code == 0
    res = json.loads(out.read_text())
    row = res["sizes"][0]
    assert set(row["ours"]["stages"]) == {"prepare", "uncertainty", "diversity", "novelty", "intersection"}
    assert all(s["peak_rss_mb"] > 0 for s in row["ours"]["stages"].values())
    assert row["ours"]["knn"] == knn.knn_method_for(1500 - 60, 60, 16)
    assert all(row["mmap_identical"].values())
    assert "seconds / peak RSS MB per stage" in capsys.readouterr().out


def test_scale_benchmark_engines_report_seconds_memory_per_worker_and_overlap(tmp_path):
    """--engine disk and --engine dask (a 2-worker local cluster) through the same command line;
    the KMeans fitted on the client makes the engine's selection the local one (Jaccard 1)."""
    pytest.importorskip("distributed")
    common = ["--pool", "3000", "--dim", "8", "--labeled", "100", "--budget", "40", "--shard-rows", "700",
              "--workdir", str(tmp_path / "work")]
    assert scale.main(common + ["--engine", "dask", "--workers", "2", "--kmeans", "client",
                                "--json", str(tmp_path / "dask.json")]) == 0
    res = json.loads((tmp_path / "dask.json").read_text())
    assert res["engine"] == "dask" and res["workers"] == 2 and [r["n"] for r in res["sizes"]] == [3000]
    row = res["sizes"][0]
    assert row["workers"] == 2 and row["jaccard_vs_local"] == 1.0
    assert set(row["seconds"]) == {"statistics", "kmeans", "plan", "scoring", "selection"}
    assert len(row["peak_memory_mb_per_worker"]) == 2 and all(m["peak_rss"] > 0 for m in row["peak_memory_mb_per_worker"])
    assert scale.main(common + ["--engine", "disk", "--json", str(tmp_path / "disk.json")]) == 0
    row = json.loads((tmp_path / "disk.json").read_text())["sizes"][0]
    assert row["engine"] == "disk" and set(row["seconds"]) == {"uncertainty", "diversity", "novelty"}
    assert row["peak_memory_mb_per_worker"][0]["peak_anon"] > 0
    assert list((tmp_path / "work").iterdir()) == []  # the shards are deleted
