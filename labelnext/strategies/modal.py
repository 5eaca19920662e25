"""modAL's own query strategies, run on our probabilities and embeddings: a peer baseline.

modAL is imported inside the functions on purpose: ``import modAL`` pulls in torch
(about 6 s), most users of ``strategies`` never run a ``modal_*`` strategy, and it is the
'modal' extra (:func:`_modal`: one line naming the extra when it is missing).

modAL queries a classifier over embedding rows: the model's own softmax head when the
context has one (``ctx.head``); otherwise (``from_arrays`` analyzers of any model) a
multinomial logistic regression fitted on the labeled rows' embeddings stands in for it
(:func:`fit_softmax_head`), and :func:`head_note` says so for the selection's summary.
"""
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from labelnext.utils.checks import check_embeddings, check_float
from labelnext.strategies.base import int_seed, softmax_head
from labelnext.utils.extras import require

# modAL's ranked batch mode computes pool x (labeled + chosen) distances once per chosen
# item: O(pool x budget x labeled). Measured 158 s for 1,000 items on a 10k pool (DESIGN.md);
# above this many pool rows it runs on a seeded random sample of the pool.
MODAL_RANKED_MAX_POOL = 10_000


def _modal(module):
    return require(module, "modal", "modAL (the modal_* strategies)")


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
        return softmax_head(X, self.weights, self.bias)

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


# Logit of a class no labeled row has: its probability is exp(-1e4) = 0 next to any class
# the regression learned, and the logits stay finite (no inf - inf in the softmax).
ABSENT_CLASS_LOGIT = -1e4


def fit_softmax_head(embeddings, labels, n_classes, *, C=1.0, random_state=None):
    """A softmax head (weights, bias) over raw embeddings: a multinomial logistic regression.

    Fitted on standardised embeddings (the scale folded back into the weights, so the head
    reads raw rows as a model's softmax layer does); classes without a labeled row get
    zero weights and a logit of :data:`ABSENT_CLASS_LOGIT` (probability 0).

    Parameters
    ----------
    embeddings : ndarray of shape (n_labeled, n_features)
    labels : ndarray of shape (n_labeled,), int in [0, n_classes)
        At least 2 distinct classes.
    n_classes : int
    C : float > 0
        Inverse L2 strength of the regression.
    random_state : int, RandomState or None

    Returns
    -------
    weights : ndarray of shape (n_features, n_classes), float64
    bias : ndarray of shape (n_classes,), float64
    """
    check_float(C, "C", 0.0, None, low_open=True)
    labels = np.asarray(labels, dtype=np.int64)
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"fitting a softmax head needs labeled rows of at least 2 classes, got {len(present)} "
                         f"({present.tolist()}); label items of another class or pass the model's head")
    x = np.asarray(check_embeddings(embeddings), dtype=np.float64)
    if labels.shape != (len(x),) or present[0] < 0 or present[-1] >= n_classes:
        raise ValueError(f"labels must be {len(x)} class ids in [0, {n_classes}), got shape {labels.shape} "
                         f"and values {present[:5].tolist()}")
    scaler = StandardScaler().fit(x)
    reg = LogisticRegression(C=C, max_iter=1000, random_state=int_seed(random_state))
    reg.fit(scaler.transform(x), labels)
    # A binary fit has one logit (class 1 vs class 0): softmax([0, z]) is its sigmoid.
    coef = np.vstack([np.zeros_like(reg.coef_), reg.coef_]) if len(present) == 2 else reg.coef_
    intercept = np.concatenate([[0.0], reg.intercept_]) if len(present) == 2 else reg.intercept_
    weights = np.zeros((x.shape[1], n_classes))
    bias = np.full(n_classes, ABSENT_CLASS_LOGIT)
    weights[:, reg.classes_] = (coef / scaler.scale_).T
    bias[reg.classes_] = intercept - (coef / scaler.scale_) @ scaler.mean_
    return weights, bias


def _labeled_rows(ctx):
    """Rows of ``ctx`` whose label is revealed: what :func:`fit_softmax_head` is fitted on."""
    return np.flatnonzero(ctx.labeled_mask & (ctx.labels >= 0))


def head_note(ctx):
    """What a ``modal_*`` selection on ``ctx`` should say: None with a model head, else the fitted one."""
    if ctx.head is not None:
        return None
    labels = ctx.labels[_labeled_rows(ctx)]
    return (f"no softmax head of a model: modAL queries a multinomial logistic regression fitted on the "
            f"{len(labels)} labeled embeddings (standardised; {len(np.unique(labels))} of {ctx.n_classes} "
            f"classes labeled, the others get probability 0)")


def _modal_learner(ctx, query_strategy, random_state):
    ActiveLearner = _modal("modAL.models").ActiveLearner

    head = ctx.head
    if head is None:
        rows = _labeled_rows(ctx)
        head = fit_softmax_head(np.asarray(ctx.embeddings[rows]), ctx.labels[rows], ctx.n_classes,
                                random_state=random_state)
    # No X_training: passing it would make modAL fit (and on scikit-learn >= 1.8, fail).
    return ActiveLearner(estimator=SoftmaxHeadClassifier(*head), query_strategy=query_strategy)


def modal_entropy_strategy(ctx, budget, random_state=None):
    """modAL's ``entropy_sampling`` through ``ActiveLearner.query`` (peer baseline); without
    ``ctx.head``, over :func:`fit_softmax_head` of the labeled rows."""
    entropy_sampling = _modal("modAL.uncertainty").entropy_sampling

    pool = ctx.pool_rows
    learner = _modal_learner(ctx, entropy_sampling, random_state)
    # random_tie_break=False: modAL's shuffled tie-break uses NumPy's global state (unseeded here).
    picked, _ = learner.query(np.asarray(ctx.embeddings[pool]), n_instances=budget)
    return pool[np.asarray(picked, dtype=np.int64)]


def modal_ranked_batch_strategy(ctx, budget, random_state=None):
    """modAL's ranked batch-mode sampling (``uncertainty_batch_sampling``) on embeddings.

    The labeled embeddings are handed to the learner as ``X_training`` directly (not via
    ``teach``, see :class:`SoftmaxHeadClassifier`). Pools above ``MODAL_RANKED_MAX_POOL``
    rows are sampled down (seeded) to bound the O(pool x budget) distance work. Without
    ``ctx.head``, the classifier is :func:`fit_softmax_head` of the labeled rows.

    References
    ----------
    Cardoso, T. N. C. et al. (2017). Ranked batch-mode active learning. Information
    Sciences 379.
    """
    uncertainty_batch_sampling = _modal("modAL.batch").uncertainty_batch_sampling

    rng = check_random_state(random_state)
    pool = ctx.pool_rows
    if len(pool) > max(MODAL_RANKED_MAX_POOL, budget):
        pool = np.sort(rng.choice(pool, MODAL_RANKED_MAX_POOL, replace=False))
    learner = _modal_learner(ctx, uncertainty_batch_sampling, rng)
    learner.X_training = np.asarray(ctx.embeddings[ctx.labeled_mask], dtype=np.float32)
    picked, _ = learner.query(np.asarray(ctx.embeddings[pool], dtype=np.float32), n_instances=budget)
    return pool[np.asarray(picked, dtype=np.int64)]
