"""KMeans on a Dask cluster: the rows stay on the workers, only centres and per-centre sums travel.

Lloyd's algorithm (S. P. Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory
28(2), 1982) on a seeded sample of the pool that the workers read from their own ranges and
keep in memory (the sample never reaches the client). Each step broadcasts the ``k`` centres;
every part returns its per-centre float64 sums ``(k, d)`` and counts ``(k,)``, its inertia
and its row farthest from a centre; the client adds the parts in order (same seed and parts:
the same centres, whatever the number of workers) and moves every centre to the mean of its
rows. Seeding: the best of ``n_init`` k-means++ runs (D. Arthur and S. Vassilvitskii,
"k-means++: the advantages of careful seeding", SODA 2007) on :data:`INIT_ROWS` rows drawn
from the parts, as scikit-learn's ``MiniBatchKMeans`` seeds on ``3 * batch_size`` rows.
A centre left with no rows restarts at the row farthest from its centre (scikit-learn's rule).
"""
import numpy as np
from sklearn.cluster import kmeans_plusplus
from sklearn.utils import check_random_state

from labelnext import knn
from labelnext.scale import shards
from labelnext.utils.checks import check_int, chunks

# Rows of the sample the workers keep (the single-machine fit_kmeans samples as many).
SAMPLE_ROWS = 100_000
# Rows per part of the sample (one task per part and Lloyd step).
PART_ROWS = 10_000
# Rows gathered to the client for k-means++ seeding (scikit-learn's MiniBatchKMeans: 3 x 4096).
INIT_ROWS = 12_288
# Convergence: squared centre movement summed over centres, in standardised units (the
# features have unit variance, so this is scikit-learn's relative tol of 1e-4).
TOL = 1e-4
MAX_ITER = 100


# --------------------------------------------------------------------------- worker tasks
def task_rows(path, mean, std, rows):
    """Standardised float32 rows of the pool file (global row numbers, sorted)."""
    return np.asarray(knn.StandardizedView(shards.open_rows(path), mean, std, rows=rows))


def task_pick(part, size, seed):
    """``size`` rows of a part, drawn without replacement (for the k-means++ seeding)."""
    if size == 0:
        return part[:0]
    rows = np.random.default_rng(seed).choice(part.shape[0], size, replace=False)
    return part[np.sort(rows)]


def task_partial_sums(part, centers):
    """One Lloyd step's statistics of a part.

    Returns
    -------
    sums : ndarray of shape (k, d), float64
        Sum of the part's rows nearest to each centre (added in row order: deterministic).
    counts : ndarray of shape (k,), int64
    inertia : float
        Sum of squared distances to the nearest centre.
    far : ndarray of shape (d,), float32, and its squared distance (a restart for an empty centre)
    """
    k, d = centers.shape
    sums, counts = np.zeros((k, d)), np.zeros(k, dtype=np.int64)
    if part.shape[0] == 0:
        return sums, counts, 0.0, np.zeros(d, dtype=np.float32), -1.0
    labels, dist = knn.assign_to_centers(part, centers)
    order = np.argsort(labels, kind="stable")
    present, starts = np.unique(labels[order], return_index=True)
    sums[present] = np.add.reduceat(part[order], starts, axis=0, dtype=np.float64)
    counts[:] = np.bincount(labels, minlength=k)
    far = int(np.argmax(dist))
    return sums, counts, float(np.square(dist, dtype=np.float64).sum()), part[far].copy(), float(dist[far]) ** 2


# --------------------------------------------------------------------------- client side
def sample_on_workers(client, path, mean, std, pool_rows, size=SAMPLE_ROWS, *, part_rows=PART_ROWS,
                      random_state=None):
    """Futures of a seeded sample of the pool in parts of ``part_rows`` rows, each read and held by a worker.

    The parts depend on the sample only (not on the pool's size or the number of workers), so
    a Lloyd step is ``size / part_rows`` tasks at any scale and gives the same sums everywhere.

    Parameters
    ----------
    client : distributed.Client
    path : str or Path
        Pool embeddings every worker can read (:func:`shards.open_rows`).
    mean, std : ndarray of shape (n_features,)
        Standardisation applied by the workers.
    pool_rows : ndarray of int64, sorted
        Global rows of the pool (unlabeled items).
    size : int
        Sample rows in all (every pool row when the pool is smaller).
    part_rows : int
        Rows per part.

    Returns
    -------
    list of distributed.Future, each holding an ndarray of shape (n_i, n_features), float32
    """
    check_int(size, "size", low=1)
    check_int(part_rows, "part_rows", low=1)
    rng = check_random_state(random_state)
    n = pool_rows.size
    rows = pool_rows[np.sort(rng.choice(n, size, replace=False))] if n > size else pool_rows
    return [client.submit(task_rows, path, mean, std, rows[a:b], pure=False) for a, b in chunks(rows.size, part_rows)]


def kmeans_on_workers(client, parts, n_clusters, *, random_state=None, init=None, n_init=3, init_rows=INIT_ROWS,
                      max_iter=MAX_ITER, tol=TOL):
    """Lloyd's KMeans on rows held by the workers; the client holds the centres and ``init_rows`` rows once.

    Parameters
    ----------
    client : distributed.Client or None
        None: ``parts`` are the arrays themselves and every step runs in this process (the
        same arithmetic in the same order: the same centres as on a cluster).
    parts : list of distributed.Future or of ndarray
        Each holds an ndarray of shape (n_i, n_features), float32 (:func:`sample_on_workers`).
    n_clusters : int, at most the total rows
    random_state : int, RandomState or None
    init : ndarray of shape (n_clusters, n_features), optional
        Starting centres (no seeding).
    n_init : int
        k-means++ seedings on the gathered rows; the one with the lowest inertia there is refined.
    init_rows : int
        Rows gathered for the seeding.
    max_iter : int
        Lloyd steps at most (each one round trip over every part).
    tol : float
        Stop when the summed squared movement of the centres is at most this.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), float32
    info : dict
        ``n_iter``, ``inertia`` (sum over the sample of squared distances to the final
        centres' predecessors, i.e. at the last assignment), ``sample_rows``, ``converged``.
    """
    check_int(n_init, "n_init", low=1)
    check_int(max_iter, "max_iter", low=1)
    check_int(init_rows, "init_rows", low=1)
    if not tol >= 0:
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    rng = check_random_state(random_state)

    def run(fn, *per_part):  # fn(part, *its arguments) on every part, results in part order
        calls = [(p, *a) for p, a in zip(parts, zip(*per_part))] if per_part else [(p,) for p in parts]
        if client is None:
            return [fn(*c) for c in calls]
        return client.gather([client.submit(fn, *c, pure=False) for c in calls])

    sizes = np.array(run(len), dtype=np.int64)
    total = int(sizes.sum())
    check_int(n_clusters, "n_clusters", low=1, high=total)
    if init is None:
        centers = _seed(run, sizes, n_clusters, rng, n_init, init_rows)
    else:
        centers = np.array(init, dtype=np.float32)
        if centers.ndim != 2 or centers.shape[0] != n_clusters:
            raise ValueError(f"init must have shape (n_clusters={n_clusters}, n_features), got {centers.shape}")
    converged, inertia = False, np.inf
    for it in range(1, max_iter + 1):
        results = run(task_partial_sums, [centers] * len(parts))
        sums, counts = np.zeros(centers.shape), np.zeros(n_clusters, dtype=np.int64)
        for s, c, _, _, _ in results:  # in part order: the same sums whatever worker ran which part
            sums += s
            counts += c
        inertia = sum(r[2] for r in results)
        new = centers.astype(np.float64)
        filled = counts > 0
        new[filled] = sums[filled] / counts[filled, None]
        empty = np.flatnonzero(~filled)
        if empty.size:  # restart each at one of the rows farthest from their centres
            far = sorted(range(len(results)), key=lambda i: -results[i][4])[:empty.size]
            for j, i in zip(empty, far):
                new[j] = results[i][3]
        new = new.astype(np.float32)
        shift = float(np.square(new.astype(np.float64) - centers).sum())
        centers = new
        if shift <= tol and not empty.size:
            converged = True
            break
    return centers, {"n_iter": it, "inertia": float(inertia), "sample_rows": total, "converged": converged}


def _seed(run, sizes, n_clusters, rng, n_init, init_rows):
    """Best of ``n_init`` k-means++ seedings on ``init_rows`` rows, each part giving its share."""
    take = _shares(sizes, min(int(sizes.sum()), max(init_rows, n_clusters)))
    seeds = rng.randint(0, 2**31 - 1, size=sizes.size)
    init_x = np.concatenate(run(task_pick, take.tolist(), seeds.tolist()))
    best = None
    for _ in range(n_init):
        centers, _ = kmeans_plusplus(init_x, n_clusters, random_state=rng)
        _, dist = knn.assign_to_centers(init_x, centers)
        inertia = float(np.square(dist, dtype=np.float64).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centers.astype(np.float32))
    return best[1]


def _shares(sizes, n):
    """``n`` split over parts in proportion to ``sizes`` (largest remainders; never more than a part has)."""
    exact = sizes * (n / sizes.sum())
    take = np.minimum(np.floor(exact).astype(np.int64), sizes)
    rest = np.argsort(-(exact - take), kind="stable")
    for i in rest:
        if take.sum() >= n:
            break
        if take[i] < sizes[i]:
            take[i] += 1
    return take
