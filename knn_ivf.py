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

import numpy as np
from sklearn.utils import check_random_state

# Cells per sqrt(reference rows): 5,000 labeled rows -> 35 cells of ~140 rows
# (measured at 100k x 5k x 576: 32 cells probed 2 at a time ran 4.5x faster than
# 64 cells probed 4 at a time, with the same recall, fewer and larger products).
LISTS_PER_SQRT_ROW = 0.5
# k-means iterations for the cells (faiss's default is 25; the cells only steer the
# search, exactness comes from the full-dimension distances).
KMEANS_ITERATIONS = 20


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
        import faiss

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
        for j in range(self.n_lists):
            sel = order[bounds[j]:bounds[j + 1]]
            rows_j = self.lists[j]
            if sel.size == 0 or rows_j.size == 0:
                continue
            rows, slot = np.divmod(sel, p)
            kj = min(k, rows_j.size)
            d2, ii = faiss.knn(np.ascontiguousarray(q[rows]), self._cells[j], kj)
            cand_d[rows, slot, :kj] = d2
            cand_i[rows, slot, :kj] = rows_j[ii]
        cand_d = cand_d.reshape(nq, p * k)
        cand_i = cand_i.reshape(nq, p * k)
        part = np.argpartition(cand_d, k - 1, axis=1)[:, :k] if k < p * k else np.tile(np.arange(k), (nq, 1))
        part_d = np.take_along_axis(cand_d, part, axis=1)
        order = np.argsort(part_d, axis=1, kind="stable")
        d2 = np.take_along_axis(part_d, order, axis=1)
        labels = np.take_along_axis(np.take_along_axis(cand_i, part, axis=1), order, axis=1)
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
