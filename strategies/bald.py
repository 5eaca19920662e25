"""BALD with Monte-Carlo dropout samples (Gal, Islam & Ghahramani 2017; Houlsby et al. 2011)."""
import numpy as np

import AL_functions as alf
from checks import check_pool, check_probs


def check_mc_probs(mc_probs, name="mc_probs", n_samples=None):
    """Validate Monte-Carlo class probabilities of shape (n_passes, n_samples, n_classes).

    Returns
    -------
    mc_probs : ndarray of shape (n_passes, n_samples, n_classes), float32
    """
    mc_probs = np.asarray(mc_probs)
    if mc_probs.ndim != 3 or 0 in mc_probs.shape:
        raise ValueError(f"{name} must be a non-empty 3-D array of shape (n_passes, n_samples, n_classes), "
                         f"got shape {mc_probs.shape}")
    if n_samples is not None and mc_probs.shape[1] != n_samples:
        raise ValueError(f"{name} covers {mc_probs.shape[1]} rows but {n_samples} were expected")
    t, n, c = mc_probs.shape
    return check_probs(mc_probs.reshape(t * n, c), name=name).reshape(t, n, c)


def bald_scores(mc_probs):
    """Mutual information between the prediction and the model weights, per item.

    ``H(mean_t p_t) - mean_t H(p_t)`` in nats: high when the stochastic passes are each
    confident but disagree with one another.

    Parameters
    ----------
    mc_probs : ndarray of shape (n_passes, n_samples, n_classes)
        Class probabilities from ``n_passes`` stochastic forward passes (dropout on).

    Returns
    -------
    scores : ndarray of shape (n_samples,), float64, in [0, log(n_classes)]
    """
    mc_probs = check_mc_probs(mc_probs)
    t, n, c = mc_probs.shape
    mean_entropy = alf.entropy_scores(mc_probs.reshape(t * n, c)).reshape(t, n).mean(axis=0, dtype=np.float64)
    entropy_of_mean = alf.entropy_scores(mc_probs.mean(axis=0, dtype=np.float64))
    # Entropy is concave, so the difference is >= 0; clip float rounding below zero.
    return np.maximum(entropy_of_mean.astype(np.float64) - mean_entropy, 0.0)


def bald_select(mc_probs, labeled_mask, budget, *, random_state=None):
    """The ``budget`` pool items of highest BALD score, best first, ties at random.

    Parameters
    ----------
    mc_probs : ndarray of shape (n_passes, n_samples, n_classes)
    labeled_mask : ndarray of shape (n_samples,), bool
    budget : int
        Between 1 and the pool size (otherwise ``ValueError``).
    random_state : int, RandomState or None
        Breaks ties.

    Returns
    -------
    rows : ndarray of shape (budget,), int64
        Rows (pool rows only), best first.

    Notes
    -----
    Cost O(n_passes * n_samples * n_classes).

    References
    ----------
    Gal, Y., Islam, R. and Ghahramani, Z. (2017). Deep Bayesian Active Learning with
    Image Data. ICML. Houlsby, N., Huszar, F., Ghahramani, Z. and Lengyel, M. (2011).
    Bayesian Active Learning for Classification and Preference Learning. arXiv:1112.5745.
    """
    mc_probs = check_mc_probs(mc_probs)
    labeled_mask, pool = check_pool(labeled_mask, mc_probs.shape[1], budget)
    scores = bald_scores(mc_probs[:, pool])
    return pool[alf.select_top(scores, budget, random_state=random_state)]


def bald_strategy(ctx, budget, random_state=None):
    """``bald`` behind the strategy contract: reads ``ctx.mc_probs`` (n_passes, n_samples, n_classes)."""
    mc_probs = ctx.mc_probs
    if mc_probs is None:
        raise ValueError("bald needs MC-dropout samples: the context has no mc_probs of shape "
                         "(n_passes, n_samples, n_classes); run inference with dropout on, or pick another strategy")
    mc_probs = check_mc_probs(mc_probs, n_samples=ctx.probs.shape[0])
    return bald_select(mc_probs, ctx.labeled_mask, budget, random_state=random_state)
