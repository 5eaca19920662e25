"""The active-learning heuristics as pure functions on arrays (scores, masks, selections).

They live in :mod:`labelnext.heuristics`; ``import AL_functions`` keeps working.
"""
from labelnext.heuristics import *  # noqa: F401,F403
