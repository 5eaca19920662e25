"""BADGE: k-means++ seeding on last-layer gradient embeddings, never materialised (Ash et al. 2020)."""
import numpy as np
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext.utils.checks import check_embeddings, check_int, check_pool, check_probs


def _gradient_factors(probs, embeddings):
    """The two factors of the gradient embedding g_i = (p_i - onehot(argmax p_i)) (x) h_i.

    ``h`` is divided by one global scale (its root-mean-square entry), not standardised
    per feature: a single factor leaves every ratio of distances, and so the k-means++
    sampling, unchanged, while keeping untrained embeddings (~1e-11) away from underflow.

    Returns
    -------
    q : ndarray of shape (n, n_classes), float64
    h : ndarray of shape (n, n_features), float32
    sq_norms : ndarray of shape (n,), float64, ||g_i||^2 = ||q_i||^2 ||h_i||^2
    """
    q = np.asarray(probs, dtype=np.float64).copy()
    q[np.arange(q.shape[0]), q.argmax(axis=1)] -= 1.0
    h = np.array(embeddings, dtype=np.float32)
    scale = np.sqrt(np.einsum("ij,ij->", h, h, dtype=np.float64) / max(h.size, 1))
    if scale > 0:
        h /= scale
    h_sq = np.einsum("ij,ij->i", h, h, dtype=np.float64)
    sq_norms = np.einsum("ij,ij->i", q, q) * h_sq
    return q, h, sq_norms


def _sq_distances_to(q, h, sq_norms, c):
    """||g_i - g_c||^2 for every i from <g_i, g_c> = <q_i, q_c> <h_i, h_c>: O(n (C + d))."""
    inner = (q @ q[c]) * (h @ h[c]).astype(np.float64)
    return np.maximum(sq_norms + sq_norms[c] - 2.0 * inner, 0.0)


def badge_sq_distances(probs, embeddings, center):
    """Squared distances in gradient-embedding space from every row to row ``center``.

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)
    embeddings : ndarray of shape (n_samples, n_features)
    center : int

    Returns
    -------
    sq_dist : ndarray of shape (n_samples,), float64
        ``||g_i - g_center||^2`` with ``g`` as in :func:`badge_select` (embeddings divided
        by their global root-mean-square entry).
    """
    probs = check_probs(probs)
    embeddings = check_embeddings(embeddings, n_samples=probs.shape[0])
    check_int(center, "center", low=0, high=probs.shape[0] - 1)
    return _sq_distances_to(*_gradient_factors(probs, embeddings), center)


def badge_select(probs, embeddings, labeled_mask, budget, *, random_state=None):
    """BADGE: k-means++ seeding over the pool's gradient embeddings.

    With ``p_i`` the predicted probabilities, ``y_i`` the one-hot of the predicted class
    and ``h_i`` the embedding, the last-layer gradient embedding is
    ``g_i = (p_i - y_i) (x) h_i`` (n_classes x n_features). It is never built:
    ``<g_i, g_j> = <p_i - y_i, p_j - y_j> <h_i, h_j>``, so the squared distance of every
    pool item to a new center costs two small matrix-vector products. The first center is
    the item of largest ``||g||`` (most uncertain x largest embedding); each next one is
    drawn with probability proportional to its squared distance to the nearest center.

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)
    embeddings : ndarray or memmap of shape (n_samples, n_features)
        Penultimate-layer embeddings of the same rows (used as they are, up to one global
        scale; see Notes).
    labeled_mask : ndarray of shape (n_samples,), bool
    budget : int
        Between 1 and the pool size (otherwise ``ValueError``).
    random_state : int, RandomState or None

    Returns
    -------
    rows : ndarray of shape (budget,), int64
        Rows (pool rows only), in the order they were picked.

    Notes
    -----
    Cost O(n_pool * budget * (n_classes + n_features)); memory: the pool's embeddings
    (n_pool x n_features float32). The embeddings are not standardised per feature: that
    would change the gradient's geometry; one global scale factor (root-mean-square
    entry) changes no ratio of distances. When every remaining item coincides with a
    center, the rest are drawn uniformly.

    References
    ----------
    Ash, J. T., Zhang, C., Krishnamurthy, A., Langford, J. and Agarwal, A. (2020). Deep
    Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds. ICLR.
    """
    probs = check_probs(probs)
    embeddings = check_embeddings(embeddings, n_samples=probs.shape[0])
    labeled_mask, pool = check_pool(labeled_mask, probs.shape[0], budget)
    rng = check_random_state(random_state)
    q, h, sq_norms = _gradient_factors(probs[pool], embeddings[pool])
    picked = np.empty(budget, dtype=np.int64)
    picked[0] = alf.select_top(sq_norms, 1, random_state=rng)[0]
    d2 = _sq_distances_to(q, h, sq_norms, picked[0])
    d2[picked[0]] = 0.0
    for t in range(1, budget):
        total = d2.sum()
        if total > 0:
            c = int(np.searchsorted(np.cumsum(d2), rng.random_sample() * total, side="right"))
            c = min(c, pool.size - 1)
        else:
            c = -1
        if total <= 0 or d2[c] <= 0:
            # Every remaining item coincides with a center: the rest are drawn uniformly.
            taken = np.zeros(pool.size, dtype=bool)
            taken[picked[:t]] = True
            picked[t:] = rng.choice(np.flatnonzero(~taken), budget - t, replace=False)
            break
        picked[t] = c
        np.minimum(d2, _sq_distances_to(q, h, sq_norms, c), out=d2)
        d2[c] = 0.0
    return pool[picked]


def badge_strategy(ctx, budget, random_state=None):
    """``badge`` behind the strategy contract; options: ``ctx.params['badge']``
    (keyword arguments of :func:`badge_select`)."""
    return badge_select(ctx.probs, ctx.embeddings, ctx.labeled_mask, budget, random_state=random_state)
