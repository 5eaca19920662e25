"""Option names, allowed values and defaults of the three analyses and the kNN search,
and of the main job (its base model, early-stopping patience, retraining target, seeds compared).

The one set of defaults for ``AL_functions.analyze``, the analyzer's ``run_*`` methods and
the command-line flags. NumPy-free and scikit-learn-free on purpose: the scripts build
their flags from it, so ``--help`` answers without importing the numerical stack.
"""
from pathlib import Path

# The base model every script uses unless told otherwise: ``python train.py`` writes it.
# Relative to the working directory, never to the installed package.
DEFAULT_RUN = Path("models") / "500_train"
MODEL_FILE = "best_model.keras"
# Items per class wanted from the selection before retraining: the one default of the
# Python API and of --target-per-class (the demo's retraining is sized by it).
TARGET_PER_CLASS = 20
# Seeds the "AL vs random" comparison runs over by default. One: each seed is two more
# trainings, the demo's largest cost. One seed's difference is mostly training noise (three
# seeds of the demo read -0.011, +0.019, +0.031), so the report says it decides nothing and
# names --compare-seeds for the mean and spread.
COMPARE_SEEDS = 1
# Early stopping of the base model (train.py) and of the retraining: a fit stops after this
# many epochs without a better validation accuracy and keeps its best epoch. On the digits
# demo validation and test accuracy stop moving after the best epoch (9 for the base, 5 for
# the retraining; checked up to epoch 40): a patience of 15 spent half the base fit and three
# quarters of each retraining after it, for the same models. Not always the same: over three
# comparison seeds one of six retraining fits found a later best epoch with 15 (that seed's
# difference +0.036 instead of +0.019).
PATIENCE = 5

ANALYSES = ("uncertainty", "diversity", "novelty")
UNCERTAINTY_METHODS = ("entropy", "margin", "least_confidence", "combined")
KMEANS_ALGORITHMS = ("auto", "kmeans", "minibatch", "sampled")
KNN_METHODS = ("auto", "exact", "hnsw", "faiss", "ivf")
KNN_METRICS = ("euclidean", "cosine")
ANALYSIS_DEFAULTS = {
    "uncertainty": {"threshold_percentile": 50, "method": "combined"},
    "diversity": {"n_clusters": 20, "distance_percentile": 75, "algorithm": "auto"},
    "novelty": {"k_neighbors": 5, "novelty_percentile": 75, "method": "auto"},
}
