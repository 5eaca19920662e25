"""Synthetic pools for the scale benchmark: clustered embeddings and graded probabilities.

Embeddings: unit Gaussian noise around ``n_centers`` centres (not uniform noise, so
KMeans and nearest neighbours have structure to find). Each centre belongs to a
class; probabilities are a softmax of a linear map towards the class directions
with a temperature drawn per item, so uncertainty ranges from confident to flat.
"""
import numpy as np

_CHUNK = 65_536


def make_pool(n, dim=576, n_classes=10, n_labeled=5000, *, n_centers=50, spread=1.0, random_state=0, out=None):
    """A clustered pool, generated chunk by chunk (peak memory ~ the embeddings themselves).

    Parameters
    ----------
    n, dim, n_classes, n_labeled : int
    n_centers : int
        Gaussian clusters; centre ``j`` belongs to class ``j % n_classes``.
    spread : float
        Scale of the centres relative to the unit noise.
    out : array-like of shape (n, dim), float32, optional
        Where to write the embeddings (e.g. an ``open_memmap``); default: a new array.

    Returns
    -------
    embeddings : ndarray of shape (n, dim), float32
    probs : ndarray of shape (n, n_classes), float32
    labels : ndarray of shape (n,), int64
    labeled_mask : ndarray of shape (n,), bool
    """
    rng = np.random.default_rng(random_state)
    centres = rng.normal(scale=spread, size=(n_centers, dim)).astype(np.float32)
    centre_class = np.arange(n_centers) % n_classes
    # Class directions: the mean of the class's centres, unit length.
    w = np.stack([centres[centre_class == c].mean(axis=0) for c in range(n_classes)], axis=1)
    w /= np.linalg.norm(w, axis=0, keepdims=True)
    assign = rng.integers(0, n_centers, n)
    labels = centre_class[assign].astype(np.int64)
    # Log-uniform temperature per item: some items confident, some near-uniform.
    temperature = np.exp(rng.uniform(np.log(0.3), np.log(30.0), n)).astype(np.float32)
    emb = np.empty((n, dim), dtype=np.float32) if out is None else out
    probs = np.empty((n, n_classes), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        block = rng.standard_normal((stop - start, dim), dtype=np.float32)
        block += centres[assign[start:stop]]
        emb[start:stop] = block
        logits = (block @ w) / temperature[start:stop, None]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        probs[start:stop] = p / p.sum(axis=1, keepdims=True)
    labeled_mask = np.zeros(n, dtype=bool)
    labeled_mask[rng.choice(n, min(n_labeled, n - 1), replace=False)] = True
    return emb, probs, labels, labeled_mask
