"""The analyzer's own selection as a strategy: uncertainty AND diversity AND novelty."""
from dataclasses import dataclass, field
from typing import Mapping

from labelnext import heuristics as alf
from labelnext.utils import checks
from labelnext import knn
from labelnext.strategies.base import Options, int_seed

# How each analysis option's value is checked (the analyses check them again, later, inside).
_VALUE_CHECKS = {
    ("uncertainty", "threshold_percentile"): checks.check_percentile,
    ("uncertainty", "method"): lambda v, name: checks.check_choice(v, name, alf.UNCERTAINTY_METHODS),
    ("diversity", "n_clusters"): checks.check_int,
    ("diversity", "distance_percentile"): checks.check_percentile,
    ("diversity", "algorithm"): lambda v, name: checks.check_choice(v, name, alf.KMEANS_ALGORITHMS),
    ("novelty", "k_neighbors"): checks.check_int,
    ("novelty", "novelty_percentile"): checks.check_percentile,
    ("novelty", "method"): lambda v, name: checks.check_choice(v, name, knn.KNN_METHODS),
}


@dataclass(frozen=True)
class IntersectionOptions(Options):
    """Options of ``intersection``: per-analysis options over ``AL_functions.ANALYSIS_DEFAULTS``.

    uncertainty, diversity, novelty : dict
        E.g. ``diversity={'n_clusters': 10}``. Options not given take the analyzer's
        defaults, except ``n_clusters`` and ``k_neighbors``, whose defaults are capped
        at the pool and labeled sizes.
    """

    uncertainty: Mapping = field(default_factory=dict)
    diversity: Mapping = field(default_factory=dict)
    novelty: Mapping = field(default_factory=dict)

    def __post_init__(self):
        given = self.as_dict()
        for name, opts in given.items():
            if not isinstance(opts, Mapping):
                raise ValueError(f"intersection option {name!r} must be a dict of {name} options, "
                                 f"got {type(opts).__name__}")
        alf.analysis_params(given)  # refuses unknown option names, listing the allowed ones
        for name, opts in given.items():
            for key, value in opts.items():
                _VALUE_CHECKS[name, key](value, key)


def intersection_strategy(ctx, budget, random_state=None):
    """The analyzer's uncertainty AND diversity AND novelty, ranked and filled to ``budget``.

    Runs :func:`AL_functions.analyze`, the same sequence the analyzer runs, so the
    benchmark measures the tool users run. ``n_clusters`` and ``k_neighbors`` default to
    the analyzer's defaults capped at the pool and labeled sizes.

    Options: :class:`IntersectionOptions` (``params['intersection']``).
    """
    given = ctx.options("intersection", IntersectionOptions).as_dict()
    opts = {name: dict(o) for name, o in given.items()}
    n_pool, n_labeled = len(ctx.pool_rows), int(ctx.labeled_mask.sum())
    defaults = alf.ANALYSIS_DEFAULTS
    diversity = opts["diversity"].setdefault("n_clusters", min(defaults["diversity"]["n_clusters"], n_pool))
    novelty = opts["novelty"].setdefault("k_neighbors", min(defaults["novelty"]["k_neighbors"], n_labeled))
    # Bounds that depend on this pool, checked before the (costly) analyses start.
    checks.check_int(diversity, "n_clusters", low=1, high=n_pool)
    checks.check_int(novelty, "k_neighbors", low=1, high=n_labeled)
    res = alf.analyze(ctx.probs, ctx.embeddings, ctx.labeled_mask, opts, budget, random_state=int_seed(random_state))
    return ctx.pool_rows[res["intersection"]["rows"]]
