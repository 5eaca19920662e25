"""ProbCover: greedy maximum coverage of delta-balls (Yehuda, Dekel, Hacohen & Weinshall 2022)."""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from labelnext.utils.checks import check_choice, check_embeddings, check_float, check_int, check_pool
from labelnext.knn import KNN_METHODS, StandardizedView, knn_search
from labelnext.strategies.base import Options

# Sample of rows whose neighbour distances set the default radius.
DELTA_SAMPLE_SIZE = 2000


def _unit_distances(cosine_dist):
    """Euclidean distance between unit vectors from ``1 - cos`` (what knn_search returns for 'cosine')."""
    return np.sqrt(np.maximum(2.0 * cosine_dist, 0.0))


def default_delta(x, ball_neighbors=20, *, sample_size=DELTA_SAMPLE_SIZE, random_state=None):
    """Ball radius that holds about ``ball_neighbors`` other items around a typical item.

    The median, over a seeded sample of rows, of the distance to the ``ball_neighbors``-th
    nearest neighbour, on L2-normalised rows (a value in [0, 2]). It stands in for the
    paper's purity heuristic (largest delta whose balls stay 95 % pure for k-means
    pseudo-labels), which needs a clustering and a full graph per candidate delta.

    Parameters
    ----------
    x : ndarray or StandardizedView of shape (n_samples, n_features)
        Standardised embeddings (normalised here as they are read).
    ball_neighbors : int, at most n_samples - 1

    Returns
    -------
    delta : float
    """
    n = x.shape[0]
    check_int(ball_neighbors, "ball_neighbors", low=1, high=n - 1)
    rng = check_random_state(random_state)
    rows = np.sort(rng.choice(n, min(sample_size, n), replace=False))
    # k + 1: each sampled row finds itself at distance 0 first.
    dist, _ = knn_search(x[rows], x, ball_neighbors + 1, metric="cosine", random_state=rng)
    return float(np.median(_unit_distances(dist[:, -1])))


def ball_graph(x, delta, max_neighbors=50, *, method="auto", random_state=None):
    """Symmetric graph of the items within ``delta`` of each other, self-loops included.

    Each row's ball is approximated by its ``max_neighbors`` nearest neighbours within
    ``delta``; an edge found from either end is kept, so dense items keep more than
    ``max_neighbors`` edges.

    Parameters
    ----------
    x : ndarray or StandardizedView of shape (n_samples, n_features)
        Standardised embeddings (L2-normalised here as they are read).
    delta : float
        Radius on the unit sphere.

    Returns
    -------
    graph : scipy.sparse.csr_matrix of shape (n_samples, n_samples), int8
    """
    n = x.shape[0]
    k = min(max_neighbors, n - 1)
    rows, cols = np.arange(n), np.arange(n)
    if k >= 1:
        dist, idx = knn_search(x, x, k, metric="cosine", method=method, exclude_self=True, random_state=random_state)
        near = _unit_distances(dist) <= delta
        src = np.repeat(np.arange(n), near.sum(axis=1))
        dst = idx[near]
        rows, cols = np.concatenate([rows, src, dst]), np.concatenate([cols, dst, src])
    graph = sp.csr_matrix((np.ones(rows.size, dtype=np.int8), (rows.astype(np.int32), cols.astype(np.int32))), shape=(n, n))
    graph.data[:] = 1  # edges found from both ends were summed
    return graph


def probcover_select(embeddings, labeled_mask, budget, *, delta=None, ball_neighbors=20, max_neighbors=50,
                     knn_method="auto", random_state=None, standardized=False):
    """ProbCover: pick the pool items whose delta-balls cover the most items not yet covered.

    Items already within ``delta`` of a labeled item count as covered. Each pick is the
    pool item whose ball holds the most uncovered items; its ball then becomes covered.
    Once everything is covered, the remaining picks are uniformly random (seeded) among
    the rest of the pool, as in the paper.

    Parameters
    ----------
    embeddings : ndarray, memmap or StandardizedView of shape (n_samples, n_features)
        Labeled and pool items together; standardised unless ``standardized``, then
        L2-normalised (the paper works on unit-norm self-supervised features).
    labeled_mask : ndarray of shape (n_samples,), bool
    budget : int
        Between 1 and the pool size (otherwise ``ValueError``).
    delta : float in (0, 2] or None
        Ball radius (Euclidean, on the unit sphere). None: :func:`default_delta`.
    ball_neighbors : int
        Items a median ball holds when ``delta`` is None.
    max_neighbors : int
        Neighbours searched per item to build the graph (caps a ball's size from its
        own side; see :func:`ball_graph`).
    knn_method : {'auto', 'exact', 'hnsw', 'faiss'}
        Backend of :func:`knn.knn_search`.
    random_state : int, RandomState or None
    standardized : bool
        The caller already standardised ``embeddings``.

    Returns
    -------
    rows : ndarray of shape (budget,), int64
        Rows of ``embeddings`` (pool rows only), in the order they were picked.

    Notes
    -----
    Cost: one kNN search of every row against every row for ``max_neighbors``
    neighbours (HNSW or faiss at scale), a graph of at most
    n_samples * (2 * max_neighbors + 1) edges, then O(budget * n_samples) for the greedy
    picks.

    References
    ----------
    Yehuda, O., Dekel, A., Hacohen, G. and Weinshall, D. (2022). Active Learning Through
    a Covering Lens. NeurIPS.
    """
    embeddings = check_embeddings(embeddings)
    n = embeddings.shape[0]
    labeled_mask, pool = check_pool(labeled_mask, n, budget)
    ProbCoverOptions(delta=delta, ball_neighbors=ball_neighbors, max_neighbors=max_neighbors,  # checks them
                     knn_method=knn_method)
    rng = check_random_state(random_state)
    x = embeddings if standardized else StandardizedView(embeddings)
    if delta is None:
        delta = default_delta(x, min(ball_neighbors, n - 1), random_state=rng) if n > 1 else 1.0
    graph = ball_graph(x, delta, max_neighbors, method=knn_method, random_state=rng)
    uncovered = np.ones(n, dtype=bool)
    uncovered[graph[np.flatnonzero(labeled_mask)].indices] = False
    degree = graph @ uncovered.astype(np.int64)
    # Integer degrees plus a tie-break in [0, 0.5): the most-covering item wins, ties at random.
    gain = degree + 0.5 * rng.random_sample(n)
    gain[labeled_mask] = -np.inf
    picked = np.empty(budget, dtype=np.int64)
    for t in range(budget):
        c = int(np.argmax(gain))
        if degree[c] == 0:
            # Everything is covered: the rest of the picks are random, as in the paper.
            rest = np.flatnonzero(np.isfinite(gain))
            picked[t:] = rng.choice(rest, budget - t, replace=False)
            break
        picked[t] = c
        gain[c] = -np.inf
        ball = graph.indices[graph.indptr[c]:graph.indptr[c + 1]]
        newly = ball[uncovered[ball]]
        uncovered[newly] = False
        # The graph is symmetric: the items whose balls held a newly covered item are its neighbours.
        lost = np.bincount(graph[newly].indices, minlength=n)
        degree -= lost
        gain -= lost
    return picked


@dataclass(frozen=True)
class ProbCoverOptions(Options):
    """Options of ``probcover`` (keyword arguments of :func:`probcover_select`).

    delta : float or None, default=None
        Ball radius on the unit sphere (None: the median distance to the ball_neighbors-th neighbour).
    ball_neighbors : int, default=20
        Neighbour rank that sets the default delta.
    max_neighbors : int, default=50
        Edges kept per item in the ball graph.
    knn_method : str, default=auto
        Nearest-neighbour backend (see knn.knn_search).
    """

    delta: Optional[float] = None
    ball_neighbors: int = 20
    max_neighbors: int = 50
    knn_method: str = "auto"

    def __post_init__(self):
        if self.delta is not None:
            check_float(self.delta, "delta", 0.0, 2.0, low_open=True)
        check_int(self.ball_neighbors, "ball_neighbors", low=1)
        check_int(self.max_neighbors, "max_neighbors", low=1)
        check_choice(self.knn_method, "knn_method", KNN_METHODS)


def probcover_strategy(ctx, budget, random_state=None):
    """``probcover`` behind the strategy contract; options: :class:`ProbCoverOptions` (``params['probcover']``)."""
    opts = ctx.options("probcover", ProbCoverOptions)
    return probcover_select(ctx.embeddings, ctx.labeled_mask, budget, random_state=random_state,
                            **opts.as_dict())
