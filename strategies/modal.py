"""modAL's own query strategies, run on our probabilities and embeddings: a peer baseline.

modAL is imported inside the functions on purpose: ``import modAL`` pulls in torch
(about 6 s), and most users of ``strategies`` never run a ``modal_*`` strategy.
"""
import numpy as np
from sklearn.utils import check_random_state

# modAL's ranked batch mode computes pool x (labeled + chosen) distances once per chosen
# item: O(pool x budget x labeled). Measured 158 s for 1,000 items on a 10k pool (DESIGN.md);
# above this many pool rows it runs on a seeded random sample of the pool.
MODAL_RANKED_MAX_POOL = 10_000


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
    from modAL.models import ActiveLearner  # lazy: see the module docstring

    if ctx.head is None:
        raise ValueError("modAL strategies need ctx.head = (weights, bias) of the model's softmax layer")
    # No X_training: passing it would make modAL fit (and on scikit-learn >= 1.8, fail).
    return ActiveLearner(estimator=SoftmaxHeadClassifier(*ctx.head), query_strategy=query_strategy)


def modal_entropy_strategy(ctx, budget, random_state=None):
    """modAL's ``entropy_sampling`` through ``ActiveLearner.query`` (peer baseline)."""
    from modAL.uncertainty import entropy_sampling  # lazy: see the module docstring

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

    References
    ----------
    Cardoso, T. N. C. et al. (2017). Ranked batch-mode active learning. Information
    Sciences 379.
    """
    from modAL.batch import uncertainty_batch_sampling  # lazy: see the module docstring

    rng = check_random_state(random_state)
    pool = ctx.pool_rows
    if len(pool) > max(MODAL_RANKED_MAX_POOL, budget):
        pool = np.sort(rng.choice(pool, MODAL_RANKED_MAX_POOL, replace=False))
    learner = _modal_learner(ctx, uncertainty_batch_sampling)
    learner.X_training = np.asarray(ctx.embeddings[ctx.labeled_mask], dtype=np.float32)
    picked, _ = learner.query(np.asarray(ctx.embeddings[pool], dtype=np.float32), n_instances=budget)
    return pool[np.asarray(picked, dtype=np.int64)]
