"""Standardised view of embeddings and the project's one nearest-neighbour index.

Backends (:mod:`knn_backends`): NumPy exact (blocked), faiss exact flat, hnswlib
HNSW, and an inverted file with exact distances and a measured recall (:mod:`knn_ivf`);
``method='auto'`` picks by a cost model measured on 2 cores (:func:`knn_method_for`).
Works on memory-mapped arrays block by block. :class:`BlockSearcher` plans a search
once and runs it on any rows (the distributed engine's workers).
"""
import numbers

import numpy as np
from sklearn.utils import check_random_state

from labelnext.utils.checks import check_choice, check_embeddings, check_int, chunks, rows_per_block
from labelnext.utils.extras import require
from labelnext.utils.defaults import KNN_METHODS, KNN_METRICS  # noqa: F401  (knn.KNN_METHODS stays importable)
from labelnext.knn.backends import (HNSW_SERIAL_BUILD_MAX_ROWS, cosine_distance, exact_knn, faiss_available,  # noqa: F401
                          faiss_knn, hnsw_index, hnswlib_available, hnsw_knn, l2_normalize, search_inchunks)
from labelnext.knn.ivf import (IVF_BLOCK_ROWS, IVF_MAX_SCAN, IVF_MIN_REFERENCE, IVF_SAMPLE_QUERIES, IVF_TARGET_RECALL,  # noqa: F401
                     ivf_knn, ivf_knn_raw, ivf_plan)


# Exact kNN costs n_query * n_reference dot products; above this many pairs the
# approximate hnswlib index is used (measured: exact 1M x 5k is ~60 s on 2 cores).
# With faiss-cpu installed, 'auto' picks by the cost model in knn_method_for().
EXACT_KNN_MAX_PAIRS = 1_000_000_000
# Inverted file ('ivf'): 'auto' picks it, with faiss installed, where it would pick
# faiss's flat search and the problem has at least this many pairs (measured on 2 cores
# at 5k labeled x 576: see README "Large pools").
IVF_MIN_PAIRS = 2_000_000_000
# Up to this many pairs 'auto' always runs the NumPy exact search (small inputs: unchanged).
SMALL_KNN_MAX_PAIRS = 100_000_000
# Seconds per pair per feature, and per row per feature, measured at d=576 on 2 cores
# (Xeon, AVX-512): faiss IndexFlatL2 100k x 5k in 2.0 s; hnswlib (M=16) builds 100k rows
# in 14 s and answers ~33k queries/s at ef=64 against a 5k-row graph.
_FAISS_FLAT_S_PER_PAIR_DIM = 7e-12
_HNSW_BUILD_S_PER_ROW_DIM = 2.5e-7
_HNSW_QUERY_S_PER_ROW_DIM = 5e-8


def standardization_stats(embeddings):
    """Per-feature mean and std computed in blocks (works on memory-mapped arrays).

    Returns
    -------
    mean, std : ndarray of shape (n_features,), float32; zero stds are replaced by 1.
    """
    n, d = embeddings.shape
    total = np.zeros(d, dtype=np.float64)
    total_sq = np.zeros(d, dtype=np.float64)
    for start, stop in chunks(n, stats_block_rows(d)):
        s, sq = block_sums(embeddings[start:stop])
        total += s
        total_sq += sq
    return stats_from_sums(total, total_sq, n)


def stats_block_rows(n_features):
    """Rows per block of :func:`standardization_stats`: blocks start at multiples of it, and
    adding :func:`block_sums` of the same blocks in the same order gives the same statistics."""
    return rows_per_block(n_features) // 4


def block_sums(rows):
    """Float64 per-feature sum and sum of squares of one block of rows."""
    block = np.asarray(rows, dtype=np.float64)
    return block.sum(axis=0), np.square(block).sum(axis=0)


def stats_from_sums(total, total_sq, n):
    """Mean and std (float32) from float64 sums over ``n`` rows; see :func:`standardization_stats`."""
    mean = total / n
    var = np.maximum(total_sq / n - mean**2, 0.0)
    std = np.sqrt(var)
    # Constant features get std 1. The floor is relative to the data's own scale because
    # untrained MobileNetV3 embeddings are ~1e-11 and must still be standardised.
    scale = max(float(std.max()), float(np.abs(mean).max()))
    std[std <= 1e-6 * scale] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def standardize(embeddings, mean=None, std=None):
    """Standardised float32 copy, built block by block."""
    if mean is None or std is None:
        mean, std = standardization_stats(embeddings)
    n, d = embeddings.shape
    out = np.empty((n, d), dtype=np.float32)
    for start, stop in chunks(n, rows_per_block(d)):
        out[start:stop] = (np.asarray(embeddings[start:stop], dtype=np.float32) - mean) / std
    return out


class StandardizedView:
    """``(embeddings[rows] - mean) / std`` computed block by block when read, never all at once.

    Lets the analyses run on pools larger than memory (a memory-mapped ``.npy``) and
    avoids a standardised float32 copy of a large in-memory pool. Values are bitwise
    those of :func:`standardize`.

    Indexing: a slice reads that block of rows and returns a standardised float32
    ndarray; an integer array or boolean mask returns a lazy sub-view (nothing is
    read); ``np.asarray(view)`` materialises everything.

    Parameters
    ----------
    embeddings : ndarray or memmap of shape (n_samples, n_features)
    mean, std : ndarray of shape (n_features,), optional
        Default: :func:`standardization_stats` over all rows of ``embeddings``.
    rows : ndarray of int, optional
        Rows of ``embeddings`` this view covers (default: all).
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, embeddings, mean=None, std=None, rows=None, _finite_checked=None):
        if mean is None or std is None:
            mean, std = standardization_stats(embeddings)
        self.base = embeddings
        # Shared with sub-views: check_embeddings reads the base once.
        self._finite_checked = [False] if _finite_checked is None else _finite_checked
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        n = embeddings.shape[0] if self.rows is None else self.rows.shape[0]
        self.shape = (n, embeddings.shape[1])

    def __len__(self):
        return self.shape[0]

    def check_finite(self, name="embeddings"):
        """Finite raw rows and statistics give finite standardised rows: check the base
        once for the view and every sub-view of it (called by ``checks.check_embeddings``)."""
        if not self._finite_checked[0]:
            check_embeddings(self.base, name=name)
            if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all()):
                raise ValueError(f"{name}: standardisation statistics are not finite")
            self._finite_checked[0] = True

    def __repr__(self):
        return f"StandardizedView(shape={self.shape}, base={type(self.base).__name__})"

    def _standardize(self, raw):
        return (np.asarray(raw, dtype=np.float32) - self.mean) / self.std

    def __getitem__(self, key):
        n = self.shape[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step != 1:
                return np.asarray(self[np.arange(start, stop, step)])
            if self.rows is None:
                return self._standardize(self.base[start:stop])
            return self._standardize(self.base[self.rows[start:stop]])
        if isinstance(key, numbers.Integral):
            if not -n <= key < n:
                raise IndexError(f"row {key} is out of range for a view of {n} rows")
            return self[int(key) % n: int(key) % n + 1][0]
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (n,):
                raise IndexError(f"boolean index of shape {key.shape} does not match {n} rows")
            idx = np.flatnonzero(key)
        elif np.issubdtype(key.dtype, np.integer) and key.ndim == 1:
            idx = key.astype(np.int64)
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"row index out of range for a view of {n} rows")
            idx = np.where(idx < 0, idx + n, idx)
        else:
            raise IndexError("a StandardizedView takes a slice, an integer, an integer array or a boolean mask")
        return StandardizedView(self.base, self.mean, self.std, idx if self.rows is None else self.rows[idx],
                                _finite_checked=self._finite_checked)

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, dtype=np.float32)
        for start, stop in chunks(self.shape[0], rows_per_block(self.shape[1])):
            out[start:stop] = self[start:stop]
        return out if dtype is None else out.astype(dtype, copy=False)


def standardized_view(embeddings):
    """A lazy :class:`StandardizedView` over all rows (statistics computed now, in blocks)."""
    return StandardizedView(embeddings)


# :func:`pca_project` fits its components on at most this many seeded rows (576-d: the
# covariance of 20k rows costs about one pass over 20k rows; the leading components of a
# clustered pool are stable at that size).
PCA_SAMPLE_ROWS = 20_000


def pca_project(x, n_components, *, sample_size=PCA_SAMPLE_ROWS, random_state=None):
    """Rows projected on the leading principal components of a seeded sample of rows.

    The components are the top eigenvectors of the sample's covariance (float64);
    every row is then centred on the sample mean and projected, block by block (works
    on memory-mapped arrays and :class:`StandardizedView`). Signs of the components
    are arbitrary; distances between projected rows are not.

    Parameters
    ----------
    x : ndarray, memmap or StandardizedView of shape (n_samples, n_features)
    n_components : int, 1 <= n_components <= n_features
    sample_size : int, default=PCA_SAMPLE_ROWS
        Rows the components are fitted on (all rows when fewer), at least 2.
    random_state : int, RandomState or None
        Seeds the sample.

    Returns
    -------
    projected : ndarray of shape (n_samples, n_components), float32
    """
    n, d = x.shape
    check_int(n_components, "n_components", low=1, high=d)
    check_int(sample_size, "sample_size", low=2)
    if n < 2:
        raise ValueError(f"pca_project needs at least 2 rows, got {n}")
    rng = check_random_state(random_state)
    rows = np.sort(rng.choice(n, sample_size, replace=False)) if n > sample_size else np.arange(n)
    sample = np.asarray(x[rows], dtype=np.float64)
    mean = sample.mean(axis=0)
    sample -= mean
    _, vectors = np.linalg.eigh(sample.T @ sample)  # eigenvalues ascending
    components = np.ascontiguousarray(vectors[:, ::-1][:, :n_components], dtype=np.float32)
    mean = mean.astype(np.float32)
    out = np.empty((n, n_components), dtype=np.float32)
    for start, stop in chunks(n, rows_per_block(d)):
        out[start:stop] = (np.asarray(x[start:stop], dtype=np.float32) - mean) @ components
    return out


def neighbour_recall(found, exact):
    """Mean share of each row's exact neighbours that a search found.

    Parameters
    ----------
    found : array-like of int, shape (n_rows, k_found)
        Neighbour ids returned by a search (-1 pads count as misses).
    exact : array-like of int, shape (n_rows, k)
        The exact neighbour ids of the same rows.

    Returns
    -------
    recall : float in [0, 1]
    """
    found, exact = np.asarray(found), np.asarray(exact)
    if found.ndim != 2 or exact.ndim != 2 or found.shape[0] != exact.shape[0] or 0 in exact.shape:
        raise ValueError(f"found and exact must be 2-d with the same (>= 1) rows and k >= 1, got shapes "
                         f"{found.shape} and {exact.shape}")
    hits = (exact[:, :, None] == found[:, None, :]).any(axis=2)
    return float(hits.mean())


def knn_method_for(n_query, n_reference, n_features):
    """What ``knn_search(method='auto')`` runs for a problem of this size.

    NumPy exact search up to ``SMALL_KNN_MAX_PAIRS`` pairs. Above, with faiss-cpu
    installed: whichever of faiss's exact flat search and an HNSW graph the measured
    cost model says is faster (flat grows with query x reference pairs, HNSW with
    reference rows to build plus queries), and where that is the flat search on at
    least ``IVF_MIN_PAIRS`` pairs, the inverted file (:func:`ivf_knn`: exact
    distances, recall measured per call, exact fallback); without faiss: exact up to
    ``EXACT_KNN_MAX_PAIRS`` pairs, HNSW above; without faiss and hnswlib (the 'scale'
    extra), exact at every size (slower, same answer).
    """
    pairs = n_query * n_reference
    if pairs <= SMALL_KNN_MAX_PAIRS:
        return "exact"
    if faiss_available():
        flat_s = pairs * n_features * _FAISS_FLAT_S_PER_PAIR_DIM
        hnsw_s = (n_reference * _HNSW_BUILD_S_PER_ROW_DIM + n_query * _HNSW_QUERY_S_PER_ROW_DIM) * n_features
        if flat_s > hnsw_s:
            return "hnsw"
        return "ivf" if pairs >= IVF_MIN_PAIRS and n_reference >= IVF_MIN_REFERENCE else "faiss"
    return "hnsw" if pairs > EXACT_KNN_MAX_PAIRS and hnswlib_available() else "exact"


def knn_search(query, reference, k, *, metric="euclidean", method="auto", exclude_self=False, ef=64, random_state=None):
    """The project's one nearest-neighbour index.

    Exact blocked search (never materialising the whole query-by-reference matrix)
    for small problems; above, faiss's exact flat search or an hnswlib HNSW graph,
    whichever is faster for the shape (see :func:`knn_method_for`). Query rows are
    read block by block (memmaps and :class:`StandardizedView` stay lazy).

    Parameters
    ----------
    query : ndarray of shape (n_query, n_features)
    reference : ndarray of shape (n_reference, n_features)
    k : int
        Neighbours per query, at most ``n_reference`` (minus one with ``exclude_self``).
    metric : {'euclidean', 'cosine'}
        Cosine returns ``1 - cos`` distances.
    method : {'auto', 'exact', 'hnsw', 'faiss', 'ivf'}
        ``exact`` (NumPy) and ``faiss`` (IndexFlatL2, needs faiss-cpu) are exact;
        ``hnsw`` is approximate; ``ivf`` (needs faiss-cpu) returns exact distances
        for neighbours found with a recall of at least ``IVF_TARGET_RECALL`` on a
        sample of queries, else runs the exact search (see :func:`ivf_knn`).
    exclude_self : bool
        ``query`` and ``reference`` are the same set; row i never returns i.
    ef : int
        HNSW search breadth (recall against speed).
    random_state : int, RandomState or None
        Seeds the HNSW graph construction and the IVF cells and sample.

    Returns
    -------
    distances : ndarray of shape (n_query, k), float32, ascending per row
    indices : ndarray of shape (n_query, k), int64
    """
    check_choice(metric, "metric", KNN_METRICS)
    check_choice(method, "method", KNN_METHODS)
    n_ref = reference.shape[0]
    if n_ref == 0:
        raise ValueError("reference set is empty: need at least one reference (labeled) item")
    check_int(k, "k", low=1, high=n_ref - 1 if exclude_self else n_ref)
    if query.shape[1] != reference.shape[1]:
        raise ValueError(f"query has {query.shape[1]} features but reference has {reference.shape[1]}")
    # Cosine: rows are L2-normalised block by block as they are read (query may be a memmap or a view).
    normalize = metric == "cosine"
    if method == "auto":
        method = knn_method_for(query.shape[0], n_ref, query.shape[1])
    if method == "exact":
        dist, idx = exact_knn(query, reference, k, exclude_self, normalize)
    elif method in ("faiss", "ivf"):
        require("faiss", "scale", f"nearest-neighbour method {method!r}")
        if method == "faiss":
            dist, idx = faiss_knn(query, reference, k, exclude_self, normalize)
        else:
            dist, idx, _ = ivf_knn_raw(query, reference, k, exclude_self, normalize, random_state, IVF_TARGET_RECALL)
    else:
        dist, idx = hnsw_knn(query, reference, k, exclude_self, random_state, ef, normalize)
    return (cosine_distance(dist) if metric == "cosine" else dist), idx



class BlockSearcher:
    """A nearest-neighbour search planned once, then run on any rows of the query set.

    What :func:`knn_search` does without ``exclude_self``, split in two so that a
    distributed engine plans on the client (method, IVF cells and calibration, HNSW
    graph) and each worker searches its own shard: ``searcher(rows)`` returns for each
    row what ``knn_search(query, ...)`` returns for it (each query row is answered
    independently of the others; only faiss's BLAS blocking, which depends on the rows
    searched together, may swap neighbours whose distances agree to rounding). Picklable.

    Parameters
    ----------
    query : array-like of shape (n_query, n_features)
        Only its shape is read, and for ``method='ivf'`` the calibration sample's rows.
    reference, k, metric, method, ef, random_state : as in :func:`knn_search`

    Attributes
    ----------
    method : str, the backend that runs ('auto' resolved)
    info : dict, the IVF plan (see :func:`ivf_knn`) or empty
    """

    def __init__(self, query, reference, k, *, metric="euclidean", method="auto", ef=64, random_state=None):
        check_choice(metric, "metric", KNN_METRICS)
        check_choice(method, "method", KNN_METHODS)
        check_int(k, "k", low=1, high=reference.shape[0])
        self.k, self.metric, self.normalize = k, metric, metric == "cosine"
        self.method = knn_method_for(query.shape[0], reference.shape[0], query.shape[1]) if method == "auto" else method
        if self.method in ("faiss", "ivf"):  # said here, on the client, not by every worker
            require("faiss", "scale", f"nearest-neighbour method {self.method!r}")
        self.reference = np.ascontiguousarray(reference, dtype=np.float32)
        self.info, self._index, self._n_probe = {}, None, None
        if self.method == "ivf":
            self._index, self._n_probe, self.info = ivf_plan(query, self.reference, k, False, self.normalize,
                                                              check_random_state(random_state), IVF_TARGET_RECALL)
        elif self.method == "hnsw":
            self._index = hnsw_index(self.reference, random_state, ef, k, self.normalize)

    def __call__(self, rows):
        """Neighbours of ``rows`` (array-like of shape (n, n_features)): ``(distances, indices)``."""
        k, norm = self.k, self.normalize
        if self.method == "exact":
            dist, idx = exact_knn(rows, self.reference, k, False, norm)
        elif self.method == "hnsw":
            dist, idx = search_inchunks(lambda q: self._index.knn_query(q, k=k, num_threads=-1), rows, k, False, norm)
        elif self.method == "ivf" and self._index is not None:
            dist, idx = search_inchunks(lambda q: self._index.search(q, k, self._n_probe), rows, k, False, norm,
                                         block_rows=IVF_BLOCK_ROWS)
        else:  # 'faiss', and 'ivf' that fell back to the exact flat search
            dist, idx = faiss_knn(rows, self.reference, k, False, norm)
        return (cosine_distance(dist) if self.metric == "cosine" else dist), idx


def assign_to_centers(embeddings, centers):
    """Nearest centre and distance to it for each row, in blocks.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    distances : ndarray of shape (n_samples,), float32
    """
    dist, idx = exact_knn(embeddings, centers, 1, exclude_self=False)
    return idx[:, 0], dist[:, 0]
