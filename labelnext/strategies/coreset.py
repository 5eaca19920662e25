"""Core-set selection: greedy k-center over standardised embeddings (Sener & Savarese 2018)."""
import numpy as np
from sklearn.utils import check_random_state

from labelnext.utils.checks import check_embeddings, check_pool
from labelnext.knn import StandardizedView, knn_search


def coreset_select(embeddings, labeled_mask, budget, *, random_state=None, standardized=False):
    """Greedy k-center: repeatedly take the pool item farthest from the labeled and chosen items.

    The distance of every pool item to its nearest center (labeled or already chosen) is
    kept as one running-minimum vector; each pick updates it with one pass over the pool
    (``||x||^2 + ||c||^2 - 2 x.c``), so no pool-by-pool matrix is ever built.

    Parameters
    ----------
    embeddings : ndarray, memmap or StandardizedView of shape (n_samples, n_features)
        Labeled and pool items together; standardised (statistics over all rows) unless
        ``standardized``.
    labeled_mask : ndarray of shape (n_samples,), bool
        The pool is ``~labeled_mask``.
    budget : int
        Items to select, between 1 and the pool size (otherwise ``ValueError``).
    random_state : int, RandomState or None
        Breaks ties, picks the first center when nothing is labeled, seeds an HNSW index
        when the pool-to-labeled search is large enough to use one.
    standardized : bool
        The caller already standardised ``embeddings``.

    Returns
    -------
    rows : ndarray of shape (budget,), int64
        Rows of ``embeddings`` (pool rows only), in the order they were picked.

    Notes
    -----
    Cost: one nearest-labeled search (:func:`knn.knn_search`) plus O(n_pool * budget *
    n_features) for the greedy updates; memory: the standardised pool (n_pool x
    n_features float32).

    References
    ----------
    Sener, O. and Savarese, S. (2018). Active Learning for Convolutional Neural Networks:
    A Core-Set Approach. ICLR.
    """
    embeddings = check_embeddings(embeddings)
    labeled_mask, pool = check_pool(labeled_mask, embeddings.shape[0], budget)
    rng = check_random_state(random_state)
    view = embeddings if standardized else StandardizedView(embeddings)
    x = np.asarray(view[pool], dtype=np.float32)
    sq = np.einsum("ij,ij->i", x, x)
    if labeled_mask.any():
        min_dist, _ = knn_search(x, view[labeled_mask], 1, random_state=rng)
        min_dist = min_dist[:, 0].astype(np.float32)
    else:
        # Nothing labeled: every item is infinitely far, so the first pick is a seeded random one.
        min_dist = np.full(pool.size, np.inf, dtype=np.float32)
    tiebreak = rng.random_sample(pool.size)
    picked = np.empty(budget, dtype=np.int64)
    for t in range(budget):
        best = np.flatnonzero(min_dist == min_dist.max())
        c = best[np.argmax(tiebreak[best])]
        picked[t] = c
        d2 = sq + sq[c] - 2.0 * (x @ x[c])
        np.minimum(min_dist, np.sqrt(np.maximum(d2, 0.0)), out=min_dist)
        # A chosen item (or an exact duplicate of a center) sits at distance 0; -inf keeps
        # the chosen ones from being picked again when every distance has reached 0.
        min_dist[c] = -np.inf
    return pool[picked]


def coreset_strategy(ctx, budget, random_state=None):
    """``coreset`` behind the strategy contract; options: ``ctx.params['coreset']``
    (keyword arguments of :func:`coreset_select`)."""
    return coreset_select(ctx.embeddings, ctx.labeled_mask, budget, random_state=random_state)
