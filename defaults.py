"""Option names, allowed values and defaults of the three analyses and the kNN search.

The one set of defaults for ``AL_functions.analyze``, the analyzer's ``run_*`` methods and
the command-line flags. NumPy-free and scikit-learn-free on purpose: the scripts build
their flags from it, so ``--help`` answers without importing the numerical stack.
"""

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
