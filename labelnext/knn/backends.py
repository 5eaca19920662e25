"""Nearest-neighbour backends on blocks of rows: NumPy exact (blocked), faiss exact flat,
hnswlib HNSW, and the block loop they share. :mod:`knn` picks among them; nothing here
validates arguments (its callers do).
"""
import numpy as np
from sklearn.utils import check_random_state

from labelnext.utils import checks
from labelnext.utils.checks import chunks, rows_per_block
from labelnext.utils.extras import available, require

# HNSW graphs up to this many reference rows are built on one thread (reproducible);
# larger ones in parallel (about 2x faster, not bit-reproducible).
HNSW_SERIAL_BUILD_MAX_ROWS = 20_000


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


def read_rows(x, start, stop, normalize):
    block = np.asarray(x[start:stop], dtype=np.float32)
    return l2_normalize(block) if normalize else block


def cosine_distance(dist):
    """Cosine distance ``1 - cos`` from the euclidean distances of unit rows (``|a - b|^2 = 2 - 2 cos``)."""
    return np.square(dist) / 2.0


def smallest_k(d2, k):
    """The ``k`` smallest values of each row, ascending, and their columns."""
    if k < d2.shape[1]:
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(d2.shape[1]), (d2.shape[0], 1))
    vals = np.take_along_axis(d2, part, axis=1)
    order = np.argsort(vals, axis=1, kind="stable")
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(part, order, axis=1)


def exact_knn(query, reference, k, exclude_self, normalize=False):
    n, d = query.shape
    n_ref = reference.shape[0]
    if n_ref * d > checks.BLOCK_ELEMENTS:
        return exact_knn_blocked_reference(query, reference, k, exclude_self, normalize)
    ref = np.asarray(reference, dtype=np.float32)
    if normalize:
        ref = l2_normalize(ref)
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    kk = k + 1 if exclude_self else k
    # Cap rows by the feature count too: a lazy or memory-mapped query is read one block at a time.
    for start, stop in chunks(n, rows_per_block(max(n_ref, d))):
        q = read_rows(query, start, stop, normalize)
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


def exact_knn_blocked_reference(query, reference, k, exclude_self, normalize):
    """Exact search against a reference too large to hold: blocks of reference rows,
    a running top-k per query (few queries, huge reference: AnchorAL's anchors vs the pool)."""
    n, d = query.shape
    n_ref = reference.shape[0]
    ref_rows = rows_per_block(d)
    q_rows = rows_per_block(max(ref_rows, d))
    best_d = np.full((n, k), np.inf, dtype=np.float32)
    best_i = np.full((n, k), -1, dtype=np.int64)
    for rs, re in chunks(n_ref, ref_rows):
        ref = read_rows(reference, rs, re, normalize)
        ref_sq = np.einsum("ij,ij->i", ref, ref)
        for qs, qe in chunks(n, q_rows):
            q = read_rows(query, qs, qe, normalize)
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
            vals, cols = smallest_k(cand_d, k)
            best_d[qs:qe] = vals
            best_i[qs:qe] = np.take_along_axis(cand_i, cols, axis=1)
    return np.sqrt(np.maximum(best_d, 0.0)), best_i


def hnsw_index(reference, random_state, ef, kk, normalize):
    hnswlib = require("hnswlib", "scale", "nearest-neighbour method 'hnsw'")

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


def hnsw_knn(query, reference, k, exclude_self, random_state, ef, normalize=False):
    kk = k + 1 if exclude_self else k
    index = hnsw_index(reference, random_state, ef, kk, normalize)
    return search_inchunks(lambda q: index.knn_query(q, k=kk, num_threads=-1), query, k, exclude_self, normalize)


def drop_self(labels, d2, rows, k):
    """Drop each query's own row (``rows``: its reference id) from k + 1 answers,
    or the farthest answer where it is absent, keeping ``k`` per row."""
    keep = labels != rows[:, None]
    keep[keep.all(axis=1), -1] = False
    return labels[keep].reshape(-1, k), d2[keep].reshape(-1, k)


def search_inchunks(search, query, k, exclude_self, normalize, block_rows=None):
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
            q = np.ascontiguousarray(read_rows(query, start, stop, normalize))
        else:
            q = buf[: stop - start]
            for s, e in chunks(stop - start, rows_per_block(d)):
                q[s:e] = read_rows(query, start + s, start + e, normalize)
        labels, d2 = search(q)
        labels = labels.astype(np.int64)
        if exclude_self:
            labels, d2 = drop_self(labels, d2, np.arange(start, stop), k)
        idx[start:stop] = labels
        dist[start:stop] = np.sqrt(np.maximum(d2, 0.0))
    return dist, idx


def faiss_available():
    """Whether faiss-cpu imports ('auto' uses it where faster, and falls back without it)."""
    return available("faiss")


def hnswlib_available():
    """Whether hnswlib imports ('auto' falls back to the exact search without it)."""
    return available("hnswlib")


def faiss_knn(query, reference, k, exclude_self, normalize=False):
    """Exact search with faiss's IndexFlatL2 (BLAS distances, fused top-k): ~5x the NumPy exact path."""
    faiss = require("faiss", "scale", "nearest-neighbour method 'faiss'")

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

    return search_inchunks(search, query, k, exclude_self, normalize)
