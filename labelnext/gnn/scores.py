"""Scores: one number per pool node from the GNN's (and the base model's) probabilities.

Pure functions on arrays; no model call and no selection inside. Higher = more worth
labeling.
"""
import numpy as np

from labelnext import heuristics as AL_functions
from labelnext.utils import checks
from labelnext import knn

from labelnext.gnn.options import SCORES


def entropy_uncertainty(probs):
    """Predictive entropy divided by log(c), so it lies in [0, 1] like the margin.

    Parameters
    ----------
    probs : ndarray of shape (n, c)

    Returns
    -------
    scores : ndarray of shape (n,) float64
    """
    probs = np.asarray(probs)
    return AL_functions.entropy_scores(probs).astype(np.float64) / np.log(probs.shape[1])


def disagreement_scores(gnn_probs, base_probs):
    """Jensen-Shannon divergence between GNN and base-model predictions, in [0, 1].

    Continuous rather than a 0/1 "argmax differs" flag, so it can rank a batch.

    Parameters
    ----------
    gnn_probs, base_probs : ndarray of shape (n, c)

    Returns
    -------
    scores : ndarray of shape (n,)
        JS divergence in bits (0 = identical, 1 = disjoint support).
    """
    p = np.clip(np.asarray(gnn_probs, dtype=np.float64), 1e-12, 1.0)
    q = np.clip(np.asarray(base_probs, dtype=np.float64), 1e-12, 1.0)
    m = 0.5 * (p + q)
    js = 0.5 * (p * np.log2(p / m)).sum(axis=1) + 0.5 * (q * np.log2(q / m)).sum(axis=1)
    return np.clip(js, 0.0, 1.0)


def mutual_information(mc_probs):
    """Epistemic uncertainty (BALD) from MC-dropout passes, divided by log(c).

    Parameters
    ----------
    mc_probs : ndarray of shape (passes, n, c)

    Returns
    -------
    scores : ndarray of shape (n,)
        H(mean p) - mean H(p), >= 0.

    References
    ----------
    Gal, Islam & Ghahramani, "Deep Bayesian Active Learning with Image Data", ICML 2017.
    """
    mean_entropy = np.mean([entropy_uncertainty(p) for p in mc_probs], axis=0)
    return np.maximum(entropy_uncertainty(np.mean(mc_probs, axis=0)) - mean_entropy, 0.0)


def hybrid_scores(uncertainty, distance, alpha=0.5):
    """``(1 - alpha) * uncertainty + alpha * distance`` with distance min-max scaled.

    Parameters
    ----------
    uncertainty : ndarray of shape (n,)
        GNN uncertainty in [0, 1].
    distance : ndarray of shape (n,)
        Distance of each pool node to its nearest labeled node.
    alpha : float in [0, 1]

    Returns
    -------
    scores : ndarray of shape (n,)
    """
    d = np.asarray(distance, dtype=np.float64)
    span = d.max() - d.min() if d.size else 0.0
    d = (d - d.min()) / span if span > 0 else np.zeros_like(d)
    return (1.0 - alpha) * np.asarray(uncertainty, dtype=np.float64) + alpha * d


def pool_scores(score, pool_probs, base_probs, *, mc_probs=None, features=None, pool_rows=None,
                labeled_rows=None, alpha=0.5, random_state=None):
    """One score per pool node; higher = more worth labeling.

    Parameters
    ----------
    score : {'hybrid', 'margin', 'entropy', 'disagreement', 'mc_dropout'}
    pool_probs : ndarray of shape (n_pool, c)
        GNN probabilities (dropout off).
    base_probs : ndarray of shape (n_pool, c)
        Base-model probabilities, for ``'disagreement'``.
    mc_probs : ndarray of shape (passes, n_pool, c), optional
        MC-dropout probabilities, for ``'mc_dropout'``.
    features : ndarray of shape (n, d), optional
        Standardised embeddings of all nodes, for ``'hybrid'``.
    pool_rows, labeled_rows : ndarray of int, optional
        Rows of ``features``, for ``'hybrid'``.
    alpha : float in [0, 1]
    random_state : int or None
        Seeds the nearest-labeled-node search (hnswlib for large inputs).

    Returns
    -------
    scores : ndarray of shape (n_pool,) float64
    """
    checks.check_choice(score, "score", SCORES)
    needs = {"hybrid": ("features", "pool_rows", "labeled_rows"), "mc_dropout": ("mc_probs",),
             "disagreement": ("base_probs",)}.get(score, ())
    given = {"features": features, "pool_rows": pool_rows, "labeled_rows": labeled_rows,
             "mc_probs": mc_probs, "base_probs": base_probs}
    missing = [name for name in needs if given[name] is None]
    if missing:
        raise ValueError(f"score={score!r} needs {', '.join(missing)}, got None")
    if score == "hybrid":
        normed = knn.l2_normalize(features)
        dist, _ = knn.knn_search(normed[pool_rows], normed[labeled_rows], 1, metric="cosine",
                                 random_state=random_state)
        return hybrid_scores(entropy_uncertainty(pool_probs), dist[:, 0], alpha)
    if score == "margin":
        return AL_functions.margin_scores(pool_probs).astype(np.float64)
    if score == "entropy":
        return entropy_uncertainty(pool_probs)
    if score == "disagreement":
        return disagreement_scores(pool_probs, base_probs)
    return mutual_information(mc_probs)
