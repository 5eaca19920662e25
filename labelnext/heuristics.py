"""Pure active-learning heuristics: arrays in, scores / masks / indices out.

Plus :func:`analyze`, the one place the three analyses (uncertainty, diversity,
novelty) and their intersection run in sequence; the analyzer, the ``intersection``
strategy, the benchmarks and the tests all call it. Argument checks live in
:mod:`checks`, standardisation and nearest neighbours in :mod:`knn`.

No I/O, no models, no global random state: every stochastic function takes
``random_state`` (int, ``RandomState`` or None) and normalises it with
:func:`sklearn.utils.check_random_state`. Score convention: higher = more worth
labeling.
"""
import time

import numpy as np
from scipy.stats import rankdata
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.utils import check_random_state

from labelnext.utils.checks import EmptyPoolError, check_choice, check_embeddings, check_int, check_mask, check_percentile, check_probs

# Names, choices and the one set of defaults live in defaults.py (light: the CLIs build flags from it).
from labelnext.utils.defaults import ANALYSES, ANALYSIS_DEFAULTS, KMEANS_ALGORITHMS, UNCERTAINTY_METHODS  # noqa: F401
from labelnext.knn import StandardizedView, assign_to_centers, knn_search, standardize

# Full KMeans above this many rows is slow and memory-hungry; MiniBatchKMeans fits a sample.
KMEANS_FULL_MAX_ROWS = 20_000
# 'sampled' KMeans: k-means++ seeding costs ~rows x clusters x log(clusters) distances and dominated
# the fit (20,000 rows x 500 clusters: 77 s of seeding against 2 s of Lloyd iterations on a loaded
# 2-core machine); above this many row-cluster pairs the centres start at random rows.
KMEANSPP_MAX_PAIRS = 1_000_000


def rank_normalize(scores):
    """Map scores to their average rank in [0, 1] (ties share a rank), so scores on
    different scales can be combined."""
    scores = np.asarray(scores)
    if scores.size <= 1:
        return np.ones(scores.shape, dtype=np.float64)
    return (rankdata(scores, method="average") - 1.0) / (scores.size - 1)


def percentile_mask(scores, percentile):
    """Items whose score is at or above the given percentile of ``scores``."""
    scores = np.asarray(scores)
    if scores.size == 0:
        return np.zeros(0, dtype=bool)
    threshold = np.percentile(scores, check_percentile(percentile, "percentile"))
    return scores >= threshold


def select_top(scores, k, *, random_state=None):
    """Indices of the ``k`` highest scores, best first, ties broken at random.

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
    k : int
        Number to select. Raises ``ValueError`` when ``k`` exceeds ``n_samples``
        (an oversized budget is a caller's mistake, not something to clip silently).
    random_state : int, RandomState or None

    Returns
    -------
    indices : ndarray of shape (k,), int64
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    if n == 0 and k > 0:
        raise EmptyPoolError("cannot select from an empty pool")
    check_int(k, "k (budget)", low=0, high=n)
    rng = check_random_state(random_state)
    tiebreak = rng.random_sample(n)
    if k < n // 4:
        # Partial selection first: sorting 1M scores for a budget of 100 is wasted work.
        cand = np.argpartition(-scores, k)[: k]
        kth = scores[cand].min() if k else np.inf
        cand = np.flatnonzero(scores >= kth)
    else:
        cand = np.arange(n)
    order = np.lexsort((tiebreak[cand], -scores[cand]))
    return cand[order[:k]].astype(np.int64)


# --------------------------------------------------------------------------- uncertainty
def entropy_scores(probs):
    """Shannon entropy of each row (nats).

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_samples,)
    """
    p = np.clip(np.asarray(probs, dtype=np.float32), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def margin_scores(probs):
    """1 - (top-1 minus top-2 probability): a small margin is a high score."""
    p = np.asarray(probs, dtype=np.float32)
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def least_confidence_scores(probs):
    """1 - the largest class probability."""
    return 1.0 - np.asarray(probs, dtype=np.float32).max(axis=1)


_SCORERS = {"entropy": entropy_scores, "margin": margin_scores, "least_confidence": least_confidence_scores}


def uncertainty_scores(probs, method="entropy"):
    """Scores for one of ``entropy``, ``margin``, ``least_confidence``, ``combined``.

    ``combined`` is the mean of the rank-normalised entropy and margin scores.
    """
    check_choice(method, "method", UNCERTAINTY_METHODS)
    if method == "combined":
        return combined_score(entropy_scores(probs), margin_scores(probs))
    return _SCORERS[method](probs)


def uncertainty_selection(probs, threshold_percentile=50, method="combined"):
    """Keep the pool items above a percentile of uncertainty.

    For ``combined``, an item is kept when it is above the percentile on entropy
    OR on margin.

    Returns
    -------
    mask : ndarray of shape (n_samples,), bool
    scores : ndarray of shape (n_samples,)
    """
    probs = check_probs(probs)
    check_percentile(threshold_percentile, "threshold_percentile")
    check_choice(method, "method", UNCERTAINTY_METHODS)
    if method == "combined":
        return combined_uncertainty(entropy_scores(probs), margin_scores(probs), threshold_percentile)
    scores = _SCORERS[method](probs)
    return percentile_mask(scores, threshold_percentile), scores


def combined_uncertainty(entropy, margin, threshold_percentile):
    """``method='combined'`` from the two scores: kept when above the percentile on entropy OR
    on margin, scored by the mean of their rank-normalised values (:func:`combined_score`).

    Returns
    -------
    mask : ndarray of shape (n_samples,), bool
    scores : ndarray of shape (n_samples,)
    """
    mask = percentile_mask(entropy, threshold_percentile) | percentile_mask(margin, threshold_percentile)
    return mask, combined_score(entropy, margin)


# --------------------------------------------------------------------------- diversity
def fit_kmeans(embeddings, n_clusters, *, algorithm="auto", random_state=None, sample_size=100_000,
               sample_weight=None):
    """KMeans centres: full KMeans for small pools, MiniBatchKMeans on a sample for large ones.

    Parameters
    ----------
    embeddings : ndarray, memmap or StandardizedView of shape (n_samples, n_features)
    n_clusters : int, at most n_samples
    algorithm : {'auto', 'kmeans', 'minibatch', 'sampled'}
        ``auto``: ``kmeans`` up to :data:`KMEANS_FULL_MAX_ROWS` rows, else ``minibatch``
        (on a sample of ``sample_size``). ``sampled``: Lloyd's KMeans on a seeded sample of
        ``max(sample_size, 4 * n_clusters)`` rows, seeded by k-means++ while rows x clusters
        <= :data:`KMEANSPP_MAX_PAIRS` and by random rows above (k-means++ seeding dominates
        the cost with hundreds of clusters: 176 s for 500 clusters on 100k rows).
    sample_weight : ndarray of shape (n_samples,), optional
        Positive weights: items pull their centre in proportion.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), float32
    algorithm : str
        Which variant ran (the far-from-centroid set depends on it).
    """
    check_choice(algorithm, "algorithm", KMEANS_ALGORITHMS)
    n = embeddings.shape[0]
    check_int(n_clusters, "n_clusters", low=1, high=n)
    rng = check_random_state(random_state)
    if algorithm == "auto":
        algorithm = "kmeans" if n <= KMEANS_FULL_MAX_ROWS else "minibatch"
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if algorithm == "kmeans":
        model = KMeans(n_clusters=n_clusters, n_init=3, random_state=rng)
        model.fit(np.asarray(embeddings, dtype=np.float32), sample_weight=weights)
        return model.cluster_centers_.astype(np.float32), algorithm
    size = max(sample_size, 4 * n_clusters) if algorithm == "sampled" else sample_size
    rows = np.sort(rng.choice(n, size, replace=False)) if n > size else np.arange(n)
    sample = np.asarray(embeddings[rows] if n > size else embeddings, dtype=np.float32)
    weights = None if weights is None else weights[rows]
    if algorithm == "sampled":
        init = "k-means++" if rows.size * n_clusters <= KMEANSPP_MAX_PAIRS else "random"
        model = KMeans(n_clusters=n_clusters, init=init, n_init=3, random_state=rng)
    else:
        model = MiniBatchKMeans(n_clusters=n_clusters, batch_size=4096, n_init=3, max_no_improvement=20,
                                random_state=rng)
    model.fit(sample, sample_weight=weights)
    return model.cluster_centers_.astype(np.float32), algorithm


def diversity_selection(embeddings, n_clusters=20, distance_percentile=75, *, algorithm="auto", random_state=None, standardized=False):
    """KMeans on standardised embeddings; keep the items far from their centroid.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
    n_clusters : int, at most n_samples
    distance_percentile : float in [0, 100]
        Items at or above this percentile of distance-to-centroid are kept.
    standardized : bool
        Skip standardisation when the caller already did it.

    Returns
    -------
    dict with ``mask`` (n_samples,) bool, ``scores`` (distance to own centroid),
    ``clusters`` (n_samples,) int64, ``representatives`` (n_clusters,) row of the
    item closest to each centroid (-1 for an empty cluster), ``algorithm``.
    """
    embeddings = check_embeddings(embeddings)
    check_int(n_clusters, "n_clusters", low=1, high=embeddings.shape[0])
    check_percentile(distance_percentile, "distance_percentile")
    x = embeddings if standardized else standardize(embeddings)
    centers, algo = fit_kmeans(x, n_clusters, algorithm=algorithm, random_state=random_state)
    clusters, dist = assign_to_centers(x, centers)
    reps = np.full(n_clusters, -1, dtype=np.int64)
    order = np.lexsort((dist, clusters))
    first = np.r_[True, clusters[order][1:] != clusters[order][:-1]]
    reps[clusters[order][first]] = order[first]
    return {
        "mask": percentile_mask(dist, distance_percentile),
        "scores": dist,
        "clusters": clusters,
        "representatives": reps,
        "algorithm": algo,
    }


# --------------------------------------------------------------------------- novelty
def novelty_scores(pool_embeddings, labeled_embeddings, k_neighbors=5, *, method="auto", random_state=None):
    """Mean distance from each pool item to its ``k_neighbors`` nearest labeled items.

    Inputs are expected on a common (standardised) scale.

    Returns
    -------
    scores : ndarray of shape (n_pool,), float32
    """
    if labeled_embeddings.shape[0] == 0:
        raise ValueError("the labeled set is empty: novelty needs at least one labeled item")
    check_int(k_neighbors, "k_neighbors", low=1, high=labeled_embeddings.shape[0])
    dist, _ = knn_search(pool_embeddings, labeled_embeddings, k_neighbors, method=method, random_state=random_state)
    return dist.mean(axis=1)


def novelty_selection(embeddings, labeled_mask, k_neighbors=5, novelty_percentile=75, *, method="auto", random_state=None, standardized=False):
    """Keep the pool items farthest from the labeled set.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features)
        Labeled and pool items together.
    labeled_mask : ndarray of shape (n_samples,), bool

    Returns
    -------
    mask : ndarray of shape (n_pool,), bool, over the rows where ``~labeled_mask``
    scores : ndarray of shape (n_pool,)
    """
    embeddings = check_embeddings(embeddings)
    labeled_mask = check_mask(labeled_mask, embeddings.shape[0])
    if not labeled_mask.any():
        raise ValueError("labeled_mask selects no items: the labeled set is empty")
    if labeled_mask.all():
        raise EmptyPoolError("labeled_mask selects every item: the pool is empty")
    check_int(k_neighbors, "k_neighbors", low=1, high=int(labeled_mask.sum()))
    check_percentile(novelty_percentile, "novelty_percentile")
    x = embeddings if standardized else standardize(embeddings)
    scores = novelty_scores(x[~labeled_mask], x[labeled_mask], k_neighbors, method=method, random_state=random_state)
    return percentile_mask(scores, novelty_percentile), scores


# --------------------------------------------------------------------------- intersection
def combined_score(*scores):
    """Mean of rank-normalised scores: one ranking from scores on different scales."""
    return np.mean([rank_normalize(s) for s in scores], axis=0)


def intersection_selection(masks, scores, budget=None, *, random_state=None):
    """Intersect the analyses' masks and rank by the combined score.

    Parameters
    ----------
    masks : dict of str -> ndarray of shape (n_pool,), bool
    scores : dict of str -> ndarray of shape (n_pool,)
        Same keys as ``masks``.
    budget : int or None
        None returns the intersection only. Otherwise exactly ``budget`` items:
        the ranked intersection, then (when it is smaller) the rest of the pool
        by combined rank. A budget above the pool size raises ``ValueError``.

    Returns
    -------
    selected : ndarray of shape (n_selected,), int64, pool rows best first
    info : dict
        ``n_intersection``, ``n_selected``, ``n_filled``, ``filled``,
        ``counts`` per analysis, ``pairwise`` overlaps, ``combined`` scores.
    """
    if not masks:
        raise ValueError("masks is empty: run at least one analysis before the intersection")
    if set(masks) != set(scores):
        raise ValueError(f"masks and scores must have the same keys, got {sorted(masks)} and {sorted(scores)}")
    names = list(masks)
    n = len(masks[names[0]])
    for name in names:
        if len(masks[name]) != n or len(scores[name]) != n:
            raise ValueError(f"analysis {name!r} covers {len(masks[name])} items but {names[0]!r} covers {n}: run them on the same pool")
    if budget is not None:
        check_int(budget, "budget", low=1, high=n)
    both = np.logical_and.reduce([np.asarray(masks[m], dtype=bool) for m in names])
    combined = combined_score(*(scores[m] for m in names))
    rng = check_random_state(random_state)
    tiebreak = rng.random_sample(n)
    # Rank: intersection first, then by combined score, ties at random.
    order = np.lexsort((tiebreak, -combined, ~both))
    n_inter = int(both.sum())
    n_sel = n_inter if budget is None else budget
    selected = order[:n_sel].astype(np.int64)
    pairwise = {
        f"{a}&{b}": int(np.logical_and(masks[a], masks[b]).sum())
        for i, a in enumerate(names) for b in names[i + 1:]
    }
    info = {
        "n_pool": n,
        "n_intersection": n_inter,
        "n_selected": int(n_sel),
        "n_filled": max(0, int(n_sel) - n_inter),
        "filled": int(n_sel) > n_inter,
        "counts": {m: int(np.asarray(masks[m]).sum()) for m in names},
        "pairwise": pairwise,
        "combined": combined,
    }
    return selected, info


# --------------------------------------------------------------------------- class balance
def class_counts(labels, n_classes):
    """Counts per class of the known labels (negative labels are unknown and skipped)."""
    labels = np.asarray(labels, dtype=np.int64)
    return np.bincount(labels[labels >= 0], minlength=n_classes)[:n_classes]


def class_balance(labels, n_classes, target_per_class):
    """Per-class counts of a selection against a target.

    Returns
    -------
    dict with ``counts``, ``shortfall`` (per class, >= 0) and ``met`` (bool).
    """
    check_int(target_per_class, "target_per_class", low=1)
    counts = class_counts(labels, n_classes)
    shortfall = np.maximum(target_per_class - counts, 0)
    return {"counts": counts.tolist(), "shortfall": shortfall.tolist(), "target_per_class": int(target_per_class), "met": bool((shortfall == 0).all())}


def balanced_pick(ranked, labels, n_classes, target_per_class):
    """Walk a ranked selection and keep at most ``target_per_class`` items per class.

    Parameters
    ----------
    ranked : ndarray of shape (n,), int
        Candidate ids, best first.
    labels : ndarray of shape (n,), int
        Class of each candidate (negative = unknown, skipped).

    Returns
    -------
    picked : ndarray of int64, a subsequence of ``ranked`` in the same order
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if ranked.shape != labels.shape:
        raise ValueError(f"ranked and labels must have the same shape, got {ranked.shape} and {labels.shape}")
    check_int(target_per_class, "target_per_class", low=1)
    taken = np.zeros(n_classes, dtype=np.int64)
    keep = np.zeros(ranked.shape[0], dtype=bool)
    for i, c in enumerate(labels):
        if 0 <= c < n_classes and taken[c] < target_per_class:
            taken[c] += 1
            keep[i] = True
    return ranked[keep]


# --------------------------------------------------------------------------- the three analyses
def analysis_params(params=None):
    """Per-analysis options merged over :data:`ANALYSIS_DEFAULTS`.

    Parameters
    ----------
    params : dict of str -> dict, optional
        E.g. ``{'diversity': {'n_clusters': 10}}``. Unknown analyses or options are refused.

    Returns
    -------
    dict of str -> dict, one entry per analysis in :data:`ANALYSES`
    """
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of analysis name -> options, got {type(params).__name__}")
    unknown = set(params) - set(ANALYSES)
    if unknown:
        raise ValueError(f"params has unknown analyses {sorted(unknown)}; supported are {list(ANALYSES)}")
    merged = {}
    for name in ANALYSES:
        given = dict(params.get(name) or {})
        bad = set(given) - set(ANALYSIS_DEFAULTS[name])
        if bad:
            raise ValueError(f"{name} options {sorted(bad)} are unknown; supported are {sorted(ANALYSIS_DEFAULTS[name])}")
        merged[name] = {**ANALYSIS_DEFAULTS[name], **given}
    return merged


def run_analysis(name, probs, x, labeled_mask, params, *, random_state=None):
    """One analysis over the pool rows (``~labeled_mask``).

    Parameters
    ----------
    name : {'uncertainty', 'diversity', 'novelty'}
    probs : ndarray of shape (n_samples, n_classes)
    x : ndarray or StandardizedView of shape (n_samples, n_features)
        Standardised embeddings of labeled and pool items together.
    labeled_mask : ndarray of shape (n_samples,), bool
    params : dict
        That analysis' options (see :data:`ANALYSIS_DEFAULTS`).

    Returns
    -------
    dict with ``mask`` and ``scores`` of shape (n_pool,), the ``params`` that ran
    and, for diversity, ``clusters`` and ``representatives`` (pool rows).
    """
    check_choice(name, "analysis", ANALYSES)
    pool = ~labeled_mask
    if name == "uncertainty":
        mask, scores = uncertainty_selection(probs[pool], params["threshold_percentile"], params["method"])
        return {"mask": mask, "scores": scores, "params": dict(params)}
    if name == "diversity":
        res = diversity_selection(x[pool], params["n_clusters"], params["distance_percentile"],
                                  algorithm=params["algorithm"], random_state=random_state, standardized=True)
        return {"mask": res["mask"], "scores": res["scores"], "clusters": res["clusters"],
                "representatives": res["representatives"], "params": dict(params, algorithm=res["algorithm"])}
    mask, scores = novelty_selection(x, labeled_mask, params["k_neighbors"], params["novelty_percentile"],
                                     method=params["method"], random_state=random_state, standardized=True)
    return {"mask": mask, "scores": scores, "params": dict(params)}


def analyze(probs, embeddings, labeled_mask, params=None, budget=None, *, random_state=None, standardized=False):
    """Uncertainty, diversity and novelty over the pool, then their intersection.

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)
    embeddings : ndarray, memmap or StandardizedView of shape (n_samples, n_features)
        Labeled and pool items together; standardised lazily unless ``standardized``.
    labeled_mask : ndarray of shape (n_samples,), bool
        The pool is ``~labeled_mask``.
    params : dict of str -> dict, optional
        Per-analysis options over :data:`ANALYSIS_DEFAULTS` (see :func:`analysis_params`).
    budget : int or None
        Passed to :func:`intersection_selection` (None: the intersection only).
    random_state : int or None
        The same seed is given to every stochastic step, as the analyzer does.

    Returns
    -------
    dict with one entry per analysis (see :func:`run_analysis`; each with ``seconds``)
    and ``intersection``: ``{'rows': pool rows best first, 'info': ...}``.
    """
    probs = check_probs(probs)
    labeled_mask = check_mask(labeled_mask, probs.shape[0])
    params = analysis_params(params)
    x = embeddings if standardized else StandardizedView(check_embeddings(embeddings, n_samples=probs.shape[0]))
    results = {}
    for name in ANALYSES:
        t = time.perf_counter()
        results[name] = run_analysis(name, probs, x, labeled_mask, params[name], random_state=random_state)
        results[name]["seconds"] = time.perf_counter() - t
    rows, info = intersection_selection({n: results[n]["mask"] for n in ANALYSES},
                                        {n: results[n]["scores"] for n in ANALYSES}, budget, random_state=random_state)
    results["intersection"] = {"rows": rows, "info": info}
    return results
