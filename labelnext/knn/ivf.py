"""Inverted-file nearest neighbours with exact distances and a measured recall.

The reference rows are split into ``n_lists`` cells by k-means; each query is
compared, at full dimension and with exact distances, only with the rows of the
``n_probe`` cells whose centres are nearest to it: the inverted-file (IVF) scheme
of Jégou, Douze & Schmid, "Product quantization for nearest neighbor search"
(IEEE TPAMI 33(1), 2011), without the quantisation, so the distances returned are
exact for the neighbours returned. Per cell, all the queries of a block that probe
it are searched at once by one faiss flat search (a matrix product and a fused
top-k): the work is the fraction ``n_probe / n_lists`` of the exact search at
nearly the exact search's speed per pair (faiss's own ``IndexIVFFlat`` scans one
query at a time without BLAS: measured 5x slower per pair on 2 cores).

``n_probe`` is chosen by measurement (:meth:`IVFIndex.calibrate`): the exact answer
is computed for a random sample of queries and ``n_probe`` doubles from 1 until the
sample's recall reaches the target. Data with no cluster structure (near-isotropic
high-dimensional noise) never reach it within ``max_scan`` of the reference: the
caller then runs the exact search instead.

Needs faiss-cpu. No global random state: the k-means seed comes from ``random_state``.
"""
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.utils import check_random_state

from labelnext.utils.checks import check_choice, check_int
from labelnext.utils.extras import require
from labelnext.knn.backends import cosine_distance, drop_self, faiss_knn, l2_normalize, search_inchunks, smallest_k

# Cells per sqrt(reference rows): 5,000 labeled rows -> 35 cells of ~140 rows
# (measured at 100k x 5k x 576: 32 cells probed 2 at a time ran 4.5x faster than
# 64 cells probed 4 at a time, with the same recall, fewer and larger products).
LISTS_PER_SQRT_ROW = 0.5
# Threads that search cells at once (each with a one-thread faiss call).
SEARCH_THREADS = max(1, min(8, os.cpu_count() or 1))
# k-means iterations for the cells (faiss's default is 25; the cells only steer the
# search, exactness comes from the full-dimension distances).
KMEANS_ITERATIONS = 20


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


def _sq_norms(x):
    return np.einsum("ij,ij->i", x, x)


class IVFIndex:
    """Reference rows split into k-means cells; exact search within the probed cells.

    Parameters
    ----------
    reference : ndarray of shape (n_reference, n_features), float32
    n_lists : int or None
        Cells; default ``round(LISTS_PER_SQRT_ROW * sqrt(n_reference))``, at least 1.
    random_state : int, RandomState or None
        Seeds the k-means that builds the cells.

    Attributes
    ----------
    centroids : ndarray of shape (n_lists, n_features)
    lists : list of ndarray of int64, the reference rows of each cell
    """

    def __init__(self, reference, n_lists=None, random_state=None):
        faiss = require("faiss", "scale", "nearest-neighbour method 'ivf'")

        ref = np.ascontiguousarray(reference, dtype=np.float32)
        n_ref, d = ref.shape
        if n_lists is None:
            n_lists = max(1, int(round(LISTS_PER_SQRT_ROW * math.sqrt(n_ref))))
        self.n_lists = int(min(n_lists, n_ref))
        seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
        km = faiss.Kmeans(d, self.n_lists, niter=KMEANS_ITERATIONS, seed=seed, verbose=False)
        km.train(ref)
        self.centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
        self._centroid_sq = _sq_norms(self.centroids)
        cell = self._nearest_cells(ref, 1)[:, 0]
        self.lists = [np.flatnonzero(cell == j) for j in range(self.n_lists)]
        self._cells = [np.ascontiguousarray(ref[rows]) for rows in self.lists]
        self.reference = ref
        self.n_reference = n_ref

    def _nearest_cells(self, q, n_probe):
        d2 = self._centroid_sq[None, :] - 2.0 * (q @ self.centroids.T)
        if n_probe >= self.n_lists:
            return np.tile(np.arange(self.n_lists), (q.shape[0], 1))
        return np.argpartition(d2, n_probe - 1, axis=1)[:, :n_probe]

    def scan_fraction(self, n_probe):
        """Share of the reference pairs a search with ``n_probe`` computes (balanced cells)."""
        return min(1.0, n_probe / self.n_lists)

    def search(self, q, k, n_probe):
        """``k`` nearest reference rows of each query among its ``n_probe`` nearest cells.

        Queries whose probed cells hold fewer than ``k`` rows are searched exactly
        against the whole reference, so every row gets ``k`` neighbours.

        Parameters
        ----------
        q : ndarray of shape (n_query, n_features), float32, C-contiguous
        k : int, at most n_reference
        n_probe : int

        Returns
        -------
        labels : ndarray of shape (n_query, k), int64 reference rows, nearest first
        d2 : ndarray of shape (n_query, k), float32 squared euclidean distances
        """
        import faiss

        nq = q.shape[0]
        p = min(n_probe, self.n_lists)
        probe = self._nearest_cells(q, p)
        cand_d = np.full((nq, p, k), np.inf, dtype=np.float32)
        cand_i = np.full((nq, p, k), -1, dtype=np.int64)
        flat = probe.ravel()
        order = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[order], np.arange(self.n_lists + 1))

        def cell(j):
            # Each (query, slot) belongs to one cell: threads write disjoint entries.
            sel = order[bounds[j]:bounds[j + 1]]
            rows_j = self.lists[j]
            if sel.size == 0 or rows_j.size == 0:
                return
            rows, slot = np.divmod(sel, p)
            kj = min(k, rows_j.size)
            d2, ii = faiss.knn(np.ascontiguousarray(q[rows]), self._cells[j], kj)
            cand_d[rows, slot, :kj] = d2
            cand_i[rows, slot, :kj] = rows_j[ii]

        # Cells run in parallel Python threads, each faiss call on one OpenMP thread (set
        # per thread: the caller's faiss threads are untouched). Many small calls with 2
        # OpenMP threads each spent most of their time at barriers: 300k x 5k on 2 busy
        # cores took 22.5 s that way and 10.7 s on one thread.
        with ThreadPoolExecutor(max_workers=SEARCH_THREADS, initializer=faiss.omp_set_num_threads,
                                initargs=(1,)) as pool:
            list(pool.map(cell, range(self.n_lists)))
        cand_d = cand_d.reshape(nq, p * k)
        cand_i = cand_i.reshape(nq, p * k)
        d2, cols = smallest_k(cand_d, k)
        labels = np.take_along_axis(cand_i, cols, axis=1)
        short = np.flatnonzero(~np.isfinite(d2[:, -1]))
        if short.size:
            d2[short], labels[short] = faiss.knn(np.ascontiguousarray(q[short]), self.reference, k)
        return labels, d2

    def calibrate(self, sample, exact_d2, k, *, target_recall, max_scan, drop=None):
        """The smallest ``n_probe`` in 1, 2, 4, ... whose recall on ``sample`` reaches ``target_recall``.

        Recall counts a returned neighbour as found when its distance is at most the
        exact k-th distance (ties between equidistant rows count as found).

        Parameters
        ----------
        sample : ndarray of shape (n_sample, n_features), float32
        exact_d2 : ndarray of shape (n_sample, k), exact squared distances, ascending
        k : int
        target_recall : float in (0, 1]
        max_scan : float
            Largest :meth:`scan_fraction` worth trying (beyond it the exact search is as fast).
        drop : callable or None
            ``drop(labels, d2) -> (labels, d2)`` applied to the IVF answer before
            counting (the caller's self-exclusion, when the sample searches k + 1).

        Returns
        -------
        n_probe : int or None (None: the target is not reached within ``max_scan``)
        recalls : dict of int -> float, the recall measured at each ``n_probe`` tried
        """
        kth = exact_d2[:, -1:]
        tol = 1e-5 * np.maximum(kth, 1e-12)
        recalls = {}
        p = 1
        while p <= self.n_lists and self.scan_fraction(p) <= max_scan:
            labels, d2 = self.search(sample, k if drop is None else k + 1, p)
            if drop is not None:
                labels, d2 = drop(labels, d2)
            recalls[p] = float((d2 <= kth + tol).sum(axis=1).clip(max=k).mean() / k)
            if recalls[p] >= target_recall:
                return p, recalls
            p *= 2
        return None, recalls


def ivf_knn(query, reference, k, *, metric="euclidean", exclude_self=False, target_recall=None, random_state=None):
    """Inverted-file search with exact distances and a recall measured on a sample of queries.

    The reference is split into k-means cells (:class:`IVFIndex`); the
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
    check_choice(metric, "metric", ("euclidean", "cosine"))
    check_int(k, "k", low=1, high=reference.shape[0] - 1 if exclude_self else reference.shape[0])
    dist, idx, info = ivf_knn_raw(query, reference, k, exclude_self, metric == "cosine", random_state, target)
    return (cosine_distance(dist) if metric == "cosine" else dist), idx, info


def ivf_plan(query, reference, k, exclude_self, normalize, rng, target):
    """Cells and calibrated n_probe: ``(index or None, n_probe or None, info)``; reads only
    ``query.shape`` and the sample rows ``query[rows]``."""
    faiss = require("faiss", "scale", "nearest-neighbour method 'ivf'")

    info = {"n_lists": 0, "n_probe": None, "recalls": {}, "scan_fraction": 1.0, "fallback": True}
    if reference.shape[0] < IVF_MIN_REFERENCE:
        return None, None, info
    n = query.shape[0]
    ref = np.ascontiguousarray(reference, dtype=np.float32)
    if normalize:
        ref = l2_normalize(ref)
    index = IVFIndex(ref, random_state=rng)
    del ref
    rows = np.sort(rng.choice(n, min(n, IVF_SAMPLE_QUERIES), replace=False))
    sample = np.asarray(query[rows], dtype=np.float32)
    sample = np.ascontiguousarray(l2_normalize(sample) if normalize else sample)
    exact_d2, exact_i = faiss.knn(sample, index.reference, k + 1 if exclude_self else k)
    drop = None
    if exclude_self:
        exact_i, exact_d2 = drop_self(exact_i.astype(np.int64), exact_d2, rows, k)
        drop = lambda labels, d2: drop_self(labels, d2, rows, k)  # noqa: E731
    n_probe, recalls = index.calibrate(sample, exact_d2, k, target_recall=target, max_scan=IVF_MAX_SCAN, drop=drop)
    info.update(n_lists=index.n_lists, n_probe=n_probe, recalls=recalls)
    if n_probe is None:
        return None, None, info
    info.update(scan_fraction=index.scan_fraction(n_probe), fallback=False)
    return index, n_probe, info


def ivf_knn_raw(query, reference, k, exclude_self, normalize, random_state, target):
    index, n_probe, info = ivf_plan(query, reference, k, exclude_self, normalize, check_random_state(random_state), target)
    if index is None:
        # No cell structure worth using: the exact flat search (what method='faiss' runs).
        dist, idx = faiss_knn(query, reference, k, exclude_self, normalize)
        return dist, idx, info
    kk = k + 1 if exclude_self else k
    dist, idx = search_inchunks(lambda q: index.search(q, kk, n_probe), query, k, exclude_self, normalize,
                                 block_rows=IVF_BLOCK_ROWS)
    return dist, idx, info
