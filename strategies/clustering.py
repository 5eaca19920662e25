"""Clustering strategies: uncertainty followed by coverage of what the uncertain rows miss."""
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

import AL_functions as alf
import knn
from checks import check_float
from strategies.base import Options


@dataclass(frozen=True)
class UncertaintyClusteringOptions(Options):
    """Options of ``uncertainty_clustering``.

    alpha : float in [0, 1], default=0.2
        Share of the budget taken by entropy; the rest goes to rows far from the
        centroids of those uncertain rows.
    """

    alpha: float = 0.2

    def __post_init__(self):
        check_float(self.alpha, "alpha", 0.0, 1.0)


def uncertainty_clustering_strategy(ctx, budget, random_state=None):
    """Top ``alpha * budget`` by entropy, plus the pool rows farthest from their KMeans centroids.

    1. Take the ``round(alpha * budget)`` (at least 1) most uncertain pool rows by entropy.
    2. Run KMeans on their standardised embeddings (``n_clusters`` = min(that count,
       n_classes)).
    3. Add the ``budget - that count`` other pool rows whose distance to the nearest of
       those centroids is largest (the regions the uncertain rows do not cover).

    Options: :class:`UncertaintyClusteringOptions` (``params['uncertainty_clustering']``).
    """
    alpha = ctx.options("uncertainty_clustering", UncertaintyClusteringOptions).alpha
    rng = check_random_state(random_state)
    pool = ctx.pool_rows
    n_unc = min(budget, max(1, int(round(alpha * budget))))
    order = alf.select_top(alf.entropy_scores(ctx.probs[pool]), len(pool), random_state=rng)
    uncertain, rest = order[:n_unc], order[n_unc:]
    if n_unc == budget:
        return pool[uncertain]
    mean, std = knn.standardization_stats(ctx.embeddings)
    x = knn.standardize(np.asarray(ctx.embeddings[pool]), mean, std)
    centers, _ = alf.fit_kmeans(x[uncertain], min(n_unc, ctx.n_classes), algorithm="kmeans", random_state=rng)
    _, dist = knn.assign_to_centers(x[rest], centers)
    far = rest[alf.select_top(dist, budget - n_unc, random_state=rng)]
    return pool[np.concatenate([uncertain, far])]
