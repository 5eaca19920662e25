"""Selection strategies behind one signature, for the benchmark and ``analyzer.select``.

Every strategy is ``fn(ctx, budget, random_state=None) -> rows``: ``ctx`` is a
:class:`SelectionContext` (probabilities and embeddings of every row, the labeled
mask, the labels known so far, per-strategy options), and ``rows`` are exactly
``budget`` unique row numbers of those arrays, none of them labeled. :func:`select`
checks that contract for every call, so a strategy cannot silently return fewer,
duplicated or already-labeled items.

Names (one file per family)
---------------------------
``uncertainty.py``: ``random``, ``entropy``, ``margin``, ``least_confidence``;
``bald.py``: ``bald`` (mutual information over MC-dropout passes, ``ctx.mc_probs``);
``typiclust.py``, ``probcover.py``: ``typiclust``, ``probcover`` (typicality and coverage:
the low-budget, cold-start methods); ``coreset.py``: ``coreset`` (k-center greedy);
``badge.py``: ``badge``; ``cluster_margin.py``: ``cluster_margin``; ``dbal.py``: ``dbal``
(uncertainty with diversity), also registered as ``uncertainty_clustering``;
``intersection.py``: ``intersection``
(the analyzer's uncertainty AND diversity AND novelty, filled to the budget by combined
rank); ``gnn.py``: ``gnn`` (GraphSAGE sidecar, hybrid score); ``modal.py``:
``modal_entropy`` and ``modal_ranked_batch`` (modAL's own query strategies: a peer
baseline). A composite name ``<subpool>_<strategy>`` (``anchoral_entropy``,
``seals_margin``, ``randsub_entropy``) runs ``<strategy>`` on the subpool that
``<subpool>`` retrieves (``subpools.py``, over ``anchoral.py``).

Options
-------
``ctx.params`` maps a strategy or subpool name to its options (a dict or the typed
dataclass, e.g. ``{'gnn': {'epochs': 50}, 'anchoral': AnchorALOptions(subpool_size=500)}``).
:func:`select` builds and checks every one before any work: an unknown name, an
unknown option or a bad value raises ``ValueError``.

Budget
------
``budget`` must be an integer in [1, number of pool rows]: an oversized budget raises
``ValueError`` (never clipped), since a benchmark that asked for 25 labels and got 20
would compare unequal budgets. An empty pool raises ``checks.EmptyPoolError``.

Adding a strategy
-----------------
Write ``fn(ctx, budget, random_state=None)`` (and, if it has options, a frozen
:class:`Options` dataclass that checks its values in ``__post_init__``; the strategy reads
them with ``ctx.options(name, ThatOptions)``) in a family file, then add one line to
:data:`STRATEGIES`: ``"name": Registered(family.fn, family.ThatOptions)``.
"""
import copy
from collections.abc import Mapping

import numpy as np
from sklearn.utils import check_random_state

from labelnext.utils import checks
from labelnext.gnn.options import GNNOptions
from labelnext.strategies import (
    auto,
    badge,
    bald,
    cluster_margin,
    coreset,
    dbal,
    gnn,
    intersection,
    modal,
    probcover,
    subpools,
    typiclust,
    uncertainty,
)
from labelnext.strategies.bald import BaldOptions
from labelnext.strategies.base import Options, Registered, SelectionContext
from labelnext.strategies.cluster_margin import ClusterMarginOptions
from labelnext.strategies.dbal import DbalOptions
from labelnext.strategies.intersection import IntersectionOptions
from labelnext.strategies.probcover import ProbCoverOptions
from labelnext.strategies.subpools import AnchorALOptions, RandomSubpoolOptions, SealsOptions
from labelnext.strategies.typiclust import TypiClustOptions

__all__ = ["STRATEGIES", "SUBPOOLS", "Options", "Registered", "SelectionContext", "available_strategies",
           "check_params", "get_strategy", "register_subpool", "select", "selection_note", "AnchorALOptions",
           "IntersectionOptions", "RandomSubpoolOptions", "SealsOptions", "TypiClustOptions", "ProbCoverOptions",
           "ClusterMarginOptions", "DbalOptions", "BaldOptions"]

# name -> Registered(fn(ctx, budget, random_state) -> rows, options dataclass or None)
STRATEGIES = {
    "random": Registered(uncertainty.random_strategy),
    "entropy": Registered(uncertainty.entropy_strategy),
    "margin": Registered(uncertainty.margin_strategy),
    "least_confidence": Registered(uncertainty.least_confidence_strategy),
    "intersection": Registered(intersection.intersection_strategy, IntersectionOptions),
    "bald": Registered(bald.bald_strategy, BaldOptions),
    "typiclust": Registered(typiclust.typiclust_strategy, TypiClustOptions),
    "probcover": Registered(probcover.probcover_strategy, ProbCoverOptions),
    "coreset": Registered(coreset.coreset_strategy),
    "badge": Registered(badge.badge_strategy),
    "cluster_margin": Registered(cluster_margin.cluster_margin_strategy, ClusterMarginOptions),
    "dbal": Registered(dbal.dbal_strategy, DbalOptions),
    # The name users know, now the method it stands for (Zhdanov 2019); reads params['uncertainty_clustering'].
    "uncertainty_clustering": Registered(dbal.uncertainty_clustering_strategy, DbalOptions),
    "gnn": Registered(gnn.gnn_strategy, GNNOptions),
    "modal_entropy": Registered(modal.modal_entropy_strategy),
    "modal_ranked_batch": Registered(modal.modal_ranked_batch_strategy),
    "auto": Registered(auto.auto_strategy, auto.AutoOptions),
}

# name -> Registered(fn(ctx, random_state) -> unlabeled rows of ctx, options dataclass or None).
# Names hold no '_' so that '<subpool>_<strategy>' splits at the first one.
SUBPOOLS = {
    "anchoral": Registered(subpools.anchoral_pool, AnchorALOptions),
    "seals": Registered(subpools.seals_pool, SealsOptions),
    "randsub": Registered(subpools.random_pool, RandomSubpoolOptions),
}


def register_subpool(name, fn, options=None):
    """Make ``<name>_<strategy>`` available for every strategy.

    Parameters
    ----------
    name : str
        Non-empty, without ``'_'``.
    fn : callable ``fn(ctx, random_state) -> rows``
        Unlabeled rows of ``ctx`` to run the strategy on.
    options : Options subclass or None
        The typed options read from ``ctx.params[name]``.
    """
    if not name or "_" in name:
        raise ValueError(f"subpool name must be non-empty without '_', got {name!r}")
    SUBPOOLS[name] = Registered(fn, options)


def _composite(prefix, base):
    def run(ctx, budget, random_state=None):
        rng = check_random_state(random_state)
        sub = np.unique(np.asarray(SUBPOOLS[prefix].fn(ctx, rng), dtype=np.int64))
        if ctx.labeled_mask[sub].any():
            raise RuntimeError(f"subpool {prefix!r} returned labeled rows")
        if len(sub) < budget:
            # A subpool smaller than the budget is topped up at random so every strategy
            # gets the same number of labels per round.
            rest = np.setdiff1d(ctx.pool_rows, sub)
            sub = np.union1d(sub, rng.choice(rest, budget - len(sub), replace=False))
        keep = np.concatenate([np.flatnonzero(ctx.labeled_mask), sub])
        rows = STRATEGIES[base].fn(ctx.subset(keep), budget, rng)
        return keep[np.asarray(rows, dtype=np.int64)]

    run.__name__ = f"{prefix}_{base}"
    run.__doc__ = f"``{base}`` run on the ``{prefix}`` subpool (plus the labeled rows)."
    return run


def available_strategies():
    """Plain names (composites ``<subpool>_<name>`` are accepted too)."""
    return list(STRATEGIES)


def get_strategy(name):
    """The strategy function ``fn(ctx, budget, random_state=None)`` for ``name`` (plain or
    ``<subpool>_<strategy>``)."""
    if name in STRATEGIES:
        return STRATEGIES[name].fn
    prefix, _, base = str(name).partition("_")
    if prefix in SUBPOOLS and base in STRATEGIES:
        return _composite(prefix, base)
    raise ValueError(f"strategy must be one of {list(STRATEGIES)} or '<subpool>_<strategy>' with subpool in "
                     f"{list(SUBPOOLS)}, got {name!r}")


def check_params(params):
    """Every section of ``params`` as its typed options, checked.

    Parameters
    ----------
    params : dict of str -> dict, Options or None
        Keys are strategy or subpool names; a value of None or {} stands for the defaults.

    Returns
    -------
    dict of str -> Options
        One entry per section that has options (sections of option-less names are dropped).
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict of strategy or subpool name -> options, got {type(params).__name__}")
    typed = {}
    for name, given in params.items():
        kind, entry = ("strategy", STRATEGIES[name]) if name in STRATEGIES else ("subpool", SUBPOOLS.get(name))
        if entry is None:
            raise ValueError(f"params has options for {name!r}, which is no strategy or subpool; strategies are "
                             f"{list(STRATEGIES)}, subpools {list(SUBPOOLS)}")
        if entry.options is None:
            if given:
                raise ValueError(f"{kind} {name!r} takes no options, got {given!r}")
            continue
        typed[name] = checks.build_options(entry.options, f"{kind} {name!r}", given)
    return typed


def selection_note(name, ctx, budget):
    """What the summary of strategy ``name`` on ``ctx`` should say about how it ran, or None.

    ``auto``: the method it picks and why (:func:`strategies.auto.auto_choice`); ``modal_*``
    without ``ctx.head``: the softmax head fitted in the model's place (:func:`strategies.modal.head_note`).
    A composite ``<subpool>_<strategy>`` says what its strategy says.

    Returns
    -------
    note : str or None
    """
    get_strategy(name)
    base = name if name in STRATEGIES else name.partition("_")[2]
    if base == "auto":
        return f"auto: {auto.auto_choice(ctx, budget)[1]}"
    if base.startswith("modal_"):
        return modal.head_note(ctx)
    return None


def select(name, ctx, budget, random_state=None):
    """Run strategy ``name`` and check its answer.

    ``ctx.params`` and ``budget`` are checked before the strategy runs.

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
    # A shallow copy with typed options: the arrays were checked when ctx was built.
    ctx = copy.copy(ctx)
    ctx.params = check_params(ctx.params)
    rows = np.asarray(fn(ctx, budget, random_state), dtype=np.int64)
    if rows.shape != (budget,) or len(np.unique(rows)) != budget:
        raise RuntimeError(f"strategy {name!r} returned {len(np.unique(rows))} unique of {rows.size} rows, "
                           f"expected {budget} unique")
    if rows.min() < 0 or rows.max() >= len(ctx.labeled_mask) or ctx.labeled_mask[rows].any():
        raise RuntimeError(f"strategy {name!r} returned rows outside the pool")
    return rows
