"""The main job: ``python AL_cycle.py`` (``--help`` lists the flags).

Trains the default base model if it is missing, runs uncertainty, diversity and
novelty, their intersection, the class-balance check and the retraining, exports the
embeddings for ``python -m gnn`` and prints the report. The code lives in
:mod:`labelnext.analysis`; ``from AL_cycle import ActiveLearningAnalyzer`` keeps working.
"""
import sys

from labelnext.analysis.main import *  # noqa: F401,F403
from labelnext.analysis.main import FLAGS, __getattr__, main  # noqa: F401
from labelnext.utils.console import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main, flags=FLAGS))
