"""Cluster-Margin: lowest-margin items, round-robin over HAC clusters (Citovsky et al. 2021)."""
from dataclasses import dataclass
from typing import Optional

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext.utils.checks import check_embeddings, check_int, check_pool, check_probs
from labelnext.knn import StandardizedView, assign_to_centers
from labelnext.strategies.base import Options

# Average-linkage HAC keeps a condensed distance matrix: 5,000 items is ~100 MB and a few seconds.
HAC_MAX_SAMPLES = 5000


def hac_clusters(x, n_clusters, rows, *, max_samples=HAC_MAX_SAMPLES, random_state=None):
    """Average-linkage clusters of ``rows``, fitted on a seeded sample of at most ``max_samples`` of them.

    Items outside the sample join the cluster with the nearest centroid.

    Parameters
    ----------
    x : ndarray or StandardizedView of shape (n_samples, n_features)
    n_clusters : int
    rows : ndarray of shape (n_rows,), int
        Rows of ``x`` to cluster.

    Returns
    -------
    clusters : ndarray of shape (n_rows,), int64, in [0, n_clusters)
    """
    rng = check_random_state(random_state)
    n = rows.size
    in_sample = np.ones(n, dtype=bool)
    if n > max_samples:
        in_sample[:] = False
        in_sample[rng.choice(n, max_samples, replace=False)] = True
    sample = np.asarray(x[rows[in_sample]], dtype=np.float32)
    n_clusters = min(n_clusters, sample.shape[0])
    clusters = np.zeros(n, dtype=np.int64)
    if n_clusters == 1:
        return clusters
    labels = AgglomerativeClustering(n_clusters=n_clusters, linkage="average").fit_predict(sample)
    clusters[in_sample] = labels
    if not in_sample.all():
        centers = np.zeros((n_clusters, sample.shape[1]), dtype=np.float64)
        np.add.at(centers, labels, sample)
        centers /= np.bincount(labels, minlength=n_clusters)[:, None]
        clusters[~in_sample], _ = assign_to_centers(x[rows[~in_sample]], centers.astype(np.float32))
    return clusters


def round_robin(clusters, budget, *, random_state=None):
    """Take ``budget`` items one cluster at a time, smallest cluster first, randomly within each.

    Parameters
    ----------
    clusters : ndarray of shape (n_items,), int
    budget : int, at most n_items

    Returns
    -------
    picked : ndarray of shape (budget,), int64, positions in ``clusters``
    """
    rng = check_random_state(random_state)
    ids, sizes = np.unique(clusters, return_counts=True)
    order = np.lexsort((rng.random_sample(ids.size), sizes))  # smallest cluster first, ties at random
    turn = np.empty(ids.size, dtype=np.int64)
    turn[order] = np.arange(ids.size)
    item_turn = turn[np.searchsorted(ids, clusters)]  # each item's cluster's place in a round
    # Items grouped by cluster in visiting order, randomly within a cluster...
    grouped = rng.permutation(clusters.size)
    grouped = grouped[np.argsort(item_turn[grouped], kind="stable")]
    # ...their rank inside the cluster is the round in which they are taken.
    counts = sizes[order]
    rank = np.arange(clusters.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return grouped[np.lexsort((item_turn[grouped], rank))][:budget].astype(np.int64)


def cluster_margin_select(probs, embeddings, labeled_mask, budget, *, margin_multiple=10, n_clusters=None,
                          max_hac_samples=HAC_MAX_SAMPLES, random_state=None, standardized=False):
    """Cluster-Margin: the ``margin_multiple * budget`` lowest-margin pool items, spread over clusters.

    1. Cluster the pool with average-linkage HAC (on a seeded sample of at most
       ``max_hac_samples`` items; the others join the nearest cluster centroid).
    2. Keep the ``margin_multiple * budget`` pool items with the smallest top-1 / top-2
       margin (all of the pool when that is larger).
    3. Visit the clusters of those items in ascending order of how many they hold,
       round-robin, taking one random item from each until ``budget`` are taken.

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)
    embeddings : ndarray, memmap or StandardizedView of shape (n_samples, n_features)
        Labeled and pool items together; standardised unless ``standardized``.
    labeled_mask : ndarray of shape (n_samples,), bool
    budget : int
        Between 1 and the pool size (otherwise ``ValueError``).
    margin_multiple : int
        ``k_m`` of the paper: candidates per item to select (default 10).
    n_clusters : int or None
        HAC clusters; None: ``budget`` (so a round of the round-robin can fill the batch),
        capped at the HAC sample size.
    max_hac_samples : int
        Items HAC is fitted on.
    random_state : int, RandomState or None
    standardized : bool
        The caller already standardised ``embeddings``.

    Returns
    -------
    rows : ndarray of shape (budget,), int64
        Rows (pool rows only), in round-robin order.

    Notes
    -----
    Cost: HAC O(m^2 * n_features) time and O(m^2) memory for the sample of m <=
    ``max_hac_samples`` items, plus O(n_pool * n_clusters * n_features) to assign the
    rest. The paper clusters the pool once and reuses the clusters across rounds; here
    each call clusters afresh (the call is stateless).

    References
    ----------
    Citovsky, G., DeSalvo, G., Gentile, C., Karydas, L., Rajagopalan, A., Rostamizadeh, A.
    and Kumar, S. (2021). Batch Active Learning at Scale. NeurIPS.
    """
    probs = check_probs(probs)
    embeddings = check_embeddings(embeddings, n_samples=probs.shape[0])
    labeled_mask, pool = check_pool(labeled_mask, probs.shape[0], budget)
    ClusterMarginOptions(margin_multiple=margin_multiple, n_clusters=n_clusters,  # checks them
                         max_hac_samples=max_hac_samples)
    rng = check_random_state(random_state)
    x = embeddings if standardized else StandardizedView(embeddings)
    clusters = hac_clusters(x, budget if n_clusters is None else n_clusters, pool, max_samples=max_hac_samples,
                            random_state=rng)
    n_cand = min(margin_multiple * budget, pool.size)
    cand = alf.select_top(alf.margin_scores(probs[pool]), n_cand, random_state=rng)
    return pool[cand[round_robin(clusters[cand], budget, random_state=rng)]]


@dataclass(frozen=True)
class ClusterMarginOptions(Options):
    """Options of ``cluster_margin`` (keyword arguments of :func:`cluster_margin_select`).

    margin_multiple : int, default=10
        Lowest-margin candidates = margin_multiple x budget.
    n_clusters : int or None, default=None
        HAC clusters (None: the budget).
    max_hac_samples : int, default=5000
        HAC runs on a sample this large; the rest join the nearest centroid.
    """

    margin_multiple: int = 10
    n_clusters: Optional[int] = None
    max_hac_samples: int = 5000

    def __post_init__(self):
        check_int(self.margin_multiple, "margin_multiple", low=1)
        if self.n_clusters is not None:
            check_int(self.n_clusters, "n_clusters", low=1)
        check_int(self.max_hac_samples, "max_hac_samples", low=2)


def cluster_margin_strategy(ctx, budget, random_state=None):
    """``cluster_margin`` behind the strategy contract; options: :class:`ClusterMarginOptions` (``params['cluster_margin']``)."""
    opts = ctx.options("cluster_margin", ClusterMarginOptions)
    return cluster_margin_select(ctx.probs, ctx.embeddings, ctx.labeled_mask, budget, random_state=random_state,
                                 **opts.as_dict())
