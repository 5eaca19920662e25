"""The Dask engine on a local cluster (2 worker processes on 127.0.0.1, started and closed
here) on 150k rows in shards: with the KMeans fitted on the client, the same selection as
AL_functions.analyze on the same data (exact ranks: identical indices; sketched ranks with a
global top-k merge: Jaccard >= 0.95); with the KMeans reduced across the workers, the same
uncertainty and novelty and a KMeans objective as low as the single-machine fit's."""
import numpy as np
import pytest

from labelnext import heuristics as alf
from labelnext.scale import shards

pytest.importorskip("distributed")

from benchmarks.synthetic import make_pool  # noqa: E402

from labelnext.scale import engine  # noqa: E402
from labelnext.scale import kmeans as kmeans_sharded  # noqa: E402
from labelnext import knn  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

N, DIM, BUDGET = 150_000, 32, 500
# The inverted-file novelty search: the engine's plan (cells, calibration sample) must match.
PARAMS = {"novelty": {"method": "ivf"}}


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit="2GiB") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    emb, probs, _, mask = make_pool(N, DIM, 10, 5000, n_centers=30, random_state=0)
    root = tmp_path_factory.mktemp("pool")
    shards.write_shards(emb, root / "emb", 45_000)                  # 4 .npy shards, uneven last
    shards.write_shards(probs, root / "probs", 67_500, fmt="parquet")  # other boundaries, Parquet
    return emb, probs, mask, root


@pytest.fixture(scope="module")
def local(pool):
    """analyze() on the arrays in memory (computed once for the module)."""
    emb, probs, mask, _ = pool
    return alf.analyze(probs, emb, mask, PARAMS, BUDGET, random_state=0)


def _jaccard(a, b):
    a, b = set(a.tolist()), set(b.tolist())
    return len(a & b) / len(a | b)


def test_exact_ranks_give_the_single_machine_selection(client, pool, local):
    emb, probs, mask, root = pool
    dist = engine.analyze_sharded(client, root / "emb", root / "probs", mask, PARAMS, BUDGET, random_state=0,
                                  rows_per_task=37_500)  # kmeans='client', the default
    np.testing.assert_array_equal(dist["intersection"]["rows"], local["intersection"]["rows"])
    for name in alf.ANALYSES:
        np.testing.assert_array_equal(dist[name]["mask"], local[name]["mask"])
    # faiss's distances round differently with 1 thread (a worker) and 2 (here): last bit only.
    np.testing.assert_allclose(dist["novelty"]["scores"], local["novelty"]["scores"], rtol=1e-5)
    np.testing.assert_array_equal(dist["diversity"]["scores"], local["diversity"]["scores"])
    assert dist["engine"]["workers"] == 2 and dist["engine"]["tasks"] > 2
    assert dist["engine"]["knn"]["method"] == "ivf" and not dist["engine"]["knn"]["fallback"]


def test_sketched_ranks_and_global_top_k_merge_overlap_the_exact_selection(client, pool, local):
    emb, probs, mask, root = pool
    dist = engine.analyze_sharded(client, root / "emb", root / "probs", mask, PARAMS, BUDGET, random_state=0,
                                  ranks="sketch", kmeans="client", rows_per_task=37_500)
    rows = dist["intersection"]["rows"]
    assert rows.size == BUDGET and np.unique(rows).size == BUDGET
    assert _jaccard(rows, local["intersection"]["rows"]) >= 0.95
    assert abs(dist["intersection"]["info"]["n_intersection"] - local["intersection"]["info"]["n_intersection"]) \
        <= 0.01 * local["intersection"]["info"]["n_intersection"]


def test_kmeans_on_the_workers_fits_as_well_as_the_single_machine_kmeans(client, pool, local):
    """Only the centres differ: another fit of the same objective, as low as fit_kmeans's. The
    selection then moves as much as the single-machine one does between two seeds (measured at
    100k x 32: Jaccard 0.71 against seed 0, while seed 1 of analyze() gives 0.49)."""
    _, _, mask, root = pool
    dist = engine.analyze_sharded(client, root / "emb", root / "probs", mask, PARAMS, BUDGET, random_state=0,
                                  kmeans="workers", rows_per_task=37_500)
    for name in ("uncertainty", "novelty"):
        np.testing.assert_array_equal(dist[name]["mask"], local[name]["mask"])
    info = dist["engine"]["kmeans"]
    assert info["where"] == "workers" and info["converged"] and info["sample_rows"] == min(100_000, N - 5000)
    assert dist["diversity"]["params"]["algorithm"] == "lloyd-on-workers"
    inertia = [float(np.square(r["diversity"]["scores"], dtype=np.float64).sum()) for r in (dist, local)]
    assert inertia[0] <= 1.01 * inertia[1]
    rows = dist["intersection"]["rows"]
    assert rows.size == BUDGET and np.unique(rows).size == BUDGET


def test_kmeans_on_the_workers_gives_the_centres_of_the_same_steps_in_one_process(client):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=8.0, size=(5, 4)).astype(np.float32)
    x = centres[rng.integers(0, 5, 3000)] + rng.standard_normal((3000, 4), dtype=np.float32)
    parts = [x[:1000], x[1000:1700], x[1700:]]
    here, info_here = kmeans_sharded.kmeans_on_workers(None, parts, 5, random_state=0)
    there, info_there = kmeans_sharded.kmeans_on_workers(client, client.scatter(parts), 5, random_state=0)
    np.testing.assert_array_equal(there, here)
    assert info_there == info_here and info_here["converged"]
    # Well-separated blobs: each true centre recovered (to the noise's standard error).
    found = knn.assign_to_centers(centres, here)[1]
    assert found.max() < 0.2


def test_partial_sums_of_one_part_by_hand():
    part = np.array([[0, 0], [1, 0], [9, 9], [10, 9], [0.5, 1]], dtype=np.float32)
    centers = np.array([[0, 0], [10, 10], [50, 50]], dtype=np.float32)
    sums, counts, inertia, far, far_d2 = kmeans_sharded.task_partial_sums(part, centers)
    np.testing.assert_allclose(sums, [[1.5, 1], [19, 18], [0, 0]])
    np.testing.assert_array_equal(counts, [3, 2, 0])
    assert inertia == pytest.approx(0 + 1 + 2 + 1 + 1.25)
    np.testing.assert_array_equal(far, [9, 9])
    assert far_d2 == pytest.approx(2.0)


def test_an_empty_centre_restarts_at_the_farthest_row():
    """A centre that wins no row moves to the row farthest from its centre, so each of the
    three blobs ends with its own centre."""
    x = np.concatenate([np.zeros((50, 2)), np.full((30, 2), 10.0), np.full((2, 2), 100.0)]).astype(np.float32)
    init = np.array([[0, 0], [60, 60], [-500, -500]], dtype=np.float32)  # the third wins nothing
    centers, info = kmeans_sharded.kmeans_on_workers(None, [x[:60], x[60:]], 3, init=init)
    # Step 1: centre 2 restarts at (100, 100) (the farthest row), centre 0 holds both near
    # blobs; step 2: centres 1 and 2 coincide, 2 wins nothing and restarts at (10, 10).
    np.testing.assert_allclose(centers, [[0, 0], [100, 100], [10, 10]], atol=1e-5)
    assert info["converged"]


def test_sketch_needs_a_budget(client, pool):
    _, _, mask, root = pool
    with pytest.raises(ValueError, match="ranks='sketch' needs a budget"):
        engine.analyze_sharded(client, root / "emb", root / "probs", mask, ranks="sketch")


def test_kmeans_place_is_checked(client, pool):
    _, _, mask, root = pool
    with pytest.raises(ValueError, match="kmeans must be one of"):
        engine.analyze_sharded(client, root / "emb", root / "probs", mask, kmeans="driver")


def test_row_counts_must_agree(client, pool, tmp_path):
    emb, _, mask, root = pool
    np.save(tmp_path / "short.npy", np.full((10, 3), 1 / 3, dtype=np.float32))
    with pytest.raises(ValueError, match=f"probs has 10 rows but embeddings has {N}"):
        engine.analyze_sharded(client, root / "emb", tmp_path / "short.npy", mask)


# --------------------------------------------------------------------------- no cluster
@pytest.mark.parametrize("method", ["exact", "faiss", "hnsw", "ivf"])
def test_block_searcher_answers_each_row_as_knn_search_does(method):
    """What each worker runs on its shard: the same neighbours as one search over all rows."""
    from labelnext import knn

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10.0, size=(40, 16)).astype(np.float32)  # well separated: IVF cells pay
    x = knn.StandardizedView(centres[rng.integers(0, 40, 14_000)] + rng.standard_normal((14_000, 16), dtype=np.float32))
    query, ref = x[2_000:], np.asarray(x[:2_000])
    whole_d, whole_i = knn.knn_search(query, ref, 5, method=method, random_state=0)
    searcher = knn.BlockSearcher(query, ref, 5, method=method, random_state=0)
    assert method != "ivf" or not searcher.info["fallback"]
    parts = [searcher(query[np.arange(s, min(s + 5_000, len(query)))]) for s in range(0, len(query), 5_000)]
    # faiss's BLAS blocking depends on the rows searched together: near-equal distances
    # may swap places (0.03% of entries here), the distances agree to rounding.
    assert (np.vstack([p[1] for p in parts]) == whole_i).mean() >= 0.999
    np.testing.assert_allclose(np.vstack([p[0] for p in parts]), whole_d, rtol=1e-4, atol=1e-4)
@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_shards_read_rows_across_boundaries(tmp_path, fmt):
    x = np.arange(1000 * 7, dtype=np.float32).reshape(1000, 7)
    paths = shards.write_shards(x, tmp_path / "s", 300, fmt=fmt)
    assert [p.name for p in paths] == [f"part-0000{i}.{fmt}" for i in range(4)]
    r = shards.open_rows(tmp_path / "s")
    assert r.shape == (1000, 7) and r.offsets.tolist() == [0, 300, 600, 900, 1000]
    np.testing.assert_array_equal(r[250:720], x[250:720])          # spans three shards
    np.testing.assert_array_equal(r[[999, 0, 301, 5]], x[[999, 0, 301, 5]])
    mask = np.zeros(1000, dtype=bool)
    mask[[3, 598, 600, 999]] = True
    np.testing.assert_array_equal(r[mask], x[mask])
    np.testing.assert_array_equal(np.asarray(r), x)
    blocks = list(shards.iter_blocks(r, 128))
    assert [(s, e) for s, e, _ in blocks][-1] == (896, 1000)
    np.testing.assert_array_equal(np.vstack([b for _, _, b in blocks]), x)


def test_sharded_rows_standardise_like_the_array(tmp_path):
    from labelnext import knn

    x = np.random.default_rng(0).standard_normal((500, 6)).astype(np.float32) * 3 + 1
    shards.write_shards(x, tmp_path / "s", 128)
    view = knn.StandardizedView(shards.open_rows(tmp_path / "s"))
    np.testing.assert_array_equal(np.asarray(view), knn.standardize(x))


def test_shards_refuse_mixed_or_bad_input(tmp_path):
    x = np.ones((10, 3), dtype=np.float32)
    shards.write_shards(x, tmp_path / "s", 4)
    with pytest.raises(ValueError, match="already holds shards"):
        shards.write_shards(x, tmp_path / "s", 4)
    shards.write_shards(x, tmp_path / "p", 4, fmt="parquet")
    (tmp_path / "p" / "part-00000.parquet").rename(tmp_path / "s" / "part-00100.parquet")
    with pytest.raises(ValueError, match="mixes .npy and .parquet shards"):
        shards.open_rows(tmp_path / "s")
    with pytest.raises(ValueError, match="path must be a .npy file, a .parquet file or a folder of shards, got"):
        shards.open_rows(tmp_path / "x.csv")
    (tmp_path / "w").mkdir()
    np.save(tmp_path / "w" / "part-00000.npy", x)
    np.save(tmp_path / "w" / "part-00001.npy", np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"shards have different feature counts \[3, 4\]"):
        shards.open_rows(tmp_path / "w")
