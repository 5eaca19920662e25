"""Score-based strategies: the top of one uncertainty score, and the random baseline they must beat.

Each ranks the pool rows by a pure score of the base model's probabilities
(``AL_functions.*_scores``) and takes the top ``budget`` with random tie-breaking.
"""
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext.strategies.base import top_pool


def random_strategy(ctx, budget, random_state=None):
    """``budget`` pool rows uniformly at random: the baseline every strategy must beat."""
    return check_random_state(random_state).choice(ctx.pool_rows, budget, replace=False)


def entropy_strategy(ctx, budget, random_state=None):
    """Top-``budget`` pool rows by predictive entropy."""
    return top_pool(ctx, alf.entropy_scores, budget, random_state)


def margin_strategy(ctx, budget, random_state=None):
    """Top-``budget`` pool rows by smallest top-1 / top-2 margin."""
    return top_pool(ctx, alf.margin_scores, budget, random_state)


def least_confidence_strategy(ctx, budget, random_state=None):
    """Top-``budget`` pool rows by 1 - max probability."""
    return top_pool(ctx, alf.least_confidence_scores, budget, random_state)
