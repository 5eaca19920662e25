"""One round of the loop: the code ``al round``, the benchmark's simulated rounds and
``ActiveLearningAnalyzer.select`` share.

A round trains the model with the one recipe on the labeled rows (:class:`RoundTrainer`),
evaluates it on the test split when there is one, makes one inference pass over the pool
(:func:`fit_round`), builds one selection context (:func:`selection_context`), decides ``auto``
once (:func:`decide`) and selects with :func:`strategies.select` (:func:`select_round`).
:func:`run_round` is both halves; the analyzer, whose model is trained already, calls the
second. The benchmark is this loop with an oracle that reveals the selected labels, so its
verdicts describe what ``al round`` does.
"""
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from labelnext import strategies
from labelnext.loop.evaluation import measure
from labelnext.loop.learner import LastFit, LearnerChoice
from labelnext.strategies import auto
from labelnext.strategies.space import uses_space
from labelnext.training.trainer import make_trainer
from labelnext.utils.checks import check_float

# The one recipe: every label trains (no validation split: at a few dozen labels it is a handful
# of items and made early stopping pick noise), from the same initial state, the learning rate
# decaying to 0 along a cosine, for STEPS optimiser steps or EPOCHS_PER_FIT passes over the labeled
# set when that is more (:func:`fit_steps`). Measured through this module (docs/BENCHMARKS.md, "One
# recipe for the loop and the benchmark", 3 seeds, random and auto): a fixed 400 steps beat a budget
# growing from 200 on digits (AULC +0.003 random, +0.001 auto; the growing one trained 200 steps up
# to 320 labels) and lost to it on letter (-0.007 random, -0.018 auto; there it trained 600-800
# steps from 641 labels on); 400 growing by 20 passes, a fixed 400 up to 640 labels, was the best
# on letter (+0.017 / +0.021 against the fixed 400, every seed).
STEPS = 400
EPOCHS_PER_FIT = 20.0
BATCH_SIZE = 32
SCHEDULE = "cosine"
# Inference batch of the passes over the pool and the test split.
PREDICT_BATCH = 512
# Round ``n`` of seed ``s`` selects with random_state ``s * SEED_STRIDE + n``: no two seeds share a stream.
SEED_STRIDE = 10_000


def fit_steps(n_labeled, steps, epochs_per_fit, batch_size):
    """Optimiser steps of one fit: ``steps``, or ``epochs_per_fit`` passes over the labeled set when
    that is more, rounded up to a multiple of ``steps``.

    The rounding keeps the number of distinct budgets (each a compiled model with its own
    learning-rate schedule) small. ``epochs_per_fit=0``: always ``steps``.

    Examples
    --------
    >>> fit_steps(100, 200, 20, 32), fit_steps(1000, 200, 20, 32), fit_steps(1000, 200, 0, 32)
    (200, 800, 200)
    """
    if not epochs_per_fit:
        return int(steps)
    need = math.ceil(epochs_per_fit * n_labeled / batch_size)
    return int(steps) * max(1, math.ceil(need / steps))


def round_trainer(input_shape, n_classes, *, arch, candidates=None, features="raw", **kwargs):
    """The round's trainer: a :class:`RoundTrainer` of ``arch``, or for ``arch='auto'`` a
    :class:`loop.learner.LearnerChoice` among ``candidates`` (:func:`loop.learner.candidates_for`),
    each a RoundTrainer with the same ``kwargs``; ``features`` says where the MLP's standardisation is fitted
    (:func:`training.backbones.adapts_on_pool`)."""
    if arch != "auto":
        return RoundTrainer(input_shape, n_classes, arch=arch, **kwargs)
    return LearnerChoice(lambda name: RoundTrainer(input_shape, n_classes, arch=name, **kwargs), candidates,
                         features=features)


def selection_seed(seed, number):
    """The ``random_state`` of round ``number``'s selection under ``seed``."""
    return int(seed) * SEED_STRIDE + int(number)


class RoundTrainer(LastFit):
    """The one training recipe: :class:`Trainer` fits of :func:`fit_steps` steps, each from the
    same initial state.

    One :class:`Trainer` per distinct step budget, each started under the seed from the same
    initial weights (``weights_file`` keeps them across processes), so fits of different sizes
    start from the same point; each fit re-seeds and restores the optimizer state.

    Parameters
    ----------
    input_shape : tuple of int
        One item's shape.
    n_classes : int
    arch : str
        A :data:`training.backbones.ARCHS` name.
    weights : None, 'imagenet' or a path
        Initial weights of ``mobilenetv3``.
    steps, epochs_per_fit, batch_size : see :func:`fit_steps`
    lr : float or None
        Peak learning rate; None: the architecture's.
    schedule : {'cosine', 'constant'}

    Attributes
    ----------
    info_ : dict
        The last fit (see :attr:`Trainer.info_`).
    """

    predict_batch = PREDICT_BATCH

    def __init__(self, input_shape, n_classes, *, arch, weights=None, steps=STEPS, epochs_per_fit=EPOCHS_PER_FIT,
                 batch_size=BATCH_SIZE, lr=None, schedule=SCHEDULE):
        self.epochs_per_fit = float(check_float(epochs_per_fit, "epochs_per_fit", 0.0, None))
        self._kwargs = dict(arch=arch, weights=weights, batch_size=batch_size, lr=lr, schedule=schedule)
        self._shape, self._n_classes = tuple(input_shape), n_classes
        # Built now so that every argument is checked before the caller writes anything.
        first = self._make(steps)
        self.steps, self.batch_size, self._uses_steps = first.steps, first.batch_size, first.uses_steps
        self._trainers, self._current, self._seed = {}, None, None

    def _make(self, steps):
        return make_trainer(self._shape, self._n_classes, steps=steps, exact_steps=True, **self._kwargs)

    def start(self, random_state, *, adapt=None, weights_file=None):
        """Forget the previous seed's models; the first fit builds the one it needs.

        Parameters
        ----------
        random_state : int
            Seeds the initial weights and every fit's shuffle and dropout.
        adapt : ndarray, optional
            What preprocessing layers are fitted on (:func:`training.backbones.adapt_data`).
        weights_file : path, optional
            The initial weights: loaded when the file exists, else written from the fresh model.

        Returns
        -------
        self
        """
        self._seed, self._adapt, self._weights_file = random_state, adapt, weights_file
        self._trainers, self._current = {}, None
        return self

    def steps_for(self, n_labeled):
        """Optimiser steps of a fit on ``n_labeled`` items (:func:`fit_steps`); None for a learner fitted
        to convergence (``logreg``)."""
        return fit_steps(n_labeled, self.steps, self.epochs_per_fit, self.batch_size) if self._uses_steps else None

    def fit(self, x, y, random_state=0, *, start_weights=None):
        """Train on ``x`` (n, ...) and ``y`` (n,) for :func:`fit_steps` steps; returns self."""
        if self._seed is None:
            raise RuntimeError("call RoundTrainer.start(random_state) before fit")
        steps = self.steps_for(len(y)) or self.steps
        if steps not in self._trainers:
            # The first model of a seed frees the previous seed's graphs.
            self._trainers[steps] = self._make(steps).start(self._seed, adapt=self._adapt,
                                                            weights_file=self._weights_file,
                                                            clear_session=not self._trainers)
        self._current = self._trainers[steps].fit(x, y, random_state, start_weights=start_weights)
        self.info_ = self._current.info_
        return self


@dataclass(frozen=True)
class Fit:
    """What a round's model says: the one inference pass over the pool and the test metrics.

    Attributes
    ----------
    probs : ndarray of shape (n_pool, n_classes)
    embeddings : ndarray of shape (n_pool, n_features)
    head : tuple (weights (n_features, n_classes), bias (n_classes,))
    dropout_rate : float
    metrics : dict or None
        ``accuracy``, ``macro_f1``, ``n_eval`` and ``accuracy_ci`` on the test split
        (:func:`loop.evaluation.measure`); None without one.
    test_probs : ndarray of shape (n_test, n_classes) or None
    info : dict
        The trainer's ``info_`` (steps, seconds, ...).
    """

    probs: np.ndarray
    embeddings: np.ndarray
    head: tuple
    dropout_rate: float
    metrics: dict
    test_probs: np.ndarray
    info: dict


def fit_round(trainer, x, labels, *, seed, x_test=None, y_test=None, start_weights=None):
    """Train on the labeled rows of ``x``, evaluate on the test split, one pass over ``x``.

    Parameters
    ----------
    trainer : RoundTrainer (or an object with its ``fit``, ``predict``, ``head``, ``dropout_rate``)
        Started under ``seed``.
    x : ndarray of shape (n_pool, ...)
    labels : ndarray of shape (n_pool,), int
        -1 for every row without a label; the others train.
    seed : int
        Seeds the fit.
    x_test, y_test : ndarray, optional
        The test split; without it ``metrics`` is None.
    start_weights : list of ndarray, optional
        Continue from these weights instead of the initial ones.

    Returns
    -------
    Fit
    """
    labels = np.asarray(labels, dtype=np.int64)
    rows = np.flatnonzero(labels >= 0)
    info = dict(trainer.fit(x[rows], labels[rows], seed, start_weights=start_weights).info_)
    metrics = test_probs = None
    if x_test is not None and y_test is not None and len(y_test):
        test_probs = trainer.predict(x_test, batch_size=PREDICT_BATCH)[0]
        metrics = measure(test_probs, y_test)
    probs, embeddings = trainer.predict(x, batch_size=PREDICT_BATCH)
    return Fit(probs, embeddings, trainer.head(), trainer.dropout_rate(), metrics, test_probs, info)


def selection_context(probs, embeddings, labeled_mask, labels=None, *, head=None, dropout_rate=None, params=None,
                      mc_probs=None):
    """The :class:`strategies.SelectionContext` of a round, labels hidden on every pool row.

    Parameters
    ----------
    probs : ndarray of shape (n, n_classes)
    embeddings : ndarray of shape (n, n_features)
    labeled_mask : ndarray of shape (n,), bool
    labels : ndarray of shape (n,), int, optional
        Labels of the labeled rows (other rows are ignored: strategies never see a pool label).
    head, dropout_rate, params, mc_probs : see :class:`strategies.SelectionContext`

    Returns
    -------
    SelectionContext
    """
    mask = np.asarray(labeled_mask, dtype=bool)
    known = None if labels is None else np.where(mask, np.asarray(labels, dtype=np.int64), -1)
    return strategies.SelectionContext(probs=probs, embeddings=embeddings, labeled_mask=mask, labels=known,
                                       head=head, dropout_rate=dropout_rate, params=dict(params or {}),
                                       mc_probs=mc_probs)


def decide(strategy, ctx, budget):
    """The method a round runs for ``strategy``, and why: ``auto`` (alone or as the strategy of a
    ``<subpool>_auto``) is decided here, once, by :func:`strategies.auto.auto_choice`.

    Returns
    -------
    method : str
        A registered name: ``strategy`` itself, or with ``auto`` replaced by its pick.
    reason : str or None
        ``auto``'s reason; None for every other strategy.
    """
    strategies.get_strategy(strategy)
    prefix, base = ("", strategy) if strategy in strategies.STRATEGIES else strategy.split("_", 1)
    if base != "auto":
        return strategy, None
    # The same decision as inside a subpool: the labeled rows and the classes are the same there.
    method, reason = auto.auto_choice(ctx, budget)
    return (f"{prefix}_{method}" if prefix else method), reason


@dataclass(frozen=True)
class Selection:
    """One round's selection.

    Attributes
    ----------
    rows : ndarray of shape (budget,), int64
        Rows of the context's arrays, in the strategy's order.
    method : str
        The strategy that ran (``auto`` resolved, see :func:`decide`).
    reason : str or None
        Why ``auto`` picked ``method``.
    in_space : bool
        Whether distances were measured in the selection space instead of the model's embeddings.
    seconds : float
        Time of the selection alone.
    """

    rows: np.ndarray
    method: str
    reason: str
    in_space: bool
    seconds: float


def select_round(strategy, ctx, budget, *, random_state, space=None, exclude=None):
    """Decide ``auto`` once, put the selection space in where the method measures distances only,
    and select ``budget`` rows with :func:`strategies.select`.

    Parameters
    ----------
    strategy : str
        A registered name (``auto`` and ``<subpool>_<strategy>`` included).
    ctx : SelectionContext
        From :func:`selection_context`.
    budget : int
    random_state : int or RandomState
    space : ndarray of shape (n, n_space), optional
        Label-free features of the same rows (:func:`strategies.space.pool_space`).
    exclude : ndarray of shape (n,), bool, optional
        Rows the strategy neither selects nor sees (the audit's evaluation items): the
        selection runs on the context without them, and its rows are mapped back.

    Returns
    -------
    Selection
    """
    keep = None
    if exclude is not None and np.any(exclude):
        keep = np.flatnonzero(~np.asarray(exclude, dtype=bool))
        ctx = ctx.subset(keep)
        space = None if space is None else space[keep]
    method, reason = decide(strategy, ctx, budget)
    in_space = space is not None and uses_space(method)
    if in_space:
        ctx = replace(ctx, embeddings=space)
    start = time.perf_counter()
    rows = strategies.select(method, ctx, budget, random_state=random_state)
    if keep is not None:
        rows = keep[rows]
    return Selection(rows, method, reason, bool(in_space), time.perf_counter() - start)


@dataclass(frozen=True)
class RoundResult:
    """:func:`run_round`'s record: the fit and the selection (None when no budget was asked)."""

    fit: Fit
    selection: Selection

    @property
    def chosen(self):
        """The selected rows of ``x`` (absolute data set indices when ``x`` is the whole training split)."""
        return None if self.selection is None else self.selection.rows


def run_round(trainer, x, labels, *, strategy, budget, seed, number, x_test=None, y_test=None, params=None,
              space=None, fit=None, start_weights=None, exclude=None):
    """One round: :func:`fit_round` (unless ``fit`` is given), then :func:`select_round`.

    Parameters
    ----------
    trainer : RoundTrainer
        Started under ``seed``.
    x : ndarray of shape (n_pool, ...)
    labels : ndarray of shape (n_pool,), int
        -1 where unlabeled.
    strategy : str
    budget : int or None
        Items to select; None trains and evaluates only (the last round of a simulation).
    seed : int
        Seeds the fit; with ``number`` it seeds the selection (:func:`selection_seed`).
    number : int
        The round's number (0 for the first).
    x_test, y_test : ndarray, optional
    params : dict, optional
        Per-strategy options (:class:`strategies.SelectionContext`).
    space : ndarray of shape (n_pool, n_space), optional
        The pool's selection space (:func:`select_round`).
    fit : Fit, optional
        A fit of these labels made already (the benchmark shares round 0 between strategies).
    start_weights : list of ndarray, optional
        Continue from these weights (:func:`fit_round`).
    exclude : ndarray of shape (n_pool,), bool, optional
        Rows kept out of the selection (:func:`select_round`).

    Returns
    -------
    RoundResult
    """
    if fit is None:
        fit = fit_round(trainer, x, labels, seed=seed, x_test=x_test, y_test=y_test, start_weights=start_weights)
    if budget is None:
        return RoundResult(fit, None)
    labels = np.asarray(labels, dtype=np.int64)
    ctx = selection_context(fit.probs, fit.embeddings, labels >= 0, labels, head=fit.head,
                            dropout_rate=fit.dropout_rate, params=params)
    return RoundResult(fit, select_round(strategy, ctx, budget, random_state=selection_seed(seed, number), space=space,
                                         exclude=exclude))
