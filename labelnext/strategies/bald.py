"""BALD with Monte-Carlo dropout samples (Gal, Islam & Ghahramani 2017; Houlsby et al. 2011).

The samples come from the user (``ctx.mc_probs``, e.g. ``from_arrays(..., mc_probs=)``) or,
for a model whose only stochastic layer after the ``embedding`` is the Dropout in front of
its softmax head (every ``backbones.build_model`` model), from :func:`mc_dropout_probs`:
those passes need the embeddings, the head and the rate, not another trip through the network.
"""
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext.utils.checks import check_embeddings, check_float, check_int, check_pool, check_probs
from labelnext.strategies.base import Options, softmax_head

# Rows per block of mc_dropout_probs: a pass over a block holds a few block x n_features
# float32 arrays (the rows, the uniforms, the masked rows), 16 MB each at 4,096 x 1,024,
# whatever the pool size.
MC_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class BaldOptions(Options):
    """Options of ``bald``.

    n_passes : int >= 2, default=20
        MC-dropout passes computed from the head when the context has no ``mc_probs``
        (ignored when it has them: the user's passes are used as given).
    """

    n_passes: int = 20

    def __post_init__(self):
        check_int(self.n_passes, "n_passes", low=2)


def mc_dropout_probs(embeddings, head, rate, n_passes=20, *, block_rows=MC_BLOCK_ROWS, random_state=None):
    """Class probabilities of ``n_passes`` MC-dropout passes through a Dropout + softmax head.

    Each pass keeps every embedding entry with probability ``1 - rate`` (an independent
    Bernoulli draw per entry, per pass), scales the kept ones by ``1 / (1 - rate)`` as
    Keras' ``Dropout(training=True)`` does, and applies ``softmax(masked @ W + b)``. For a
    model whose layers after the ``embedding`` are that Dropout and the softmax Dense, this
    is exactly the distribution of the model's dropout-on forward passes.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
        Ndarray or memmap; read ``block_rows`` rows at a time, each block once.
    head : tuple (weights of shape (n_features, n_classes), bias of shape (n_classes,))
    rate : float in [0, 1)
        The Dropout rate; 0 makes every pass the deterministic probabilities.
    n_passes : int >= 1
    block_rows : int >= 1
        Rows per block; the result does not depend on it.
    random_state : int, RandomState or None
        Draws one seed per pass; same seed, same passes.

    Returns
    -------
    mc_probs : ndarray of shape (n_passes, n_samples, n_classes), float32

    Notes
    -----
    Cost O(n_passes * n_samples * n_features * n_classes); memory beyond the result:
    ``block_rows * n_features`` per pass in flight.

    References
    ----------
    Gal, Y. and Ghahramani, Z. (2016). Dropout as a Bayesian Approximation: Representing
    Model Uncertainty in Deep Learning. ICML. Gal, Y., Islam, R. and Ghahramani, Z. (2017).
    Deep Bayesian Active Learning with Image Data. ICML.
    """
    embeddings = check_embeddings(embeddings)
    rate = check_float(rate, "rate", 0.0, 1.0, high_open=True)
    n_passes = check_int(n_passes, "n_passes")
    block_rows = check_int(block_rows, "block_rows")
    weights, bias = (np.asarray(a, dtype=np.float32) for a in head)
    n, d = embeddings.shape
    if weights.ndim != 2 or weights.shape[0] != d or bias.shape != (weights.shape[1],):
        raise ValueError(f"head must be (weights of shape ({d}, n_classes), bias of shape (n_classes,)), "
                         f"got shapes {weights.shape} and {bias.shape}")
    rng = check_random_state(random_state)
    # One generator per pass, advanced block after block: a pass's masks are the same
    # stream of draws whatever block_rows is, and each block of embeddings is read once.
    # PCG64's float32 uniforms (24-bit, as Keras draws its masks) cost 2.4x less than
    # RandomState's float64 ones, and the draws are most of the work.
    passes = [np.random.default_rng(s) for s in rng.randint(0, 2**31 - 1, size=n_passes)]
    out = np.empty((n_passes, n, weights.shape[1]), dtype=np.float32)
    keep = np.float32(1.0 - rate)
    for start in range(0, n, block_rows):
        x = np.asarray(embeddings[start:start + block_rows], dtype=np.float32) / keep
        for t, pass_rng in enumerate(passes):
            masked = x * (pass_rng.random(x.shape, dtype=np.float32) < keep)
            out[t, start:start + len(x)] = softmax_head(masked, weights, bias, dtype=np.float32)
    return out


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
    """``bald`` behind the strategy contract: reads ``ctx.mc_probs`` (n_passes, n_samples, n_classes)
    or, when there are none, computes :class:`BaldOptions` ``n_passes`` of them with
    :func:`mc_dropout_probs` from ``ctx.head`` and ``ctx.dropout_rate`` (seeded by ``random_state``)."""
    rng = check_random_state(random_state)
    mc_probs = ctx.mc_probs
    if mc_probs is None:
        if ctx.head is None or ctx.dropout_rate is None:
            raise ValueError("bald needs MC-dropout samples: the context has no mc_probs of shape (n_passes, "
                             "n_samples, n_classes) and no softmax head with the rate of the Dropout in front of it "
                             "(head and dropout_rate); pass mc_probs, or pick another strategy")
        opts = ctx.options("bald", BaldOptions)
        mc_probs = mc_dropout_probs(ctx.embeddings, ctx.head, ctx.dropout_rate, opts.n_passes, random_state=rng)
    mc_probs = check_mc_probs(mc_probs, n_samples=ctx.probs.shape[0])
    return bald_select(mc_probs, ctx.labeled_mask, budget, random_state=rng)
