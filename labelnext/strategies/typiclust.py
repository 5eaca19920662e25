"""TypiClust: the most typical item of the largest uncovered clusters (Hacohen, Dekel & Weinshall 2022)."""
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext.utils.checks import check_embeddings, check_int, check_pool
from labelnext.knn import StandardizedView, assign_to_centers, knn_search
from labelnext.strategies.base import Options

# KMeans is fitted on at most this many rows (a seeded sample); the rest are assigned.
KMEANS_SAMPLE_SIZE = 20_000
# Typicality inside a cluster larger than this is measured on a seeded sample of its pool
# items (cold start on a large pool: 10 clusters of 100k items would each need a
# 100k x 100k neighbour search).
TYPICALITY_MAX_ROWS = 5000


def kmeans_centers(x, n_clusters, *, sample_weight=None, random_state=None):
    """Centres of Lloyd's KMeans on a sample of at most 20,000 rows (``fit_kmeans(algorithm='sampled')``):
    fast for the hundreds of clusters TypiClust and DBAL ask for, optionally weighted."""
    return alf.fit_kmeans(x, n_clusters, algorithm="sampled", sample_size=KMEANS_SAMPLE_SIZE,
                          sample_weight=sample_weight, random_state=random_state)[0]


def typicality(x, k_neighbors=20, *, random_state=None):
    """Inverse mean distance to the ``k`` nearest other rows of ``x``.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features)
    k_neighbors : int
        Capped at ``n_samples // 2`` as in the authors' code, so a small cluster's
        density is measured over its own half; a single row gets typicality 0.

    Returns
    -------
    scores : ndarray of shape (n_samples,), float64; higher = more typical
    """
    n = x.shape[0]
    k = min(k_neighbors, n // 2)
    if k < 1:
        return np.zeros(n)
    dist, _ = knn_search(x, x, k, exclude_self=True, random_state=random_state)
    # The +1e-5 of the reference implementation: duplicates give a large, finite score.
    return 1.0 / (dist.mean(axis=1, dtype=np.float64) + 1e-5)


def typiclust_select(embeddings, labeled_mask, budget, *, max_clusters=500, k_neighbors=20, min_cluster_size=5,
                     random_state=None, standardized=False):
    """TypiClust: cover the clusters with fewest labels by their most typical items.

    1. Cluster labeled and pool items together into ``min(n_labeled + budget,
       max_clusters)`` clusters (:func:`kmeans_centers`).
    2. Repeatedly take the cluster with the fewest labeled (or already chosen) items,
       the largest first among those; clusters smaller than ``min_cluster_size`` come
       only after every larger one is exhausted.
    3. From it pick the unlabeled item of highest typicality, 1 / mean distance to its
       ``k_neighbors`` nearest neighbours among the cluster's remaining unlabeled items.

    Typicality is recomputed only for the cluster a pick was taken from, and measured on a
    seeded sample of ``TYPICALITY_MAX_ROWS`` pool items in a larger cluster.

    Parameters
    ----------
    embeddings : ndarray, memmap or StandardizedView of shape (n_samples, n_features)
        Labeled and pool items together; standardised unless ``standardized``.
    labeled_mask : ndarray of shape (n_samples,), bool
        The pool is ``~labeled_mask``.
    budget : int
        Between 1 and the pool size (otherwise ``ValueError``).
    max_clusters : int
        Cap on the number of clusters (500 in the paper).
    k_neighbors : int
        Neighbours in the typicality estimate (20 in the paper).
    min_cluster_size : int
        Clusters below this size are visited last (5 in the paper).
    random_state : int, RandomState or None
        Seeds KMeans, the kNN index and tie-breaking.
    standardized : bool
        The caller already standardised ``embeddings``.

    Returns
    -------
    rows : ndarray of shape (budget,), int64
        Rows of ``embeddings`` (pool rows only), in the order they were picked.

    Notes
    -----
    Cost: KMeans on a sample of at most 20,000 rows (:func:`kmeans_centers`) + assignment
    O(n_samples * n_clusters * n_features), then a kNN search inside each visited
    cluster, O(min(cluster size, 5000)^2 * n_features) each; 100k x 64 with 500
    clusters takes seconds. Distances are Euclidean (the authors' code averages
    squared ones; the ranking within a cluster rarely differs).

    References
    ----------
    Hacohen, G., Dekel, A. and Weinshall, D. (2022). Active Learning on a Budget:
    Opposite Strategies Suit High and Low Budgets. ICML.
    """
    embeddings = check_embeddings(embeddings)
    labeled_mask, pool = check_pool(labeled_mask, embeddings.shape[0], budget)
    TypiClustOptions(max_clusters=max_clusters, k_neighbors=k_neighbors, min_cluster_size=min_cluster_size)  # checks them
    rng = check_random_state(random_state)
    x = embeddings if standardized else StandardizedView(embeddings)
    n_clusters = min(int(labeled_mask.sum()) + budget, max_clusters, embeddings.shape[0])
    centers = kmeans_centers(x, n_clusters, random_state=rng)
    clusters, _ = assign_to_centers(x, centers)
    sizes = np.bincount(clusters, minlength=n_clusters)
    covered = np.bincount(clusters[labeled_mask], minlength=n_clusters)
    # Pool members of each cluster, in row order; picks are removed as they are taken.
    order = np.argsort(clusters[pool], kind="stable")
    bounds = np.searchsorted(clusters[pool][order], np.arange(n_clusters + 1))
    members = [pool[order[bounds[c]:bounds[c + 1]]] for c in range(n_clusters)]
    remaining = np.diff(bounds)
    typ = [None] * n_clusters
    small = sizes < min_cluster_size
    cluster_tiebreak = rng.random_sample(n_clusters)
    picked = np.empty(budget, dtype=np.int64)
    for t in range(budget):
        # Key, most significant last: clusters with pool items left, large enough, fewest covered, largest, random.
        c = np.lexsort((cluster_tiebreak, -sizes, covered, small, remaining == 0))[0]
        if typ[c] is None:
            m = members[c].size
            sub = np.arange(m) if m <= TYPICALITY_MAX_ROWS else np.sort(rng.choice(m, TYPICALITY_MAX_ROWS, replace=False))
            typ[c] = sub, typicality(np.asarray(x[members[c][sub]], dtype=np.float32), k_neighbors, random_state=rng)
        sub, scores = typ[c]
        j = sub[alf.select_top(scores, 1, random_state=rng)[0]]
        picked[t] = members[c][j]
        members[c] = np.delete(members[c], j)
        typ[c] = None  # the density of the remaining items changed
        covered[c] += 1
        remaining[c] -= 1
    return picked


@dataclass(frozen=True)
class TypiClustOptions(Options):
    """Options of ``typiclust`` (keyword arguments of :func:`typiclust_select`).

    max_clusters : int, default=500
        Cap on the number of KMeans clusters (n_labeled + budget otherwise).
    k_neighbors : int, default=20
        Neighbours for typicality.
    min_cluster_size : int, default=5
        Smaller clusters are used last.
    """

    max_clusters: int = 500
    k_neighbors: int = 20
    min_cluster_size: int = 5

    def __post_init__(self):
        check_int(self.max_clusters, "max_clusters", low=1)
        check_int(self.k_neighbors, "k_neighbors", low=1)
        check_int(self.min_cluster_size, "min_cluster_size", low=1)


def typiclust_strategy(ctx, budget, random_state=None):
    """``typiclust`` behind the strategy contract; options: :class:`TypiClustOptions` (``params['typiclust']``)."""
    opts = ctx.options("typiclust", TypiClustOptions)
    return typiclust_select(ctx.embeddings, ctx.labeled_mask, budget, random_state=random_state,
                            **opts.as_dict())
