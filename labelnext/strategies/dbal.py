"""Diverse mini-batch active learning: uncertainty-weighted KMeans over the most uncertain items (Zhdanov 2019)."""
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext.utils.checks import check_embeddings, check_int, check_pool, check_probs
from labelnext.knn import StandardizedView, knn_search
from labelnext.strategies.base import Options

from .typiclust import kmeans_centers

# Weights must be positive for KMeans; a certain item (margin 1) still gets a tiny one.
_MIN_WEIGHT = 1e-6


def _closest_distinct(x, centers, rng):
    """For each centre, the nearest row of ``x`` not already taken by an earlier centre.

    Returns
    -------
    rows : ndarray of shape (n_centers,), int64, distinct
    """
    n, m = x.shape[0], centers.shape[0]
    k = min(n, 8)
    _, near = knn_search(centers, x, k, random_state=rng)
    taken = np.zeros(n, dtype=bool)
    rows = np.empty(m, dtype=np.int64)
    for i in range(m):
        free = near[i][~taken[near[i]]]
        if free.size == 0:
            # Rare (several centres on one tight group): search this centre against the rest.
            rest = np.flatnonzero(~taken)
            free = rest[knn_search(centers[i:i + 1], x[rest], 1)[1][0]]
        rows[i] = free[0]
        taken[rows[i]] = True
    return rows


def dbal_select(probs, embeddings, labeled_mask, budget, *, beta=10, random_state=None, standardized=False):
    """Diverse mini-batch AL: cluster the ``beta * budget`` most uncertain items, take one per cluster.

    1. Pre-filter the ``beta * budget`` pool items of smallest top-1 / top-2 margin (the
       whole pool when that is larger).
    2. KMeans with ``budget`` clusters on their standardised embeddings, each item
       weighted by its uncertainty (``1 - margin``; :func:`strategies.typiclust.kmeans_centers`).
    3. From each cluster take the item closest to its centroid (distinct items).

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)
    embeddings : ndarray, memmap or StandardizedView of shape (n_samples, n_features)
        Labeled and pool items together; standardised unless ``standardized``.
    labeled_mask : ndarray of shape (n_samples,), bool
    budget : int
        Between 1 and the pool size (otherwise ``ValueError``).
    beta : int
        Pre-filter size per item to select (10 in the paper).
    random_state : int, RandomState or None
    standardized : bool
        The caller already standardised ``embeddings``.

    Returns
    -------
    rows : ndarray of shape (budget,), int64
        Rows (pool rows only), most uncertain first.

    Notes
    -----
    Cost: margins O(n_pool * n_classes), then KMeans on m = min(beta * budget, n_pool)
    items, O(m * budget * n_features) per Lloyd iteration (on a sample of 20,000 above that).

    References
    ----------
    Zhdanov, F. (2019). Diverse mini-batch Active Learning. arXiv:1901.05954.
    """
    probs = check_probs(probs)
    embeddings = check_embeddings(embeddings, n_samples=probs.shape[0])
    labeled_mask, pool = check_pool(labeled_mask, probs.shape[0], budget)
    DbalOptions(beta=beta)  # checks it
    rng = check_random_state(random_state)
    view = embeddings if standardized else StandardizedView(embeddings)
    scores = alf.margin_scores(probs[pool])
    cand = alf.select_top(scores, min(beta * budget, pool.size), random_state=rng)
    if cand.size == budget:
        return pool[cand]
    x = np.asarray(view[pool[cand]], dtype=np.float32)
    weights = np.maximum(scores[cand].astype(np.float64), _MIN_WEIGHT)
    centers = kmeans_centers(x, budget, sample_weight=weights, random_state=rng)
    chosen = cand[_closest_distinct(x, centers, rng)]
    # Most uncertain first (ties at random), so a truncated batch keeps the most informative.
    return pool[chosen[alf.select_top(scores[chosen], budget, random_state=rng)]]


@dataclass(frozen=True)
class DbalOptions(Options):
    """Options of ``dbal`` (keyword arguments of :func:`dbal_select`).

    beta : int, default=10
        Pre-filter the beta x budget most uncertain items.
    """

    beta: int = 10

    def __post_init__(self):
        check_int(self.beta, "beta", low=1)


def _run(ctx, section, budget, random_state):
    opts = ctx.options(section, DbalOptions)
    return dbal_select(ctx.probs, ctx.embeddings, ctx.labeled_mask, budget, random_state=random_state,
                       **opts.as_dict())


def dbal_strategy(ctx, budget, random_state=None):
    """``dbal`` behind the strategy contract; options: :class:`DbalOptions` (``params['dbal']``)."""
    return _run(ctx, "dbal", budget, random_state)


def uncertainty_clustering_strategy(ctx, budget, random_state=None):
    """``dbal`` under the name ``uncertainty_clustering`` (options: ``params['uncertainty_clustering']``)."""
    return _run(ctx, "uncertainty_clustering", budget, random_state)
