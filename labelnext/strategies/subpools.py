"""Subpool adapters (AnchorAL, SEALS, random): ``fn(ctx, random_state) -> unlabeled rows of ctx``.

A composite strategy ``<subpool>_<strategy>`` (built in ``strategies/__init__``) runs the
strategy on the rows one of these returns, plus the labeled rows. The subpools
themselves are in ``anchoral.py``.
"""
from dataclasses import dataclass

from labelnext.strategies import anchoral
from labelnext.utils import checks
from labelnext import knn
from labelnext.strategies.base import Options


@dataclass(frozen=True)
class AnchorALOptions(Options):
    """Options of the ``anchoral`` subpool (see :func:`anchoral.anchoral_subpool`)."""

    num_anchors: int = 10
    k_neighbors: int = 50
    subpool_size: int = 1000
    method: str = "auto"

    def __post_init__(self):
        checks.check_int(self.num_anchors, "num_anchors", low=1)
        checks.check_int(self.k_neighbors, "k_neighbors", low=1)
        checks.check_int(self.subpool_size, "subpool_size", low=1)
        checks.check_choice(self.method, "method", knn.KNN_METHODS)


@dataclass(frozen=True)
class SealsOptions(Options):
    """Options of the ``seals`` subpool (see :func:`anchoral.seals_subpool`)."""

    k_neighbors: int = 50
    method: str = "auto"

    def __post_init__(self):
        checks.check_int(self.k_neighbors, "k_neighbors", low=1)
        checks.check_choice(self.method, "method", knn.KNN_METHODS)


@dataclass(frozen=True)
class RandomSubpoolOptions(Options):
    """Options of the ``randsub`` subpool (see :func:`anchoral.random_subpool`)."""

    subpool_size: int = 1000

    def __post_init__(self):
        checks.check_int(self.subpool_size, "subpool_size", low=1)


# Standardised like every other distance in the project (raw MobileNetV3 embeddings can be
# ~1e-11); the lazy view keeps a 1M pool from being copied.
def anchoral_pool(ctx, random_state):
    """AnchorAL's subpool of ``ctx`` (options: :class:`AnchorALOptions`, ``params['anchoral']``)."""
    opts = ctx.options("anchoral", AnchorALOptions)
    return anchoral.anchoral_subpool(knn.StandardizedView(ctx.embeddings), ctx.labeled_mask, ctx.labels,
                                     random_state=random_state, **opts.as_dict())


def seals_pool(ctx, random_state):
    """SEALS's subpool of ``ctx`` (options: :class:`SealsOptions`, ``params['seals']``)."""
    opts = ctx.options("seals", SealsOptions)
    return anchoral.seals_subpool(knn.StandardizedView(ctx.embeddings), ctx.labeled_mask,
                                  random_state=random_state, **opts.as_dict())


def random_pool(ctx, random_state):
    """A random subpool of ``ctx`` (options: :class:`RandomSubpoolOptions`, ``params['randsub']``)."""
    opts = ctx.options("randsub", RandomSubpoolOptions)
    return anchoral.random_subpool(ctx.labeled_mask, opts.subpool_size, random_state=random_state)
