"""``spread`` and ``blend``: semi-supervised learners, label spreading on the pool's nearest-neighbour graph.

Label spreading (Zhou, Bousquet, Lal, Weston & Schölkopf 2004, "Learning with Local and Global
Consistency") lets the few labels flow along a k-nearest-neighbour graph of every pool item, so
the unlabeled items shape the decision: at a handful of labels per class it is where a
classifier of the labeled items alone has the least to go on.

:class:`SpreadTrainer` is a :class:`trainer.Trainer`: it builds the graph once per start (the
pool is ``adapt``, as for ``logreg``'s standardisation), and each fit spreads that fit's labels
over it. Its Keras model predicts any item inductively, as scikit-learn's ``LabelSpreading``
does: the mean label distribution of the item's ``k`` most similar anchors (the pool's items,
a seeded sample of :data:`MAX_ANCHORS` beyond that), so rounds save, load, fingerprint and
analyse it like every other model. Its ``embedding`` is the standardised input (what
``logreg`` gives the strategies); it has no softmax head over it, so ``head()`` is None.

``blend`` averages that vote with a logistic regression's probabilities (``logreg``'s fit, on the
same standardised inputs): on CIFAR-10's pretrained features the vote alone led at up to 5 labels
per class, the average from 10 per class on, ahead of both (docs/BENCHMARKS.md, "Which learner").
"""
import hashlib
import time

import numpy as np
from scipy import sparse

from labelnext.knn import knn_search, l2_normalize
from labelnext.training.backbones import layer, load_keras, standardized_input
from labelnext.training.predict import two_output_model
from labelnext.training.trainer import Trainer, logistic_head
from labelnext.utils.seeding import seed_everything

# Neighbours per item in the graph and in the inductive vote.
SPREAD_NEIGHBOURS = 20
# Zhou et al.'s alpha: the share of an item's distribution that comes from its neighbours (the rest is its
# own label); what travelled t hops is weighed alpha ** t. On CIFAR-10's pretrained features 0.2 (also
# scikit-learn's default) led at 10-100 labels; 0.99, the paper's, fell far behind (docs/BENCHMARKS.md).
SPREAD_ALPHA = 0.2
# The iteration stops when no item's distribution moves by more than SPREAD_TOL of its own mass: an
# absolute tolerance would stop before labels reach items many hops away, whose mass is alpha ** hops.
SPREAD_ITERATIONS = 500
SPREAD_TOL = 1e-4
# Anchors the model keeps (rows x features float32 weights): a seeded sample of a larger pool.
MAX_ANCHORS = 20_000


# (digest of the unit rows and k, graph) of the last neighbour_graph call.
_LAST_GRAPH = []


def neighbour_graph(units, k):
    """Symmetric 0/1 adjacency of the ``k``-nearest-neighbour graph of unit rows (cosine), without
    self-loops: an edge wherever either end is among the other's ``k`` nearest.

    The last graph is kept: ``auto`` starts ``spread`` and ``blend`` on the same pool, and the exact
    search is most of a start (7 s on 5,000 x 1,280)."""
    h = hashlib.blake2b(units.tobytes(), digest_size=16)
    h.update(f"{units.shape}{units.dtype}{k}".encode())
    if _LAST_GRAPH and _LAST_GRAPH[0] == h.digest():
        return _LAST_GRAPH[1]
    graph = _neighbour_graph(units, k)
    _LAST_GRAPH[:] = [h.digest(), graph]
    return graph


def _neighbour_graph(units, k):
    n = len(units)
    _, idx = knn_search(units, units, min(k, n - 1), metric="cosine", method="exact", exclude_self=True)
    rows = np.repeat(np.arange(n), idx.shape[1])
    graph = sparse.csr_matrix((np.ones(rows.size, dtype=np.float64), (rows, idx.ravel())), shape=(n, n))
    return graph.maximum(graph.T).tocsr()


def spread_labels(graph, seeds, n_classes, *, alpha=SPREAD_ALPHA, iterations=SPREAD_ITERATIONS, tol=SPREAD_TOL):
    """Label spreading's fixed point ``F = alpha S F + (1 - alpha) Y`` with ``S = D^-1/2 W D^-1/2``,
    by iteration; rows normalised to distributions, all-zero where no label reaches.

    Parameters
    ----------
    graph : sparse matrix of shape (n, n), symmetric, non-negative
    seeds : ndarray of shape (n,), int
        The class of each labeled node, -1 elsewhere.
    n_classes : int
    alpha : float in (0, 1)

    Returns
    -------
    distributions : ndarray of shape (n, n_classes), float64
    iterations : int, the iterations run
    """
    seeds = np.asarray(seeds)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    inv = sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    s = (inv @ graph @ inv).tocsr()
    y = np.zeros((len(seeds), n_classes))
    labeled = np.flatnonzero(seeds >= 0)
    y[labeled, seeds[labeled]] = 1.0
    f, done = y.copy(), 0
    for done in range(1, iterations + 1):
        new = alpha * (s @ f) + (1 - alpha) * y
        mass = new.sum(axis=1)
        moved = np.abs(new - f).sum(axis=1)
        f = new
        if (moved <= tol * mass).all():  # unreached rows have neither mass nor movement
            break
    total = f.sum(axis=1, keepdims=True)
    return np.divide(f, total, out=np.zeros_like(f), where=total > 0), done


def spread_model(keras, input_shape, n_classes, pool, anchors, k, blend=False):
    """Inputs -> ``standardize`` (the pool's statistics) -> ``embedding`` -> unit length -> cosine
    similarity to each anchor (``anchors``, frozen) -> the mean distribution of the ``k`` most
    similar anchors (:class:`backbones` layer ``NeighbourVote``): ``predictions``, or with ``blend``
    ``vote``, averaged with a softmax layer over the embedding (``logistic``) into ``predictions``."""
    inputs, z = standardized_input(keras, input_shape, pool, "blend" if blend else "spread")
    embedding = keras.layers.Identity(name="embedding")(z)
    x = keras.layers.UnitNormalization(name="unit")(embedding)
    x = keras.layers.Dense(len(anchors), use_bias=False, trainable=False, name="anchors")(x)
    vote = layer("NeighbourVote")(len(anchors), n_classes, k, name="vote" if blend else "predictions")(x)
    if not blend:
        return keras.Model(inputs, vote, name="spread_classifier")
    logistic = keras.layers.Dense(n_classes, activation="softmax", trainable=False, name="logistic")(embedding)
    outputs = keras.layers.Average(name="predictions")([vote, logistic])
    return keras.Model(inputs, outputs, name="blend_classifier")


def _standardized(model, x):
    """Rows of ``x`` as the model's ``standardize`` layer scales them (the ``embedding``)."""
    return load_keras().ops.convert_to_numpy(model.get_layer("standardize")(np.asarray(x, dtype=np.float32)))


class SpreadTrainer(Trainer):
    """:class:`Trainer` for ``arch='spread'``: label spreading over the pool (see the module docstring);
    with ``blend`` (``arch='blend'``) the spread vote averaged with ``logreg``'s probabilities.

    Deterministic: the graph is exact, the anchor sample is seeded by ``start``'s ``random_state``
    and a fit has no other randomness; ``steps``, ``lr`` and ``start_weights`` change nothing.

    Parameters
    ----------
    input_shape, n_classes : see :class:`Trainer`
    k : int
        Neighbours in the graph and the vote (:data:`SPREAD_NEIGHBOURS`).
    alpha : float in (0, 1)
        :data:`SPREAD_ALPHA`.
    max_anchors : int
        :data:`MAX_ANCHORS`.
    blend : bool
        Average the vote with a logistic regression on the labeled items' standardised inputs
        (:func:`trainer.logistic_head`, ``logreg``'s fit): the graph carries the few labels, the
        linear model the many (docs/BENCHMARKS.md, "Which learner").
    """

    uses_steps = False

    def __init__(self, input_shape, n_classes, *, k=SPREAD_NEIGHBOURS, alpha=SPREAD_ALPHA, max_anchors=MAX_ANCHORS,
                 blend=False, **kwargs):
        # The base checks the recipe's arguments; its arch is only the name here (no Keras backbone).
        kwargs.update(arch="linear", dropout=0.0)
        super().__init__(input_shape, n_classes, **kwargs)
        self.blend = bool(blend)
        self.arch = "blend" if self.blend else "spread"
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        self.k, self.alpha, self.max_anchors = int(k), float(alpha), int(max_anchors)

    def start(self, random_state=0, *, adapt=None, initial_weights=None, weights_file=None, clear_session=False):
        """Build the model and the anchors' graph from the pool ``adapt`` (every item's inputs)."""
        if adapt is None or len(adapt) < 2:
            raise ValueError(f"arch={self.arch!r} needs the pool's rows (adapt=), at least 2")
        keras = load_keras()
        if clear_session:
            keras.backend.clear_session()
        seed_everything(random_state)
        pool = np.asarray(adapt, dtype=np.float32).reshape(len(adapt), -1)
        rows = np.arange(len(pool))
        if len(pool) > self.max_anchors:
            rows = np.sort(np.random.RandomState(random_state).choice(len(pool), self.max_anchors, replace=False))
        model = spread_model(keras, self.input_shape, self.n_classes, pool, rows, min(self.k, len(rows)), self.blend)
        # Unit rows: the space the graph and the vote measure cosine similarity in.
        self._units = l2_normalize(_standardized(model, pool[rows]))
        model.get_layer("anchors").set_weights([self._units.T.copy()])
        self._graph = neighbour_graph(self._units, self.k)
        self.model_, self._both = model, two_output_model(model)
        self._weights0 = model.get_weights()
        return self

    def fit(self, x, y, random_state=0, *, start_weights=None, verbose=0):
        """Spread the labels ``y`` of items ``x`` over the anchors' graph: each labeled item joins it as a
        node linked to its ``k`` most similar anchors; the anchors' distributions become the vote."""
        self._check_started()
        y = self._check_fit_data(x, y)
        start = time.perf_counter()
        z = _standardized(self.model_, np.asarray(x, dtype=np.float32).reshape(len(y), -1))
        self._labeled = (l2_normalize(z), y)
        dist, iterations = self._spread(np.ones(len(self._units), dtype=bool))
        self.model_.get_layer("vote" if self.blend else "predictions").set_weights([dist.astype(np.float32)])
        if self.blend:
            w, b, _ = logistic_head(z.astype(np.float64), y, self.n_classes)
            self.model_.get_layer("logistic").set_weights([w, b])
        self.info_ = {"epochs": 1, "max_epochs": 1, "steps": iterations, "n_train": int(len(y)), "n_val": 0,
                      "best_val_accuracy": None, "train_seconds": time.perf_counter() - start}
        return self

    def _spread(self, keep):
        """The last fit's labels spread over the anchors where ``keep`` is true: (distributions, iterations)."""
        labeled, y = self._labeled
        units, n = self._units[keep], int(keep.sum())
        k = min(self.k, n)
        _, idx = knn_search(labeled, units, k, metric="cosine", method="exact")
        cross = sparse.csr_matrix((np.ones(idx.size), (np.repeat(np.arange(len(y)), k), idx.ravel())),
                                  shape=(len(y), n))
        graph = self._graph if keep.all() else self._graph[keep][:, keep]
        graph = sparse.bmat([[graph, cross.T], [cross, None]], format="csr")
        dist, iterations = spread_labels(graph, np.concatenate([np.full(n, -1), y]), self.n_classes, alpha=self.alpha)
        return dist[:n], iterations

    def predict_held_out(self, x):
        """Class probabilities of ``x`` as of items never seen: the items' own anchors (any anchor
        identical to one of them) leave the graph, the last fit's labels are spread over the rest, and
        the rest vote. A pool item held out of a cross-validation fold is otherwise its own most
        similar anchor and a bridge between its neighbours: the vote would be transductive, and the
        fold would measure what no new item gets."""
        self._check_started()
        z = _standardized(self.model_, np.asarray(x, dtype=np.float32).reshape(len(x), -1))
        sims = l2_normalize(z) @ self._units.T
        keep = ~(sims >= 1 - 1e-5).any(axis=0)
        if not keep.any():  # the whole pool held out: nothing else to vote
            return self.predict(x)[0]
        dist = self._spread(keep)[0] if not keep.all() else \
            self.model_.get_layer("vote" if self.blend else "predictions").get_weights()[0]
        sims = sims[:, keep]
        k = min(self.k, sims.shape[1])
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        votes = dist[nearest].sum(axis=1) + 1e-6  # NeighbourVote's arithmetic
        probs = votes / votes.sum(axis=1, keepdims=True)
        if self.blend:  # the model's own softmax layer: held out or not, the same
            probs = (probs + load_keras().ops.convert_to_numpy(self.model_.get_layer("logistic")(z))) / 2
        return probs.astype(np.float32)
