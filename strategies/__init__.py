"""Selection strategies behind one signature, for the benchmark and ``analyzer.select``.

Every strategy is ``fn(ctx, budget, random_state) -> rows``: ``ctx`` is a
:class:`SelectionContext` (probabilities and embeddings of every row, the labeled
mask, the labels known so far), and ``rows`` are exactly ``budget`` unique row
numbers of those arrays, none of them labeled. :func:`select` checks that contract
for every call, so a strategy cannot silently return fewer, duplicated or
already-labeled items.

Names
-----
``random``, ``entropy``, ``margin``, ``least_confidence``, ``intersection`` (the
analyzer's uncertainty AND diversity AND novelty, filled to the budget by combined
rank), ``uncertainty_clustering``, ``gnn`` (GraphSAGE sidecar, hybrid score),
``modal_entropy`` and ``modal_ranked_batch`` (modAL's own query strategies: a peer
baseline). A composite name ``<subpool>_<strategy>`` (``anchoral_entropy``,
``seals_margin``, ``randsub_entropy``) runs ``<strategy>`` on the subpool that
``<subpool>`` retrieves (see ``anchoral.py``).

An oversized budget raises ``ValueError`` (never clipped): a benchmark that asked
for 25 labels and got 20 would compare unequal budgets.
"""
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.utils import check_random_state

import AL_functions as alf
import checks
import knn

# modAL's ranked batch mode computes pool x (labeled + chosen) distances once per chosen
# item: O(pool x budget x labeled). Measured 158 s for 1,000 items on a 10k pool (DESIGN.md);
# above this many pool rows it runs on a seeded random sample of the pool.
MODAL_RANKED_MAX_POOL = 10_000


@dataclass
class SelectionContext:
    """What a strategy may look at: model outputs for every row and the labels revealed so far.

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)
        Base-model class probabilities, labeled rows included.
    embeddings : ndarray of shape (n_samples, n_features)
        Base-model embeddings of the same rows.
    labeled_mask : ndarray of shape (n_samples,), bool
    labels : ndarray of shape (n_samples,), int64, optional
        Revealed labels; -1 for every unlabeled row (strategies never see pool labels).
    head : tuple (weights (n_features, n_classes), bias (n_classes,)), optional
        The model's softmax layer on top of ``embeddings``, so that modAL can call
        ``predict_proba`` on embedding rows (needed by ``modal_*`` only).
    params : dict
        Per-strategy options, e.g. ``{'uncertainty_clustering': {'alpha': 0.2},
        'gnn': {'epochs': 100}}``.
    """

    probs: np.ndarray
    embeddings: np.ndarray
    labeled_mask: np.ndarray
    labels: np.ndarray = None
    head: tuple = None
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        self.probs = checks.check_probs(self.probs)
        n = self.probs.shape[0]
        self.embeddings = checks.check_embeddings(self.embeddings, n_samples=n)
        self.labeled_mask = checks.check_mask(self.labeled_mask, n)
        if self.labels is None:
            self.labels = np.full(n, -1, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {self.labels.shape}")
        if (self.labels[~self.labeled_mask] != -1).any():
            # The simulated oracle's contract: a strategy must never see a pool label.
            raise ValueError("labels must be -1 for every unlabeled row (pool labels are hidden from strategies)")

    @property
    def n_classes(self):
        return self.probs.shape[1]

    @property
    def pool_rows(self):
        return np.flatnonzero(~self.labeled_mask)

    def subset(self, rows):
        """The context restricted to ``rows`` (labeled and pool rows to keep), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return replace(self, probs=self.probs[rows], embeddings=np.asarray(self.embeddings[rows]),
                       labeled_mask=self.labeled_mask[rows], labels=self.labels[rows])


def _seed(random_state):
    """An int seed for APIs that want one (the analyzer, the GNN), drawn from ``random_state``."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _top_pool(ctx, scores_fn, budget, random_state):
    pool = ctx.pool_rows
    scores = scores_fn(ctx.probs[pool])
    return pool[alf.select_top(scores, budget, random_state=random_state)]


# --------------------------------------------------------------------------- strategies
def random_strategy(ctx, budget, random_state=None):
    """``budget`` pool rows uniformly at random: the baseline every strategy must beat."""
    return check_random_state(random_state).choice(ctx.pool_rows, budget, replace=False)


def entropy_strategy(ctx, budget, random_state=None):
    """Top-``budget`` pool rows by predictive entropy."""
    return _top_pool(ctx, alf.entropy_scores, budget, random_state)


def margin_strategy(ctx, budget, random_state=None):
    """Top-``budget`` pool rows by smallest top-1 / top-2 margin."""
    return _top_pool(ctx, alf.margin_scores, budget, random_state)


def least_confidence_strategy(ctx, budget, random_state=None):
    """Top-``budget`` pool rows by 1 - max probability."""
    return _top_pool(ctx, alf.least_confidence_scores, budget, random_state)


def intersection_strategy(ctx, budget, random_state=None):
    """The analyzer's uncertainty AND diversity AND novelty, ranked and filled to ``budget``.

    Runs :func:`AL_functions.analyze`, the same sequence the analyzer runs, so the
    benchmark measures the tool users run. ``n_clusters`` and ``k_neighbors`` default to
    the analyzer's defaults capped at the pool and labeled sizes.
    """
    opts = {name: dict(o) for name, o in ctx.params.get("intersection", {}).items()}
    opts.setdefault("diversity", {}).setdefault("n_clusters", min(20, len(ctx.pool_rows)))
    opts.setdefault("novelty", {}).setdefault("k_neighbors", min(5, int(ctx.labeled_mask.sum())))
    res = alf.analyze(ctx.probs, ctx.embeddings, ctx.labeled_mask, opts, budget, random_state=_seed(random_state))
    return ctx.pool_rows[res["intersection"]["rows"]]


def uncertainty_clustering_strategy(ctx, budget, random_state=None):
    """Top ``alpha * budget`` by entropy, plus the pool rows farthest from their KMeans centroids.

    1. Take the ``round(alpha * budget)`` (at least 1) most uncertain pool rows by entropy.
    2. Run KMeans on their standardised embeddings (``n_clusters`` = min(that count,
       n_classes)).
    3. Add the ``budget - that count`` other pool rows whose distance to the nearest of
       those centroids is largest (the regions the uncertain rows do not cover).

    ``ctx.params['uncertainty_clustering']['alpha']`` (default 0.2) sets the share.
    """
    alpha = float(ctx.params.get("uncertainty_clustering", {}).get("alpha", 0.2))
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"uncertainty_clustering alpha must be in [0, 1], got {alpha}")
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


def gnn_strategy(ctx, budget, random_state=None):
    """The GraphSAGE sidecar's ranking (``score='hybrid'`` by default) over a temporary export.

    The export carries labels for labeled rows only (-1 elsewhere), so the GNN never
    sees a pool label. Options: ``ctx.params['gnn']`` (passed to ``gnn.run_gnn``).
    """
    import tempfile
    from pathlib import Path

    import gnn
    from results_io import save_json

    opts = {"score": "hybrid", "k": 10, "epochs": 200}
    opts.update(ctx.params.get("gnn", {}))
    n = ctx.probs.shape[0]
    with tempfile.TemporaryDirectory(prefix="al-gnn-") as tmp:
        export = Path(tmp) / "embeddings"
        export.mkdir()
        np.save(export / "embeddings.npy", np.asarray(ctx.embeddings, dtype=np.float32))
        np.save(export / "probs.npy", ctx.probs)
        np.save(export / "labels.npy", np.where(ctx.labeled_mask, ctx.labels, -1).astype(np.int64))
        np.save(export / "labeled_mask.npy", ctx.labeled_mask)
        np.save(export / "indices.npy", np.arange(n, dtype=np.int64))
        save_json(export / "metadata.json", {"dataset": "benchmark", "n_classes": ctx.n_classes,
                                             "class_names": [str(c) for c in range(ctx.n_classes)]})
        res = gnn.run_gnn(export, Path(tmp) / "out", budget=budget, seed=_seed(random_state), plots=False,
                          progress=False, **opts)
    return np.asarray(res["indices"], dtype=np.int64)


# --------------------------------------------------------------------------- modAL peer
class SoftmaxHeadClassifier:
    """The base model's softmax layer as a scikit-learn classifier over embedding rows.

    modAL queries through ``estimator.predict_proba(X)``; with ``X`` = embeddings, this
    returns exactly the base model's probabilities, and ranked batch mode gets a real
    feature space for its distances. ``fit`` is a no-op: the benchmark retrains the
    Keras model itself between rounds, and modAL's ``teach``/``fit`` path is broken on
    scikit-learn >= 1.8 (it passes the removed ``force_all_finite`` to ``check_X_y``).
    """

    _estimator_type = "classifier"

    def __init__(self, weights, bias):
        self.weights = weights
        self.bias = bias

    def fit(self, X, y):  # noqa: D401 - see class docstring
        return self

    def get_params(self, deep=True):
        return {"weights": self.weights, "bias": self.bias}

    @property
    def classes_(self):
        return np.arange(len(self.bias))

    def predict_proba(self, X):
        z = np.asarray(X, dtype=np.float64) @ np.asarray(self.weights, dtype=np.float64) + self.bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


def _modal_learner(ctx, query_strategy):
    from modAL.models import ActiveLearner

    if ctx.head is None:
        raise ValueError("modAL strategies need ctx.head = (weights, bias) of the model's softmax layer")
    # No X_training: passing it would make modAL fit (and on scikit-learn >= 1.8, fail).
    return ActiveLearner(estimator=SoftmaxHeadClassifier(*ctx.head), query_strategy=query_strategy)


def modal_entropy_strategy(ctx, budget, random_state=None):
    """modAL's ``entropy_sampling`` through ``ActiveLearner.query`` (peer baseline)."""
    from modAL.uncertainty import entropy_sampling

    pool = ctx.pool_rows
    learner = _modal_learner(ctx, entropy_sampling)
    # random_tie_break=False: modAL's shuffled tie-break uses NumPy's global state (unseeded here).
    picked, _ = learner.query(np.asarray(ctx.embeddings[pool]), n_instances=budget)
    return pool[np.asarray(picked, dtype=np.int64)]


def modal_ranked_batch_strategy(ctx, budget, random_state=None):
    """modAL's ranked batch-mode sampling (``uncertainty_batch_sampling``) on embeddings.

    The labeled embeddings are handed to the learner as ``X_training`` directly (not via
    ``teach``, see :class:`SoftmaxHeadClassifier`). Pools above ``MODAL_RANKED_MAX_POOL``
    rows are sampled down (seeded) to bound the O(pool x budget) distance work.
    """
    from modAL.batch import uncertainty_batch_sampling

    rng = check_random_state(random_state)
    pool = ctx.pool_rows
    if len(pool) > max(MODAL_RANKED_MAX_POOL, budget):
        pool = np.sort(rng.choice(pool, MODAL_RANKED_MAX_POOL, replace=False))
    learner = _modal_learner(ctx, uncertainty_batch_sampling)
    learner.X_training = np.asarray(ctx.embeddings[ctx.labeled_mask], dtype=np.float32)
    picked, _ = learner.query(np.asarray(ctx.embeddings[pool], dtype=np.float32), n_instances=budget)
    return pool[np.asarray(picked, dtype=np.int64)]


STRATEGIES = {
    "random": random_strategy,
    "entropy": entropy_strategy,
    "margin": margin_strategy,
    "least_confidence": least_confidence_strategy,
    "intersection": intersection_strategy,
    "uncertainty_clustering": uncertainty_clustering_strategy,
    "gnn": gnn_strategy,
    "modal_entropy": modal_entropy_strategy,
    "modal_ranked_batch": modal_ranked_batch_strategy,
}


# --------------------------------------------------------------------------- subpools
def _anchoral(ctx, random_state):
    import anchoral  # lazy: only composite names need it

    opts = ctx.params.get("anchoral", {})
    # Standardised like every other distance in the project (raw MobileNetV3 embeddings can be
    # ~1e-11); the lazy view keeps a 1M pool from being copied.
    return anchoral.anchoral_subpool(knn.StandardizedView(ctx.embeddings), ctx.labeled_mask, ctx.labels,
                                     random_state=random_state, **opts)


def _seals(ctx, random_state):
    import anchoral

    return anchoral.seals_subpool(knn.StandardizedView(ctx.embeddings), ctx.labeled_mask, random_state=random_state,
                                  **ctx.params.get("seals", {}))


def _random_subpool(ctx, random_state):
    import anchoral

    size = ctx.params.get("randsub", {}).get("subpool_size", 1000)
    return anchoral.random_subpool(ctx.labeled_mask, size, random_state=random_state)


# name -> fn(ctx, random_state) -> unlabeled rows of ctx (a subpool). register_subpool adds more.
SUBPOOLS = {"anchoral": _anchoral, "seals": _seals, "randsub": _random_subpool}


def register_subpool(name, fn):
    """Make ``<name>_<strategy>`` available for every strategy; ``fn(ctx, random_state) -> rows``."""
    if not name or "_" in name:
        raise ValueError(f"subpool name must be non-empty without '_', got {name!r}")
    SUBPOOLS[name] = fn


def _composite(prefix, base):
    def run(ctx, budget, random_state=None):
        rng = check_random_state(random_state)
        sub = np.unique(np.asarray(SUBPOOLS[prefix](ctx, rng), dtype=np.int64))
        if ctx.labeled_mask[sub].any():
            raise RuntimeError(f"subpool {prefix!r} returned labeled rows")
        if len(sub) < budget:
            # A subpool smaller than the budget is topped up at random so every strategy
            # gets the same number of labels per round.
            rest = np.setdiff1d(ctx.pool_rows, sub)
            sub = np.union1d(sub, rng.choice(rest, budget - len(sub), replace=False))
        keep = np.concatenate([np.flatnonzero(ctx.labeled_mask), sub])
        rows = STRATEGIES[base](ctx.subset(keep), budget, rng)
        return keep[np.asarray(rows, dtype=np.int64)]

    run.__name__ = f"{prefix}_{base}"
    run.__doc__ = f"``{base}`` run on the ``{prefix}`` subpool (plus the labeled rows)."
    return run


def available_strategies():
    """Plain names (composites ``<subpool>_<name>`` are accepted too)."""
    return list(STRATEGIES)


def get_strategy(name):
    """The strategy function for ``name`` (plain or ``<subpool>_<strategy>``)."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    prefix, _, base = str(name).partition("_")
    if prefix in SUBPOOLS and base in STRATEGIES:
        return _composite(prefix, base)
    raise ValueError(f"strategy must be one of {list(STRATEGIES)} or '<subpool>_<strategy>' with subpool in "
                     f"{list(SUBPOOLS)}, got {name!r}")


def select(name, ctx, budget, random_state=None):
    """Run strategy ``name`` and check its answer.

    Returns
    -------
    rows : ndarray of shape (budget,), int64
        Unique, unlabeled rows of ``ctx``'s arrays, in the strategy's order.
    """
    fn = get_strategy(name)
    n_pool = int((~ctx.labeled_mask).sum())
    if n_pool == 0:
        raise checks.EmptyPoolError("the pool is empty: every row is labeled")
    checks.check_int(budget, "budget", low=1, high=n_pool)
    rows = np.asarray(fn(ctx, budget, random_state), dtype=np.int64)
    if rows.shape != (budget,) or len(np.unique(rows)) != budget:
        raise RuntimeError(f"strategy {name!r} returned {len(np.unique(rows))} unique of {rows.size} rows, "
                           f"expected {budget} unique")
    if rows.min() < 0 or rows.max() >= len(ctx.labeled_mask) or ctx.labeled_mask[rows].any():
        raise RuntimeError(f"strategy {name!r} returned rows outside the pool")
    return rows
