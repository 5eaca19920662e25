"""Standardised view of embeddings and the project's one nearest-neighbour index.

Backends: NumPy exact (blocked), faiss exact flat, an inverted file with exact
distances and a measured recall (:mod:`knn_ivf`), hnswlib HNSW; ``method='auto'``
picks by a cost model measured on 2 cores (:func:`knn_method_for`). Works on
memory-mapped arrays block by block.
"""
import numbers

import numpy as np
from sklearn.utils import check_random_state

import checks
import knn_ivf
from checks import check_choice, check_embeddings, check_int, chunks, rows_per_block

KNN_METHODS = ("auto", "exact", "hnsw", "faiss", "ivf")
KNN_METRICS = ("euclidean", "cosine")
KMEANS_ALGORITHMS = ("auto", "kmeans", "minibatch")

# Exact kNN costs n_query * n_reference dot products; above this many pairs the
# approximate hnswlib index is used (measured: exact 1M x 5k is ~60 s on 2 cores).
# With faiss-cpu installed, 'auto' picks by the cost model in knn_method_for().
EXACT_KNN_MAX_PAIRS = 1_000_000_000
# Up to this many pairs 'auto' always runs the NumPy exact search (small inputs: unchanged).
SMALL_KNN_MAX_PAIRS = 100_000_000
# Seconds per pair per feature, and per row per feature, measured at d=576 on 2 cores
# (Xeon, AVX-512): faiss IndexFlatL2 100k x 5k in 2.0 s; hnswlib (M=16) builds 100k rows
# in 14 s and answers ~33k queries/s at ef=64 against a 5k-row graph.
_FAISS_FLAT_S_PER_PAIR_DIM = 7e-12
_HNSW_BUILD_S_PER_ROW_DIM = 2.5e-7
_HNSW_QUERY_S_PER_ROW_DIM = 5e-8
# HNSW graphs up to this many reference rows are built on one thread (reproducible);
# larger ones in parallel (about 2x faster, not bit-reproducible).
HNSW_SERIAL_BUILD_MAX_ROWS = 20_000
# Inverted file ('ivf'): 'auto' picks it, with faiss installed, where it would pick
# faiss's flat search and the problem has at least this many pairs (measured on 2 cores
# at 5k labeled x 576: see README "Large pools").
IVF_MIN_PAIRS = 2_000_000_000
# n_probe is the smallest power of two whose recall on a sample of IVF_SAMPLE_QUERIES
# queries (against their exact neighbours) reaches IVF_TARGET_RECALL; when that needs
# more than IVF_MAX_SCAN of the pairs, the exact flat search runs instead. Recall 0.995
# kept the novelty mask's Jaccard overlap with exact >= 0.99 in every synthetic pool tried.
IVF_TARGET_RECALL = 0.995
IVF_MAX_SCAN = 0.25
IVF_SAMPLE_QUERIES = 2048
# Below this many reference rows the cells are too small to pay for themselves: flat search.
IVF_MIN_REFERENCE = 1024
# Queries per IVF block: each cell is searched once per block, so large blocks make few,
# large matrix products (100k x 5k x 576 with other jobs on the cores: 16.7 s in 8k-row
# blocks, 8.8 s in 64k-row blocks).
IVF_BLOCK_ROWS = 65_536


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


def l2_normalize(x):
    """Rows scaled to unit length (zero rows stay zero).

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features)

    Returns
    -------
    ndarray of shape (n_samples, n_features), float32
    """
    x = np.asarray(x)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32, copy=False)


def _read_rows(x, start, stop, normalize):
    block = np.asarray(x[start:stop], dtype=np.float32)
    return l2_normalize(block) if normalize else block


def _smallest_k(d2, k):
    """The ``k`` smallest values of each row, ascending, and their columns."""
    if k < d2.shape[1]:
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(d2.shape[1]), (d2.shape[0], 1))
    vals = np.take_along_axis(d2, part, axis=1)
    order = np.argsort(vals, axis=1, kind="stable")
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(part, order, axis=1)


def _exact_knn(query, reference, k, exclude_self, normalize=False):
    n, d = query.shape
    n_ref = reference.shape[0]
    if n_ref * d > checks.BLOCK_ELEMENTS:
        return _exact_knn_blocked_reference(query, reference, k, exclude_self, normalize)
    ref = np.asarray(reference, dtype=np.float32)
    if normalize:
        ref = l2_normalize(ref)
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    kk = k + 1 if exclude_self else k
    # Cap rows by the feature count too: a lazy or memory-mapped query is read one block at a time.
    for start, stop in chunks(n, rows_per_block(max(n_ref, d))):
        q = _read_rows(query, start, stop, normalize)
        d2 = ref_sq[None, :] - 2.0 * (q @ ref.T)
        d2 += np.einsum("ij,ij->i", q, q)[:, None]
        if exclude_self:
            d2[np.arange(stop - start), np.arange(start, stop)] = np.inf
        part = np.argpartition(d2, kk - 1, axis=1)[:, :kk] if kk < d2.shape[1] else np.tile(np.arange(d2.shape[1]), (stop - start, 1))
        part_d = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(part_d, axis=1, kind="stable")[:, :k]
        idx[start:stop] = np.take_along_axis(part, order, axis=1)
        dist[start:stop] = np.sqrt(np.maximum(np.take_along_axis(part_d, order, axis=1), 0.0))
    return dist, idx


def _exact_knn_blocked_reference(query, reference, k, exclude_self, normalize):
    """Exact search against a reference too large to hold: blocks of reference rows,
    a running top-k per query (few queries, huge reference: AnchorAL's anchors vs the pool)."""
    n, d = query.shape
    n_ref = reference.shape[0]
    ref_rows = rows_per_block(d)
    q_rows = rows_per_block(max(ref_rows, d))
    best_d = np.full((n, k), np.inf, dtype=np.float32)
    best_i = np.full((n, k), -1, dtype=np.int64)
    for rs, re in chunks(n_ref, ref_rows):
        ref = _read_rows(reference, rs, re, normalize)
        ref_sq = np.einsum("ij,ij->i", ref, ref)
        for qs, qe in chunks(n, q_rows):
            q = _read_rows(query, qs, qe, normalize)
            d2 = ref_sq[None, :] - 2.0 * (q @ ref.T)
            d2 += np.einsum("ij,ij->i", q, q)[:, None]
            if exclude_self:
                own = np.arange(max(qs, rs), min(qe, re))
                d2[own - qs, own - rs] = np.inf
            # Only entries below a row's current k-th best can enter its top k: after the
            # first blocks they are few, so the merge no longer partitions whole rows.
            rows, cols = np.nonzero(d2 < best_d[qs:qe, -1:])
            if rows.size == 0:
                continue
            counts = np.bincount(rows, minlength=qe - qs)
            within = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
            pad_d = np.full((qe - qs, int(counts.max())), np.inf, dtype=np.float32)
            pad_i = np.full(pad_d.shape, -1, dtype=np.int64)
            pad_d[rows, within] = d2[rows, cols]
            pad_i[rows, within] = cols + rs
            cand_d = np.concatenate([best_d[qs:qe], pad_d], axis=1)
            cand_i = np.concatenate([best_i[qs:qe], pad_i], axis=1)
            vals, cols = _smallest_k(cand_d, k)
            best_d[qs:qe] = vals
            best_i[qs:qe] = np.take_along_axis(cand_i, cols, axis=1)
    return np.sqrt(np.maximum(best_d, 0.0)), best_i


def _hnsw_index(reference, random_state, ef, kk, normalize):
    import hnswlib

    ref = np.ascontiguousarray(reference, dtype=np.float32)
    if normalize:
        ref = l2_normalize(ref)
    index = hnswlib.Index(space="l2", dim=ref.shape[1])
    seed = check_random_state(random_state).randint(0, 2**31 - 1)
    index.init_index(max_elements=ref.shape[0], ef_construction=max(100, ef), M=16, random_seed=int(seed))
    # hnswlib's parallel insertion order varies run to run; small indexes are built on one
    # thread so a seed gives the same graph (measured: 5k x 576 in 0.6 s on one thread).
    threads = 1 if ref.shape[0] <= HNSW_SERIAL_BUILD_MAX_ROWS else -1
    index.add_items(ref, np.arange(ref.shape[0]), num_threads=threads)
    index.set_ef(max(ef, kk))
    return index


def _hnsw_knn(query, reference, k, exclude_self, random_state, ef, normalize=False):
    kk = k + 1 if exclude_self else k
    index = _hnsw_index(reference, random_state, ef, kk, normalize)
    return _search_inchunks(lambda q: index.knn_query(q, k=kk, num_threads=-1), query, k, exclude_self, normalize)


def _drop_self(labels, d2, rows, k):
    """Drop each query's own row (``rows``: its reference id) from k + 1 answers,
    or the farthest answer where it is absent, keeping ``k`` per row."""
    keep = labels != rows[:, None]
    keep[keep.all(axis=1), -1] = False
    return labels[keep].reshape(-1, k), d2[keep].reshape(-1, k)


def _search_inchunks(search, query, k, exclude_self, normalize, block_rows=None):
    """Run ``search(block) -> (labels, squared distances)`` over query blocks (k + 1 when excluding self).

    ``block_rows`` larger than a 16 MB read: the block is filled 16 MB at a time into
    one reused buffer (a fresh 100 MB+ temporary per block is page-faulted in anew)."""
    n, d = query.shape
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    step = max(8192, rows_per_block(d))
    buf = None
    if block_rows is not None and block_rows > step and n > step:
        step = min(block_rows, n)
        buf = np.empty((step, d), dtype=np.float32)
    for start, stop in chunks(n, step):
        if buf is None:
            q = np.ascontiguousarray(_read_rows(query, start, stop, normalize))
        else:
            q = buf[: stop - start]
            for s, e in chunks(stop - start, rows_per_block(d)):
                q[s:e] = _read_rows(query, start + s, start + e, normalize)
        labels, d2 = search(q)
        labels = labels.astype(np.int64)
        if exclude_self:
            labels, d2 = _drop_self(labels, d2, np.arange(start, stop), k)
        idx[start:stop] = labels
        dist[start:stop] = np.sqrt(np.maximum(d2, 0.0))
    return dist, idx


def _faiss_available():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _faiss_knn(query, reference, k, exclude_self, normalize=False):
    """Exact search with faiss's IndexFlatL2 (BLAS distances, fused top-k): ~5x the NumPy exact path."""
    import faiss

    ref = np.ascontiguousarray(reference, dtype=np.float32)
    if normalize:
        ref = l2_normalize(ref)
    index = faiss.IndexFlatL2(ref.shape[1])
    index.add(ref)
    del ref
    kk = k + 1 if exclude_self else k

    def search(q):
        d2, labels = index.search(q, kk)
        return labels, d2

    return _search_inchunks(search, query, k, exclude_self, normalize)


def ivf_knn(query, reference, k, *, metric="euclidean", exclude_self=False, target_recall=None, random_state=None):
    """Inverted-file search with exact distances and a recall measured on a sample of queries.

    The reference is split into k-means cells (:class:`knn_ivf.IVFIndex`); the
    exact neighbours of ``IVF_SAMPLE_QUERIES`` random queries are computed, and the
    smallest ``n_probe`` (1, 2, 4, ...) whose recall on them reaches ``target_recall``
    searches all queries. Where no ``n_probe`` scanning at most ``IVF_MAX_SCAN`` of
    the pairs reaches it (or the reference is smaller than ``IVF_MIN_REFERENCE``),
    faiss's exact flat search runs instead. Distances are exact for the neighbours
    returned. Needs faiss-cpu.

    Parameters
    ----------
    query : ndarray, memmap or StandardizedView of shape (n_query, n_features)
    reference : ndarray of shape (n_reference, n_features)
    k : int
    metric, exclude_self : as in :func:`knn_search`
    target_recall : float in (0, 1] or None
        Default ``IVF_TARGET_RECALL``.
    random_state : int, RandomState or None
        Seeds the cells' k-means and the calibration sample.

    Returns
    -------
    distances : ndarray of shape (n_query, k), float32, ascending per row
    indices : ndarray of shape (n_query, k), int64
    info : dict
        ``n_lists``, ``n_probe`` (None: exact fallback), ``recalls`` (n_probe -> sample
        recall), ``scan_fraction`` of the pairs computed, ``fallback`` (bool).
    """
    target = IVF_TARGET_RECALL if target_recall is None else float(target_recall)
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target_recall must be a number in (0, 1], got {target_recall!r}")
    check_choice(metric, "metric", KNN_METRICS)
    check_int(k, "k", low=1, high=reference.shape[0] - 1 if exclude_self else reference.shape[0])
    dist, idx, info = _ivf_knn(query, reference, k, exclude_self, metric == "cosine", random_state, target)
    if metric == "cosine":
        dist = np.square(dist) / 2.0
    return dist, idx, info


def _ivf_plan(query, reference, k, exclude_self, normalize, rng, target):
    """Cells and calibrated n_probe: ``(index or None, n_probe or None, info)``; reads only
    ``query.shape`` and the sample rows ``query[rows]``."""
    import faiss

    info = {"n_lists": 0, "n_probe": None, "recalls": {}, "scan_fraction": 1.0, "fallback": True}
    if reference.shape[0] < IVF_MIN_REFERENCE:
        return None, None, info
    n = query.shape[0]
    ref = np.ascontiguousarray(reference, dtype=np.float32)
    if normalize:
        ref = l2_normalize(ref)
    index = knn_ivf.IVFIndex(ref, random_state=rng)
    del ref
    rows = np.sort(rng.choice(n, min(n, IVF_SAMPLE_QUERIES), replace=False))
    sample = np.asarray(query[rows], dtype=np.float32)
    sample = np.ascontiguousarray(l2_normalize(sample) if normalize else sample)
    exact_d2, exact_i = faiss.knn(sample, index.reference, k + 1 if exclude_self else k)
    drop = None
    if exclude_self:
        exact_i, exact_d2 = _drop_self(exact_i.astype(np.int64), exact_d2, rows, k)
        drop = lambda labels, d2: _drop_self(labels, d2, rows, k)  # noqa: E731
    n_probe, recalls = index.calibrate(sample, exact_d2, k, target_recall=target, max_scan=IVF_MAX_SCAN, drop=drop)
    info.update(n_lists=index.n_lists, n_probe=n_probe, recalls=recalls)
    if n_probe is None:
        return None, None, info
    info.update(scan_fraction=index.scan_fraction(n_probe), fallback=False)
    return index, n_probe, info


def _ivf_knn(query, reference, k, exclude_self, normalize, random_state, target):
    index, n_probe, info = _ivf_plan(query, reference, k, exclude_self, normalize, check_random_state(random_state), target)
    if index is None:
        # No cell structure worth using: the exact flat search (what method='faiss' runs).
        dist, idx = _faiss_knn(query, reference, k, exclude_self, normalize)
        return dist, idx, info
    kk = k + 1 if exclude_self else k
    dist, idx = _search_inchunks(lambda q: index.search(q, kk, n_probe), query, k, exclude_self, normalize,
                                 block_rows=IVF_BLOCK_ROWS)
    return dist, idx, info


def knn_method_for(n_query, n_reference, n_features):
    """What ``knn_search(method='auto')`` runs for a problem of this size.

    NumPy exact search up to ``SMALL_KNN_MAX_PAIRS`` pairs. Above, with faiss-cpu
    installed: whichever of faiss's exact flat search and an HNSW graph the measured
    cost model says is faster (flat grows with query x reference pairs, HNSW with
    reference rows to build plus queries), and where that is the flat search on at
    least ``IVF_MIN_PAIRS`` pairs, the inverted file (:func:`ivf_knn`: exact
    distances, recall measured per call, exact fallback); without faiss: exact up to
    ``EXACT_KNN_MAX_PAIRS`` pairs, HNSW above.
    """
    pairs = n_query * n_reference
    if pairs <= SMALL_KNN_MAX_PAIRS:
        return "exact"
    if _faiss_available():
        flat_s = pairs * n_features * _FAISS_FLAT_S_PER_PAIR_DIM
        hnsw_s = (n_reference * _HNSW_BUILD_S_PER_ROW_DIM + n_query * _HNSW_QUERY_S_PER_ROW_DIM) * n_features
        if flat_s > hnsw_s:
            return "hnsw"
        return "ivf" if pairs >= IVF_MIN_PAIRS and n_reference >= IVF_MIN_REFERENCE else "faiss"
    return "exact" if pairs <= EXACT_KNN_MAX_PAIRS else "hnsw"


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
        dist, idx = _exact_knn(query, reference, k, exclude_self, normalize)
    elif method in ("faiss", "ivf"):
        if not _faiss_available():
            raise ValueError(f"method={method!r} needs faiss-cpu (pip install faiss-cpu); use 'exact', 'hnsw' or 'auto'")
        if method == "faiss":
            dist, idx = _faiss_knn(query, reference, k, exclude_self, normalize)
        else:
            dist, idx, _ = _ivf_knn(query, reference, k, exclude_self, normalize, random_state, IVF_TARGET_RECALL)
    else:
        dist, idx = _hnsw_knn(query, reference, k, exclude_self, random_state, ef, normalize)
    if metric == "cosine":
        # Unit vectors: squared euclidean = 2 - 2 cos.
        dist = np.square(dist) / 2.0
    return dist, idx



class BlockSearcher:
    """A nearest-neighbour search planned once, then run on any rows of the query set.

    What :func:`knn_search` does without ``exclude_self``, split in two so that a
    distributed engine plans on the client (method, IVF cells and calibration, HNSW
    graph) and each worker searches its own shard: ``searcher(rows)`` returns for each
    row exactly what ``knn_search(query, ...)`` returns for it (the backends answer
    each query row independently of the rows searched with it). Picklable.

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
        self.reference = np.ascontiguousarray(reference, dtype=np.float32)
        self.info, self._index, self._n_probe = {}, None, None
        if self.method == "ivf":
            self._index, self._n_probe, self.info = _ivf_plan(query, self.reference, k, False, self.normalize,
                                                              check_random_state(random_state), IVF_TARGET_RECALL)
        elif self.method == "hnsw":
            self._index = _hnsw_index(self.reference, random_state, ef, k, self.normalize)

    def __call__(self, rows):
        """Neighbours of ``rows`` (array-like of shape (n, n_features)): ``(distances, indices)``."""
        k, norm = self.k, self.normalize
        if self.method == "exact":
            dist, idx = _exact_knn(rows, self.reference, k, False, norm)
        elif self.method == "hnsw":
            dist, idx = _search_inchunks(lambda q: self._index.knn_query(q, k=k, num_threads=-1), rows, k, False, norm)
        elif self.method == "ivf" and self._index is not None:
            dist, idx = _search_inchunks(lambda q: self._index.search(q, k, self._n_probe), rows, k, False, norm,
                                         block_rows=IVF_BLOCK_ROWS)
        else:  # 'faiss', and 'ivf' that fell back to the exact flat search
            dist, idx = _faiss_knn(rows, self.reference, k, False, norm)
        return (np.square(dist) / 2.0 if self.metric == "cosine" else dist), idx


def assign_to_centers(embeddings, centers):
    """Nearest centre and distance to it for each row, in blocks.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    distances : ndarray of shape (n_samples,), float32
    """
    dist, idx = _exact_knn(embeddings, centers, 1, exclude_self=False)
    return idx[:, 0], dist[:, 0]
