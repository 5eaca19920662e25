"""What every strategy file shares: the selection context, typed options and small helpers.

A strategy file imports this module only (never the package ``__init__``, which imports
the strategy files to build the registry), so imports point one way:
``strategies/__init__`` -> ``strategies/<family>.py`` -> ``strategies/base.py``.
"""
from dataclasses import dataclass, field, fields, replace
from typing import Callable, Mapping, NamedTuple, Optional

import numpy as np
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext.utils import checks


class Registered(NamedTuple):
    """A registry entry: the function and the dataclass of its options (None: it takes none).

    Strategies are ``fn(ctx, budget, random_state=None) -> rows``; subpools are
    ``fn(ctx, random_state) -> unlabeled rows of ctx``.
    """

    fn: Callable
    options: Optional[type] = None


@dataclass(frozen=True)
class Options:
    """Base of the typed options of one strategy or subpool.

    A subclass is a frozen dataclass whose fields are the options with their defaults
    and whose ``__post_init__`` checks the values with ``checks.check_*``; it is built
    from the plain ``params[<name>]`` dict by :meth:`from_params`, which refuses names
    that are not fields.
    """

    @classmethod
    def from_params(cls, owner, given):
        """Build from ``given`` (a dict of option name -> value, an instance, or None for defaults)."""
        return checks.build_options(cls, owner, given)

    def as_dict(self):
        """Option name -> value, e.g. to pass on as keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class SelectionContext:
    """What a strategy may look at: model outputs for every row and the labels revealed so far.

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)
        Base-model class probabilities, labeled rows included.
    embeddings : ndarray of shape (n_samples, n_features)
        Base-model embeddings of the same rows (ndarray, memmap or ``knn.StandardizedView``).
    labeled_mask : ndarray of shape (n_samples,), bool
    labels : ndarray of shape (n_samples,), int64, optional
        Revealed labels; -1 for every unlabeled row (strategies never see pool labels).
    head : tuple (weights (n_features, n_classes), bias (n_classes,)), optional
        The model's softmax layer on top of ``embeddings``, so that modAL can call
        ``predict_proba`` on embedding rows (``modal_*``; without it they fit a softmax
        head on the labeled embeddings and say so).
    mc_probs : ndarray of shape (n_passes, n_samples, n_classes), optional
        Class probabilities from MC-dropout passes (read by ``bald`` only). When None,
        ``bald`` computes them from ``head`` and ``dropout_rate`` (only then, and only for it).
    dropout_rate : float in [0, 1), optional
        Rate of the Dropout layer between ``embeddings`` and ``head`` in the model
        (``backbones.head_dropout_rate``); with ``head`` it makes MC-dropout exact.
    params : dict of str -> dict or Options
        Options per strategy or subpool name, e.g. ``{'uncertainty_clustering': {'alpha': 0.2},
        'gnn': {'epochs': 100}, 'anchoral': {'subpool_size': 500}}``. ``strategies.select``
        checks them once and replaces each by its typed options; a strategy reads its
        own through :meth:`options`.
    """

    probs: np.ndarray
    embeddings: np.ndarray
    labeled_mask: np.ndarray
    labels: np.ndarray = None
    head: tuple = None
    params: dict = field(default_factory=dict)
    mc_probs: np.ndarray = None
    dropout_rate: float = None

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
        if self.dropout_rate is not None:
            self.dropout_rate = checks.check_float(self.dropout_rate, "dropout_rate", 0.0, 1.0, high_open=True)
        if self.params is None:
            self.params = {}
        if not isinstance(self.params, Mapping):
            raise ValueError(f"params must be a dict of strategy or subpool name -> options, "
                             f"got {type(self.params).__name__}")

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
                       labeled_mask=self.labeled_mask[rows], labels=self.labels[rows],
                       mc_probs=None if self.mc_probs is None else self.mc_probs[:, rows])

    def options(self, name, cls):
        """The typed options ``cls`` of strategy or subpool ``name``: as checked by ``select``,
        or built (and checked) here from ``params[name]`` when a strategy is called directly."""
        return checks.build_options(cls, f"params[{name!r}]", self.params.get(name))


# --------------------------------------------------------------------------- helpers
def int_seed(random_state):
    """An int seed for APIs that want one (``AL_functions.analyze``, the GNN), drawn from ``random_state``."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def softmax_head(x, weights, bias, dtype=np.float64):
    """``softmax(x @ weights + bias)`` row by row, in ``dtype``.

    Parameters
    ----------
    x : ndarray of shape (n_samples, n_features)
    weights : ndarray of shape (n_features, n_classes)
    bias : ndarray of shape (n_classes,)

    Returns
    -------
    probs : ndarray of shape (n_samples, n_classes)
    """
    z = np.asarray(x, dtype=dtype) @ np.asarray(weights, dtype=dtype) + np.asarray(bias, dtype=dtype)
    z -= z.max(axis=1, keepdims=True)  # exp of the largest logit is 1: no overflow
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p


def top_pool(ctx, scores_fn, budget, random_state):
    """The ``budget`` pool rows with the highest ``scores_fn(probs of the pool)``, ties broken at random."""
    pool = ctx.pool_rows
    scores = scores_fn(ctx.probs[pool])
    return pool[alf.select_top(scores, budget, random_state=random_state)]
