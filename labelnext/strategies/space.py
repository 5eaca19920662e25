"""Where the distance-based strategies measure distances: the selection space.

``model`` (the default): the base model's embeddings, as every strategy gets them.
``lsa``: latent semantic analysis of the pool's text, learned without labels (sublinear
TF-IDF of word uni- and bigrams, truncated SVD, unit-length rows; Deerwester et al. 1990),
computed once per seed, for the strategies whose embeddings only serve distances between
items (:data:`SPACE_STRATEGIES`: typicality, coverage, diversity; ``auto`` when it picks
one of them). The classifier is still the base model, and the strategies that need its
head or gradients (BADGE, modAL, the analyzer's intersection, ...) and subpool composites
(``anchoral_dbal``, whose retrieval reads the embeddings too) keep its embeddings.
The loop's round (:func:`loop.round.select_round`) puts it in place of the embeddings for the
method a round runs, in ``al round`` (``al init --selection-space``) and the label-efficiency
benchmark (``--selection-space``) alike.
"""
import time

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from labelnext.data import kinds
from labelnext.training.backbones import MAX_TOKENS

SELECTION_SPACES = ("model", "lsa")
SPACE_STRATEGIES = frozenset({"typiclust", "probcover", "coreset", "dbal", "uncertainty_clustering", "cluster_margin"})
# Dimensions of the LSA space.
LSA_COMPONENTS = 100


def check_space(selection_space, kind):
    """Refuse a selection space the data kind does not allow (:attr:`kinds.Kind.spaces`: ``lsa`` needs text)."""
    kinds.check_allowed("spaces", selection_space, kind, "selection_space")


def lsa_features(texts, n_components=LSA_COMPONENTS, random_state=None):
    """Unit-length LSA rows of ``texts`` (array-like of str): ndarray (n, n_components), float32."""
    tfidf = TfidfVectorizer(ngram_range=(1, 2), max_features=MAX_TOKENS, sublinear_tf=True)
    x = tfidf.fit_transform([str(t) for t in np.ravel(texts)])
    z = TruncatedSVD(min(n_components, x.shape[1] - 1), random_state=random_state).fit_transform(x)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z.astype(np.float32)


def pool_space(selection_space, x_pool, *, random_state):
    """The pool's selection features: None for ``model`` (the strategies use the model's
    embeddings), else ndarray of shape (n_pool, n_features), and the seconds taken."""
    if selection_space != "lsa":
        return None, 0.0
    start = time.perf_counter()
    space = lsa_features(x_pool, random_state=random_state)
    return space, time.perf_counter() - start


def uses_space(method):
    """Whether ``method`` (a strategy name, ``auto`` already resolved to its pick) measures
    distances only (:data:`SPACE_STRATEGIES`)."""
    return method in SPACE_STRATEGIES


def may_use_space(strategies):
    """Whether any of ``strategies`` (names) can read the selection space in some round: one of
    :data:`SPACE_STRATEGIES`, or ``auto``. Where none can, the space need not be computed."""
    return any(name == "auto" or name in SPACE_STRATEGIES for name in strategies)

