"""Pure active-learning heuristics: arrays in, scores / masks / indices out.

No I/O, no models, no global random state: every stochastic function takes
``random_state`` (int, ``RandomState`` or None) and normalises it with
:func:`sklearn.utils.check_random_state`. Score convention: higher = more worth
labeling.
"""
import numbers

import numpy as np
from scipy.stats import rankdata
from sklearn.utils import check_random_state

UNCERTAINTY_METHODS = ("entropy", "margin", "least_confidence", "combined")
KNN_METHODS = ("auto", "exact", "hnsw", "faiss")
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
# Full KMeans above this many rows is slow and memory-hungry; MiniBatchKMeans fits a sample.
KMEANS_FULL_MAX_ROWS = 20_000
# Elements of one temporary block (float32): 16 MB. Blocks below glibc's 32 MB mmap
# threshold are reused instead of page-faulted in anew: standardising 300k x 576 in
# 111k-row blocks took 1.5 s, in 7k-row blocks 0.15 s.
_BLOCK_ELEMENTS = 4_000_000


class EmptyPoolError(ValueError):
    """Raised when a selection is asked of an empty pool."""


# --------------------------------------------------------------------------- checks
def check_probs(probs, name="probs", atol=1e-3):
    """Validate class probabilities: 2-D, finite, non-negative, rows summing to 1.

    Returns
    -------
    probs : ndarray of shape (n_samples, n_classes), float32
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_classes >= 2), got shape {probs.shape}")
    if not np.issubdtype(probs.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {probs.dtype}")
    probs = probs.astype(np.float32, copy=False)
    if not np.isfinite(probs).all():
        raise ValueError(f"{name} contains NaN or infinite values; expected probabilities in [0, 1]")
    if (probs < 0).any():
        raise ValueError(f"{name} contains negative values; expected probabilities in [0, 1]")
    sums = probs.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise ValueError(
            f"{name} rows must sum to 1 (within {atol}); row {bad[0]} sums to {sums[bad[0]]:.4f} "
            f"({bad.size} bad rows): pass softmax outputs, not logits"
        )
    return probs


def check_embeddings(embeddings, name="embeddings", n_samples=None):
    """Validate a finite 2-D embedding matrix (kept as is when already float32; memmaps stay memmaps,
    :class:`StandardizedView` stays lazy)."""
    if not isinstance(embeddings, (np.ndarray, StandardizedView)):
        embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_samples, n_features), got shape {embeddings.shape}")
    if not np.issubdtype(embeddings.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {embeddings.dtype}")
    if n_samples is not None and embeddings.shape[0] != n_samples:
        raise ValueError(f"{name} has {embeddings.shape[0]} rows but {n_samples} were expected")
    if isinstance(embeddings, StandardizedView):
        # Finite raw rows and statistics give finite standardised rows: check the base
        # once for the view and every sub-view of it.
        if not embeddings._finite_checked[0]:
            check_embeddings(embeddings.base, name=name)
            if not (np.isfinite(embeddings.mean).all() and np.isfinite(embeddings.std).all()):
                raise ValueError(f"{name}: standardisation statistics are not finite")
            embeddings._finite_checked[0] = True
        return embeddings
    for start, stop in _chunks(embeddings.shape[0], _rows_per_block(embeddings.shape[1])):
        if not np.isfinite(embeddings[start:stop]).all():
            raise ValueError(f"{name} contains NaN or infinite values (first bad block: rows {start}-{stop - 1})")
    return embeddings


def check_percentile(value, name):
    """Percentiles are numbers in [0, 100]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 100:
        raise ValueError(f"{name} must be a number between 0 and 100, got {value!r}")
    return float(value)


def check_int(value, name, low=1, high=None):
    """An integer in [low, high]; names the parameter and the allowed range when not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer between {low} and {high}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def check_mask(mask, n_samples, name="labeled_mask"):
    mask = np.asarray(mask)
    if mask.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},), got {mask.shape}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1)")
        mask = mask.astype(bool)
    return mask


# --------------------------------------------------------------------------- helpers
def _chunks(n, size):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _rows_per_block(n_cols):
    return max(1, _BLOCK_ELEMENTS // max(1, int(n_cols)))


def rank_normalize(scores):
    """Map scores to their average rank in [0, 1] (ties share a rank), so scores on
    different scales can be combined."""
    scores = np.asarray(scores)
    if scores.size <= 1:
        return np.ones(scores.shape, dtype=np.float64)
    return (rankdata(scores, method="average") - 1.0) / (scores.size - 1)


def percentile_mask(scores, percentile):
    """Items whose score is at or above the given percentile of ``scores``."""
    scores = np.asarray(scores)
    if scores.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = np.percentile(scores, check_percentile(percentile, "percentile"))
    return scores >= threshold


def select_top(scores, k, *, random_state=None):
    """Indices of the ``k`` highest scores, best first, ties broken at random.

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
    k : int
        Number to select. Raises ``ValueError`` when ``k`` exceeds ``n_samples``
        (an oversized budget is a caller's mistake, not something to clip silently).
    random_state : int, RandomState or None

    Returns
    -------
    indices : ndarray of shape (k,), int64
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    if n == 0 and k > 0:
        raise EmptyPoolError("cannot select from an empty pool")
    check_int(k, "k (budget)", low=0, high=n)
    rng = check_random_state(random_state)
    tiebreak = rng.random_sample(n)
    if k < n // 4:
        # Partial selection first: sorting 1M scores for a budget of 100 is wasted work.
        cand = np.argpartition(-scores, k)[: k]
        kth = scores[cand].min() if k else np.inf
        cand = np.flatnonzero(scores >= kth)
    else:
        cand = np.arange(n)
    order = np.lexsort((tiebreak[cand], -scores[cand]))
    return cand[order[:k]].astype(np.int64)


# --------------------------------------------------------------------------- uncertainty
def entropy_scores(probs):
    """Shannon entropy of each row (nats).

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
    """
    p = np.clip(np.asarray(probs, dtype=np.float32), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def margin_scores(probs):
    """1 - (top-1 minus top-2 probability): a small margin is a high score."""
    p = np.asarray(probs, dtype=np.float32)
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def least_confidence_scores(probs):
    """1 - the largest class probability."""
    return 1.0 - np.asarray(probs, dtype=np.float32).max(axis=1)


_SCORERS = {"entropy": entropy_scores, "margin": margin_scores, "least_confidence": least_confidence_scores}


def uncertainty_scores(probs, method="entropy"):
    """Scores for one of ``entropy``, ``margin``, ``least_confidence``, ``combined``.

    ``combined`` is the mean of the rank-normalised entropy and margin scores.
    """
    check_choice(method, "method", UNCERTAINTY_METHODS)
    if method == "combined":
        return (rank_normalize(entropy_scores(probs)) + rank_normalize(margin_scores(probs))) / 2.0
    return _SCORERS[method](probs)


def uncertainty_selection(probs, threshold_percentile=50, method="combined"):
    """Keep the pool items above a percentile of uncertainty.

    For ``combined``, an item is kept when it is above the percentile on entropy
    OR on margin.

    Returns
    -------
    mask : ndarray of shape (n_samples,), bool
    scores : ndarray of shape (n_samples,)
    """
    probs = check_probs(probs)
    check_percentile(threshold_percentile, "threshold_percentile")
    check_choice(method, "method", UNCERTAINTY_METHODS)
    if method == "combined":
        ent, mar = entropy_scores(probs), margin_scores(probs)
        mask = percentile_mask(ent, threshold_percentile) | percentile_mask(mar, threshold_percentile)
        scores = (rank_normalize(ent) + rank_normalize(mar)) / 2.0
        return mask, scores
    scores = _SCORERS[method](probs)
    return percentile_mask(scores, threshold_percentile), scores


# --------------------------------------------------------------------------- embeddings
def standardization_stats(embeddings):
    """Per-feature mean and std computed in blocks (works on memory-mapped arrays).

    Returns
    -------
    mean, std : ndarray of shape (n_features,), float32; zero stds are replaced by 1.
    """
    n, d = embeddings.shape
    total = np.zeros(d, dtype=np.float64)
    total_sq = np.zeros(d, dtype=np.float64)
    for start, stop in _chunks(n, _rows_per_block(d) // 4):
        block = np.asarray(embeddings[start:stop], dtype=np.float64)
        total += block.sum(axis=0)
        total_sq += np.square(block).sum(axis=0)
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
    for start, stop in _chunks(n, _rows_per_block(d)):
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
        for start, stop in _chunks(self.shape[0], _rows_per_block(self.shape[1])):
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
    if n_ref * d > _BLOCK_ELEMENTS:
        return _exact_knn_blocked_reference(query, reference, k, exclude_self, normalize)
    ref = np.asarray(reference, dtype=np.float32)
    if normalize:
        ref = l2_normalize(ref)
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    kk = k + 1 if exclude_self else k
    # Cap rows by the feature count too: a lazy or memory-mapped query is read one block at a time.
    for start, stop in _chunks(n, _rows_per_block(max(n_ref, d))):
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
    ref_rows = _rows_per_block(d)
    q_rows = _rows_per_block(max(ref_rows, d))
    best_d = np.full((n, k), np.inf, dtype=np.float32)
    best_i = np.full((n, k), -1, dtype=np.int64)
    for rs, re in _chunks(n_ref, ref_rows):
        ref = _read_rows(reference, rs, re, normalize)
        ref_sq = np.einsum("ij,ij->i", ref, ref)
        for qs, qe in _chunks(n, q_rows):
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


def _hnsw_knn(query, reference, k, exclude_self, random_state, ef, normalize=False):
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
    del ref
    kk = k + 1 if exclude_self else k
    index.set_ef(max(ef, kk))
    return _search_in_chunks(lambda q: index.knn_query(q, k=kk, num_threads=-1), query, k, exclude_self, normalize)


def _search_in_chunks(search, query, k, exclude_self, normalize):
    """Run ``search(block) -> (labels, squared distances)`` over query blocks (k + 1 when excluding self)."""
    n, d = query.shape
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    for start, stop in _chunks(n, max(8192, _rows_per_block(d))):
        q = np.ascontiguousarray(_read_rows(query, start, stop, normalize))
        labels, d2 = search(q)
        labels = labels.astype(np.int64)
        if exclude_self:
            rows = np.arange(start, stop)[:, None]
            keep = labels != rows
            # Drop self where found, else the farthest neighbour, keeping k per row.
            keep[keep.all(axis=1), -1] = False
            labels = labels[keep].reshape(-1, k)
            d2 = d2[keep].reshape(-1, k)
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

    return _search_in_chunks(search, query, k, exclude_self, normalize)


def knn_method_for(n_query, n_reference, n_features):
    """What ``knn_search(method='auto')`` runs for a problem of this size.

    NumPy exact search up to ``SMALL_KNN_MAX_PAIRS`` pairs. Above, with faiss-cpu
    installed: whichever of faiss's exact flat search and an HNSW graph the measured
    cost model says is faster (flat grows with query x reference pairs, HNSW with
    reference rows to build plus queries); without faiss: exact up to
    ``EXACT_KNN_MAX_PAIRS`` pairs, HNSW above.
    """
    pairs = n_query * n_reference
    if pairs <= SMALL_KNN_MAX_PAIRS:
        return "exact"
    if _faiss_available():
        flat_s = pairs * n_features * _FAISS_FLAT_S_PER_PAIR_DIM
        hnsw_s = (n_reference * _HNSW_BUILD_S_PER_ROW_DIM + n_query * _HNSW_QUERY_S_PER_ROW_DIM) * n_features
        return "faiss" if flat_s <= hnsw_s else "hnsw"
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
    method : {'auto', 'exact', 'hnsw', 'faiss'}
        ``exact`` (NumPy) and ``faiss`` (IndexFlatL2, needs faiss-cpu) are exact;
        ``hnsw`` is approximate.
    exclude_self : bool
        ``query`` and ``reference`` are the same set; row i never returns i.
    ef : int
        HNSW search breadth (recall against speed).
    random_state : int, RandomState or None
        Seeds the HNSW graph construction.

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
    elif method == "faiss":
        if not _faiss_available():
            raise ValueError("method='faiss' needs faiss-cpu (pip install faiss-cpu); use 'exact', 'hnsw' or 'auto'")
        dist, idx = _faiss_knn(query, reference, k, exclude_self, normalize)
    else:
        dist, idx = _hnsw_knn(query, reference, k, exclude_self, random_state, ef, normalize)
    if metric == "cosine":
        # Unit vectors: squared euclidean = 2 - 2 cos.
        dist = np.square(dist) / 2.0
    return dist, idx


# --------------------------------------------------------------------------- diversity
def assign_to_centers(embeddings, centers):
    """Nearest centre and distance to it for each row, in blocks.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    distances : ndarray of shape (n_samples,), float32
    """
    dist, idx = _exact_knn(embeddings, centers, 1, exclude_self=False)
    return idx[:, 0], dist[:, 0]


def fit_kmeans(embeddings, n_clusters, *, algorithm="auto", random_state=None, sample_size=100_000):
    """KMeans centres: full KMeans for small pools, MiniBatchKMeans on a sample for large ones.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), float32
    algorithm : str
        Which variant ran (the far-from-centroid set depends on it).
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    check_choice(algorithm, "algorithm", KMEANS_ALGORITHMS)
    n = embeddings.shape[0]
    check_int(n_clusters, "n_clusters", low=1, high=n)
    rng = check_random_state(random_state)
    if algorithm == "auto":
        algorithm = "kmeans" if n <= KMEANS_FULL_MAX_ROWS else "minibatch"
    if algorithm == "kmeans":
        model = KMeans(n_clusters=n_clusters, n_init=3, random_state=rng).fit(np.asarray(embeddings, dtype=np.float32))
        return model.cluster_centers_.astype(np.float32), algorithm
    if n > sample_size:
        rows = np.sort(rng.choice(n, sample_size, replace=False))
        sample = np.asarray(embeddings[rows], dtype=np.float32)
    else:
        sample = np.asarray(embeddings, dtype=np.float32)
    model = MiniBatchKMeans(n_clusters=n_clusters, batch_size=4096, n_init=3, max_no_improvement=20, random_state=rng)
    model.fit(sample)
    return model.cluster_centers_.astype(np.float32), algorithm


def diversity_selection(embeddings, n_clusters=20, distance_percentile=75, *, algorithm="auto", random_state=None, standardized=False):
    """KMeans on standardised embeddings; keep the items far from their centroid.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
    n_clusters : int, at most n_samples
    distance_percentile : float in [0, 100]
        Items at or above this percentile of distance-to-centroid are kept.
    standardized : bool
        Skip standardisation when the caller already did it.

    Returns
    -------
    dict with ``mask`` (n_samples,) bool, ``scores`` (distance to own centroid),
    ``clusters`` (n_samples,) int64, ``representatives`` (n_clusters,) row of the
    item closest to each centroid (-1 for an empty cluster), ``algorithm``.
    """
    embeddings = check_embeddings(embeddings)
    check_int(n_clusters, "n_clusters", low=1, high=embeddings.shape[0])
    check_percentile(distance_percentile, "distance_percentile")
    x = embeddings if standardized else standardize(embeddings)
    centers, algo = fit_kmeans(x, n_clusters, algorithm=algorithm, random_state=random_state)
    clusters, dist = assign_to_centers(x, centers)
    reps = np.full(n_clusters, -1, dtype=np.int64)
    order = np.lexsort((dist, clusters))
    first = np.r_[True, clusters[order][1:] != clusters[order][:-1]]
    reps[clusters[order][first]] = order[first]
    return {
        "mask": percentile_mask(dist, distance_percentile),
        "scores": dist,
        "clusters": clusters,
        "representatives": reps,
        "algorithm": algo,
    }


# --------------------------------------------------------------------------- novelty
def novelty_scores(pool_embeddings, labeled_embeddings, k_neighbors=5, *, method="auto", random_state=None):
    """Mean distance from each pool item to its ``k_neighbors`` nearest labeled items.

    Inputs are expected on a common (standardised) scale.

    Returns
    -------
    scores : ndarray of shape (n_pool,), float32
    """
    if labeled_embeddings.shape[0] == 0:
        raise ValueError("the labeled set is empty: novelty needs at least one labeled item")
    check_int(k_neighbors, "k_neighbors", low=1, high=labeled_embeddings.shape[0])
    dist, _ = knn_search(pool_embeddings, labeled_embeddings, k_neighbors, method=method, random_state=random_state)
    return dist.mean(axis=1)


def novelty_selection(embeddings, labeled_mask, k_neighbors=5, novelty_percentile=75, *, method="auto", random_state=None, standardized=False):
    """Keep the pool items farthest from the labeled set.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
        Labeled and pool items together.
    labeled_mask : ndarray of shape (n_samples,), bool

    Returns
    -------
    mask : ndarray of shape (n_pool,), bool, over the rows where ``~labeled_mask``
    scores : ndarray of shape (n_pool,)
    """
    embeddings = check_embeddings(embeddings)
    labeled_mask = check_mask(labeled_mask, embeddings.shape[0])
    if not labeled_mask.any():
        raise ValueError("labeled_mask selects no items: the labeled set is empty")
    if labeled_mask.all():
        raise EmptyPoolError("labeled_mask selects every item: the pool is empty")
    check_int(k_neighbors, "k_neighbors", low=1, high=int(labeled_mask.sum()))
    check_percentile(novelty_percentile, "novelty_percentile")
    x = embeddings if standardized else standardize(embeddings)
    scores = novelty_scores(x[~labeled_mask], x[labeled_mask], k_neighbors, method=method, random_state=random_state)
    return percentile_mask(scores, novelty_percentile), scores


# --------------------------------------------------------------------------- intersection
def combined_score(*scores):
    """Mean of rank-normalised scores: one ranking from scores on different scales."""
    return np.mean([rank_normalize(s) for s in scores], axis=0)


def intersection_selection(masks, scores, budget=None, *, random_state=None):
    """Intersect the analyses' masks and rank by the combined score.

    Parameters
    ----------
    masks : dict of str -> ndarray of shape (n_pool,), bool
    scores : dict of str -> ndarray of shape (n_pool,)
        Same keys as ``masks``.
    budget : int or None
        None returns the intersection only. Otherwise exactly ``budget`` items:
        the ranked intersection, then (when it is smaller) the rest of the pool
        by combined rank. A budget above the pool size raises ``ValueError``.

    Returns
    -------
    selected : ndarray of shape (n_selected,), int64, pool rows best first
    info : dict
        ``n_intersection``, ``n_selected``, ``n_filled``, ``filled``,
        ``counts`` per analysis, ``pairwise`` overlaps, ``combined`` scores.
    """
    if not masks:
        raise ValueError("masks is empty: run at least one analysis before the intersection")
    if set(masks) != set(scores):
        raise ValueError(f"masks and scores must have the same keys, got {sorted(masks)} and {sorted(scores)}")
    names = list(masks)
    n = len(masks[names[0]])
    for name in names:
        if len(masks[name]) != n or len(scores[name]) != n:
            raise ValueError(f"analysis {name!r} covers {len(masks[name])} items but {names[0]!r} covers {n}: run them on the same pool")
    if budget is not None:
        check_int(budget, "budget", low=1, high=n)
    both = np.logical_and.reduce([np.asarray(masks[m], dtype=bool) for m in names])
    combined = combined_score(*(scores[m] for m in names))
    rng = check_random_state(random_state)
    tiebreak = rng.random_sample(n)
    # Rank: intersection first, then by combined score, ties at random.
    order = np.lexsort((tiebreak, -combined, ~both))
    n_inter = int(both.sum())
    n_sel = n_inter if budget is None else budget
    selected = order[:n_sel].astype(np.int64)
    pairwise = {
        f"{a}&{b}": int(np.logical_and(masks[a], masks[b]).sum())
        for i, a in enumerate(names) for b in names[i + 1:]
    }
    info = {
        "n_pool": n,
        "n_intersection": n_inter,
        "n_selected": int(n_sel),
        "n_filled": max(0, int(n_sel) - n_inter),
        "filled": int(n_sel) > n_inter,
        "counts": {m: int(np.asarray(masks[m]).sum()) for m in names},
        "pairwise": pairwise,
        "combined": combined,
    }
    return selected, info


# --------------------------------------------------------------------------- class balance
def class_counts(labels, n_classes):
    """Counts per class of the known labels (negative labels are unknown and skipped)."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.bincount(labels[labels >= 0], minlength=n_classes)[:n_classes]


def class_balance(labels, n_classes, target_per_class):
    """Per-class counts of a selection against a target.

    Returns
    -------
    dict with ``counts``, ``shortfall`` (per class, >= 0) and ``met`` (bool).
    """
    check_int(target_per_class, "target_per_class", low=1)
    counts = class_counts(labels, n_classes)
    shortfall = np.maximum(target_per_class - counts, 0)
    return {"counts": counts.tolist(), "shortfall": shortfall.tolist(), "target_per_class": int(target_per_class), "met": bool((shortfall == 0).all())}


def balanced_pick(ranked, labels, n_classes, target_per_class):
    """Walk a ranked selection and keep at most ``target_per_class`` items per class.

    Parameters
    ----------
    ranked : ndarray of shape (n,), int
        Candidate ids, best first.
    labels : ndarray of shape (n,), int
        Class of each candidate (negative = unknown, skipped).

    Returns
    -------
    picked : ndarray of int64, a subsequence of ``ranked`` in the same order
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if ranked.shape != labels.shape:
        raise ValueError(f"ranked and labels must have the same shape, got {ranked.shape} and {labels.shape}")
    check_int(target_per_class, "target_per_class", low=1)
    taken = np.zeros(n_classes, dtype=np.int64)
    keep = np.zeros(ranked.shape[0], dtype=bool)
    for i, c in enumerate(labels):
        if 0 <= c < n_classes and taken[c] < target_per_class:
            taken[c] += 1
            keep[i] = True
    return ranked[keep]
