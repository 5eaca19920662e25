"""Subpools for large, imbalanced pools: AnchorAL, SEALS and a random baseline.

Instead of scoring every unlabeled item, a base strategy (entropy, margin, the
intersection, ...) runs on a small subpool of the items most relevant to the
labeled set. Each function returns row indices into ``embeddings`` (never a
labeled row), best first; a strategy ``<subpool>_<base>`` is the base strategy
restricted to those rows.

Pure functions: NumPy, scikit-learn and (through :func:`knn.knn_search`,
the project's one nearest-neighbour index) hnswlib. ``embeddings`` may be an
ndarray, a memory-mapped ``.npy`` or an :class:`knn.StandardizedView`;
the pool is read block by block, never copied whole.

References
----------
Lesci, P. and Vlachos, A. (2024). AnchorAL: Computationally Efficient Active
Learning for Large and Imbalanced Datasets. NAACL 2024.
Coleman, C. et al. (2022). Similarity Search for Efficient Active Learning and
Search of Rare Concepts (SEALS). AAAI 2022.
"""
import numpy as np
from sklearn.cluster import kmeans_plusplus
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext.utils import checks
from labelnext import knn

__all__ = ["anchoral_subpool", "seals_subpool", "random_subpool", "select_anchors"]


# --------------------------------------------------------------------------- helpers
def _check_pool(embeddings, labeled_mask):
    embeddings = checks.check_embeddings(embeddings)
    mask = checks.check_mask(labeled_mask, embeddings.shape[0])
    if not mask.any():
        raise ValueError("labeled_mask selects no items: the subpool is built around the labeled set, which is empty")
    if mask.all():
        raise checks.EmptyPoolError("labeled_mask selects every item: the pool is empty")
    return embeddings, mask


def _rows(embeddings, rows):
    """A lazy selection of rows (nothing is read): a sub-view, or an identity view over an array."""
    if isinstance(embeddings, knn.StandardizedView):
        return embeddings[rows]
    d = embeddings.shape[1]
    # mean 0 / std 1 is exact in float32, so this reads the original values.
    return knn.StandardizedView(embeddings, np.zeros(d, np.float32), np.ones(d, np.float32), rows=rows)


def _retrieve(embeddings, query_rows, pool_rows, k_neighbors, method, random_state):
    """Pool rows among the ``k_neighbors`` nearest (cosine) of some query row, best first.

    A retrieved row scores 1 - its mean cosine distance to the queries that retrieved it
    (AnchorAL's and SEALS's ranking); ``k_neighbors`` is clipped to the pool size.

    Returns
    -------
    rows : ndarray of int64, rows of ``pool_rows`` retrieved at least once, best first
    """
    k = min(k_neighbors, pool_rows.size)
    distances, neighbours = knn.knn_search(_rows(embeddings, query_rows), _rows(embeddings, pool_rows), k,
                                           metric="cosine", method=method, random_state=random_state)
    flat = neighbours.ravel()
    counts = np.bincount(flat, minlength=pool_rows.size)
    sums = np.bincount(flat, weights=distances.ravel().astype(np.float64), minlength=pool_rows.size)
    hit = np.flatnonzero(counts)
    scores = 1.0 - sums[hit] / counts[hit]
    order = alf.select_top(scores, hit.size, random_state=random_state)
    return pool_rows[hit[order]].astype(np.int64)


# --------------------------------------------------------------------------- anchors
def select_anchors(embeddings, labeled_mask, labels, num_anchors=10, *, random_state=None):
    """Up to ``num_anchors`` labeled rows per class, spread by k-means++ seeding.

    Seeding runs on the L2-normalised embeddings of each class's labeled items
    (the retrieval is cosine); a class with ``num_anchors`` items or fewer gives
    all of them; a class with no labeled item gives none.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
    labeled_mask : ndarray of shape (n_samples,), bool
    labels : ndarray of shape (n_samples,), int
        Class of each labeled row (unlabeled rows are ignored).
    num_anchors : int >= 1
    random_state : int, RandomState or None

    Returns
    -------
    anchors : ndarray of int64, rows of ``embeddings``, grouped by class (ascending)
    """
    embeddings, mask = _check_pool(embeddings, labeled_mask)
    checks.check_int(num_anchors, "num_anchors", low=1)
    labels = np.asarray(labels)
    if labels.shape != mask.shape or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape {mask.shape}, got {labels.dtype} {labels.shape}")
    labeled_rows = np.flatnonzero(mask)
    labeled_classes = labels[labeled_rows]
    if (labeled_classes < 0).any():
        bad = labeled_rows[labeled_classes < 0][0]
        raise ValueError(f"every labeled row needs a class >= 0 in labels; row {bad} is labeled but has label {labels[bad]}")
    rng = check_random_state(random_state)
    anchors = []
    for c in np.unique(labeled_classes):
        rows = labeled_rows[labeled_classes == c]
        if rows.size <= num_anchors:
            anchors.append(rows)
            continue
        x = knn.l2_normalize(np.asarray(embeddings[rows], dtype=np.float32))
        _, picked = kmeans_plusplus(x, num_anchors, random_state=rng)
        anchors.append(np.sort(rows[picked]))
    return np.concatenate(anchors).astype(np.int64)


# --------------------------------------------------------------------------- subpools
def anchoral_subpool(embeddings, labeled_mask, labels, *, num_anchors=10, k_neighbors=50, subpool_size=1000,
                     random_state=None, method="auto"):
    """AnchorAL: the unlabeled items closest to per-class anchors.

    1. Pick up to ``num_anchors`` labeled items per class (:func:`select_anchors`).
    2. Retrieve each anchor's ``k_neighbors`` nearest unlabeled items (cosine,
       :func:`knn.knn_search`; exact for small problems, HNSW above
       ``knn.EXACT_KNN_MAX_PAIRS`` anchor-by-pool pairs).
    3. Score each retrieved item by 1 - its mean cosine distance to the anchors
       that retrieved it, and keep the best ``subpool_size``.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
        Labeled and unlabeled items together (ndarray, memmap or StandardizedView).
    labeled_mask : ndarray of shape (n_samples,), bool
    labels : ndarray of shape (n_samples,), int
        Classes of the labeled rows (-1 or anything for unlabeled rows).
    num_anchors : int >= 1
        Anchors per class.
    k_neighbors : int >= 1
        Items retrieved per anchor; clipped to the pool size.
    subpool_size : int >= 1
        At most this many rows are returned (fewer when fewer were retrieved).
    random_state : int, RandomState or None
        Seeds the anchor choice, the HNSW graph and tie-breaking.
    method : {'auto', 'exact', 'hnsw'}
        Nearest-neighbour search (see :func:`knn.knn_search`).

    Returns
    -------
    rows : ndarray of shape (<= subpool_size,), int64
        Unlabeled rows of ``embeddings``, most similar to their anchors first.

    References
    ----------
    Lesci, P. and Vlachos, A. (2024). AnchorAL: Computationally Efficient Active
    Learning for Large and Imbalanced Datasets. NAACL 2024.
    """
    embeddings, mask = _check_pool(embeddings, labeled_mask)
    checks.check_int(num_anchors, "num_anchors", low=1)
    checks.check_int(k_neighbors, "k_neighbors", low=1)
    checks.check_int(subpool_size, "subpool_size", low=1)
    checks.check_choice(method, "method", knn.KNN_METHODS)
    rng = check_random_state(random_state)
    anchors = select_anchors(embeddings, mask, labels, num_anchors, random_state=rng)
    return _retrieve(embeddings, anchors, np.flatnonzero(~mask), k_neighbors, method, rng)[:subpool_size]


def seals_subpool(embeddings, labeled_mask, *, k_neighbors=50, random_state=None, method="auto"):
    """SEALS: the union of every labeled item's ``k_neighbors`` nearest unlabeled items.

    The subpool grows with the labeled set (about ``k_neighbors`` x labeled
    items, fewer where neighbourhoods overlap). Ranked like AnchorAL's: 1 - mean
    cosine distance to the labeled items that retrieved the row.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
    labeled_mask : ndarray of shape (n_samples,), bool
    k_neighbors : int >= 1
        Clipped to the pool size.
    random_state : int, RandomState or None
    method : {'auto', 'exact', 'hnsw'}

    Returns
    -------
    rows : ndarray of int64, unlabeled rows of ``embeddings``, best first

    References
    ----------
    Coleman, C. et al. (2022). Similarity Search for Efficient Active Learning and
    Search of Rare Concepts. AAAI 2022.
    """
    embeddings, mask = _check_pool(embeddings, labeled_mask)
    checks.check_int(k_neighbors, "k_neighbors", low=1)
    checks.check_choice(method, "method", knn.KNN_METHODS)
    rng = check_random_state(random_state)
    return _retrieve(embeddings, np.flatnonzero(mask), np.flatnonzero(~mask), k_neighbors, method, rng)


def random_subpool(labeled_mask, subpool_size, *, random_state=None):
    """A uniformly random subpool: ``subpool_size`` unlabeled rows (all of them when the pool is smaller).

    Parameters
    ----------
    labeled_mask : ndarray of shape (n_samples,), bool
    subpool_size : int >= 1
    random_state : int, RandomState or None

    Returns
    -------
    rows : ndarray of shape (min(subpool_size, n_pool),), int64, in random order
    """
    labeled_mask = np.asarray(labeled_mask)
    if labeled_mask.ndim != 1:
        raise ValueError(f"labeled_mask must be 1-D, got shape {labeled_mask.shape}")
    mask = checks.check_mask(labeled_mask, labeled_mask.shape[0])
    checks.check_int(subpool_size, "subpool_size", low=1)
    pool_rows = np.flatnonzero(~mask)
    if pool_rows.size == 0:
        raise checks.EmptyPoolError("labeled_mask selects every item: the pool is empty")
    rng = check_random_state(random_state)
    return rng.permutation(pool_rows)[:subpool_size].astype(np.int64)
