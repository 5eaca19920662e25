"""Label-free image features: k-means on whitened patches (Coates, Lee & Ng 2011).

A CNN trained from scratch on a few labels is a weak classifier and gives a weak space to
measure typicality, coverage and diversity in. This module learns features from the pool's
pixels alone, on a CPU in seconds, in the single-layer pipeline of Coates et al.; a linear
model trained on them (``--features patches`` in the benchmark and the loop) is both the
classifier and the space every strategy reads:

1. sample random ``p x p`` patches from the images;
2. normalise each patch's brightness and contrast (subtract its mean, divide by
   ``sqrt(variance + norm_eps)``);
3. ZCA-whiten them (:func:`fit_zca`);
4. learn ``K`` centroids with 10 iterations of k-means;
5. encode every image: each densely sampled patch (``stride``) gets the "triangle"
   activation ``max(0, mean_k(z) - z_k)``, ``z_k`` its distance to centroid ``k``
   (:func:`triangle_activation`), summed over the four quadrants of the image
   (:func:`quadrant_sum_pool`) -> ``4 K`` features;

:func:`patch_features` fits the encoder on a pool and encodes it (and e.g. a test set). A
linear classifier on these features (``backbones`` ``linear``, which standardises them)
is the classic use: Coates et al. report 77.9% on CIFAR-10 with 1,600 centroids and all 50,000 labels.

Every stochastic step takes ``random_state``; the encoding runs in blocks of images whose
distance matrix stays near ``checks.BLOCK_ELEMENTS`` floats.

References
----------
Coates, A., Lee, H. and Ng, A. Y. (2011). An Analysis of Single-Layer Networks in
Unsupervised Feature Learning. AISTATS.
"""
import numpy as np
from sklearn.cluster import KMeans
from sklearn.utils import check_random_state

from labelnext.data import kinds
from labelnext.utils.checks import BLOCK_ELEMENTS, check_choice, check_float, check_int

# Coates et al.'s constants for 0-255 pixels: 10 is added to each patch's variance (so
# flat patches are not blown up into noise) and 0.1 to the eigenvalues in ZCA whitening.
NORM_EPS = 10.0
ZCA_EPS = 0.1
# Lloyd iterations of k-means on the sampled patches, from centroids drawn among them: the 10
# of Coates et al. (100k patches x 400 centroids: about 7 s on one core).
KMEANS_ITER = 10
# What a model is trained on and the strategies read (the benchmark's and the loop's ``--features``):
# the data as loaded, or (images) these features; the models that take them, the first the default.
# What a model reads: the data, k-means patch features (here), pretrained features (pretrained.py) or
# the user's own embeddings (embeddings.py).
FEATURES = ("raw", "patches", "pretrained", "embeddings")
FEATURE_MODELS = ("linear", "mlp", "logreg", "spread", "blend", "auto")
# The model each kind of features gets unless one is named (docs/BENCHMARKS.md, "Which learner").
DEFAULT_FEATURE_MODEL = {"patches": "linear", "pretrained": "auto", "embeddings": "logreg"}
# Centroids of :func:`patch_features` (4 x as many features): on 7,000 CIFAR-10 images, 15 s on 2 cores.
N_CENTROIDS = 400


def _check_images(images, name="images"):
    images = np.asarray(images)
    if images.ndim == 3:  # grayscale (n, h, w): one channel
        images = images[..., None]
    if images.ndim != 4 or 0 in images.shape:
        raise ValueError(f"{name} must have shape (n, height, width[, channels]), got {images.shape}")
    if not np.issubdtype(images.dtype, np.number) or not np.isfinite(images).all():
        raise ValueError(f"{name} must be finite real numbers, got dtype {images.dtype}")
    return images


def _check_patch_size(patch_size, stride, shape):
    """Every image must hold at least two patch positions per side, so each quadrant has one."""
    side = min(shape[1], shape[2])
    check_int(stride, "stride", low=1)
    check_int(patch_size, "patch_size", low=1, high=max(1, side - stride))


def sample_patches(images, patch_size, n_patches, *, random_state=None):
    """``n_patches`` patches at uniformly random images and positions.

    Parameters
    ----------
    images : ndarray of shape (n, height, width, channels) (or (n, height, width))
    patch_size : int
    n_patches : int
    random_state : int, RandomState or None

    Returns
    -------
    patches : ndarray of shape (n_patches, patch_size * patch_size * channels), float32
        Each row is a patch flattened in (row, column, channel) order, as in :func:`image_patches`.
    """
    images = _check_images(images)
    n, h, w, _ = images.shape
    check_int(patch_size, "patch_size", low=1, high=min(h, w))
    check_int(n_patches, "n_patches", low=1)
    rng = check_random_state(random_state)
    i = rng.randint(0, n, n_patches)
    r = rng.randint(0, h - patch_size + 1, n_patches)
    c = rng.randint(0, w - patch_size + 1, n_patches)
    off = np.arange(patch_size)
    patches = images[i[:, None, None], r[:, None, None] + off[None, :, None], c[:, None, None] + off[None, None, :]]
    return patches.reshape(n_patches, -1).astype(np.float32)


def image_patches(images, patch_size, stride=1):
    """Every patch of every image on a grid with step ``stride``.

    Returns
    -------
    patches : ndarray of shape (n, grid_rows, grid_cols, patch_size * patch_size * channels), float32
        ``grid_rows = (height - patch_size) // stride + 1`` (columns likewise).
    """
    images = _check_images(images)
    win = np.lib.stride_tricks.sliding_window_view(images, (patch_size, patch_size), axis=(1, 2))
    win = win[:, ::stride, ::stride]  # (n, rows, cols, channels, p, p)
    n, rows, cols = win.shape[:3]
    return np.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3), dtype=np.float32).reshape(n, rows, cols, -1)


def normalize_patches(patches, eps=NORM_EPS):
    """Brightness and contrast normalisation of each row: ``(x - mean(x)) / sqrt(var(x) + eps)``.

    Parameters
    ----------
    patches : ndarray of shape (n_patches, n_pixels)
    eps : float >= 0
        In squared pixel units (10 for 0-255 pixels, Coates et al.).

    Returns
    -------
    ndarray of shape (n_patches, n_pixels), float32
    """
    x = np.asarray(patches, dtype=np.float32)
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.sqrt(x.var(axis=1, keepdims=True) + np.float32(eps))


def fit_zca(patches, eps=ZCA_EPS):
    """ZCA whitening fitted on ``patches``: ``white = (x - mean) @ matrix``.

    ``matrix = U diag(1 / sqrt(s + eps)) U^T`` from the eigendecomposition ``U diag(s) U^T`` of
    the patches' covariance; with ``eps`` small next to the eigenvalues, the whitened
    covariance is the identity. ZCA (rather than PCA whitening) keeps the result in pixel
    space, so the centroids still look like patches.

    Parameters
    ----------
    patches : ndarray of shape (n_patches, n_pixels), n_patches >= 2
    eps : float >= 0

    Returns
    -------
    mean : ndarray of shape (n_pixels,), float32
    matrix : ndarray of shape (n_pixels, n_pixels), float32, symmetric
    """
    x = np.asarray(patches, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"patches must have shape (n_patches >= 2, n_pixels), got {x.shape}")
    check_float(eps, "zca_eps", 0.0, None)
    mean = x.mean(axis=0)
    s, u = np.linalg.eigh(np.cov(x - mean, rowvar=False))
    matrix = (u / np.sqrt(np.maximum(s, 0.0) + eps)) @ u.T
    return mean.astype(np.float32), matrix.astype(np.float32)


def triangle_activation(x, centroids):
    """Coates et al.'s "triangle" k-means encoding: ``f_k(x) = max(0, mean_j(z_j) - z_k)``.

    ``z_k = ||x - c_k||``: a row activates the centroids closer than its average distance,
    more for closer ones, and about half of the features are zero.

    Parameters
    ----------
    x : ndarray of shape (n, d)
    centroids : ndarray of shape (k, d)

    Returns
    -------
    ndarray of shape (n, k), float32
    """
    x = np.asarray(x, dtype=np.float32)
    c = np.asarray(centroids, dtype=np.float32)
    sq = (x * x).sum(axis=1)[:, None] + (c * c).sum(axis=1)[None, :] - 2.0 * (x @ c.T)
    z = np.sqrt(np.maximum(sq, 0.0))
    return np.maximum(z.mean(axis=1, keepdims=True) - z, 0.0)


def quadrant_sum_pool(acts):
    """Sum a grid of activations over its four quadrants.

    Parameters
    ----------
    acts : ndarray of shape (n, rows, cols, k), rows >= 2 and cols >= 2
        The top and left halves take the middle row / column of an odd grid.

    Returns
    -------
    ndarray of shape (n, 4 k): top-left, top-right, bottom-left, bottom-right sums
    """
    rows, cols = acts.shape[1:3]
    if rows < 2 or cols < 2:
        raise ValueError(f"acts must have at least a 2 x 2 grid to pool over quadrants, got {rows} x {cols}")
    hr, hc = (rows + 1) // 2, (cols + 1) // 2
    parts = [acts[:, :hr, :hc], acts[:, :hr, hc:], acts[:, hr:, :hc], acts[:, hr:, hc:]]
    return np.concatenate([p.sum(axis=(1, 2), dtype=np.float64) for p in parts], axis=1).astype(np.float32)


class PatchEncoder:
    """The learned part of the pipeline: patch normalisation, ZCA whitening, k-means centroids.

    Parameters
    ----------
    patch_size : int, default 6
    n_centroids : int, default :data:`N_CENTROIDS`
        ``K``; :meth:`transform` returns ``4 K`` features.
    n_patches : int, default 100_000
        Patches sampled from the images to fit the whitening and the centroids.
    stride : int, default 1
        Step of the dense patch grid when encoding.
    norm_eps, zca_eps : float
        See :func:`normalize_patches` and :func:`fit_zca` (defaults for 0-255 pixels).
    random_state : int, RandomState or None
        Seeds the patch sample and k-means.

    Attributes
    ----------
    mean_ : ndarray of shape (d,), whiten_ : ndarray of shape (d, d)
    centroids_ : ndarray of shape (n_centroids, d), in the whitened space
    """

    def __init__(self, patch_size=6, n_centroids=N_CENTROIDS, n_patches=100_000, stride=1, norm_eps=NORM_EPS,
                 zca_eps=ZCA_EPS, random_state=None):
        self.patch_size, self.n_centroids, self.n_patches, self.stride = patch_size, n_centroids, n_patches, stride
        self.norm_eps, self.zca_eps, self.random_state = norm_eps, zca_eps, random_state

    def _whiten(self, patches):
        return (normalize_patches(patches, self.norm_eps) - self.mean_) @ self.whiten_

    def fit(self, images):
        """Learn the whitening and the centroids from ``images`` (no labels).

        Parameters
        ----------
        images : ndarray of shape (n, height, width[, channels]), 0-255 pixels
        """
        images = _check_images(images)
        _check_patch_size(self.patch_size, self.stride, images.shape)
        check_int(self.n_centroids, "n_centroids", low=1, high=self.n_patches)
        check_float(self.norm_eps, "norm_eps", 0.0, None)
        rng = check_random_state(self.random_state)
        patches = normalize_patches(sample_patches(images, self.patch_size, self.n_patches, random_state=rng),
                                    self.norm_eps)
        self.mean_, self.whiten_ = fit_zca(patches, self.zca_eps)
        white = (patches - self.mean_) @ self.whiten_
        km = KMeans(n_clusters=self.n_centroids, init="random", n_init=1, max_iter=KMEANS_ITER,
                    random_state=rng.randint(2**31 - 1))
        self.centroids_ = km.fit(white).cluster_centers_.astype(np.float32)
        return self

    def transform(self, images):
        """The ``4 K`` quadrant-pooled triangle activations of each image, in blocks.

        Returns
        -------
        features : ndarray of shape (n, 4 * n_centroids), float32
        """
        images = _check_images(images)
        _check_patch_size(self.patch_size, self.stride, images.shape)
        rows = (images.shape[1] - self.patch_size) // self.stride + 1
        cols = (images.shape[2] - self.patch_size) // self.stride + 1
        # A block's distance matrix (its patches x K) holds about BLOCK_ELEMENTS floats.
        step = max(1, BLOCK_ELEMENTS // (rows * cols * self.n_centroids))
        out = np.empty((len(images), 4 * self.n_centroids), dtype=np.float32)
        for start in range(0, len(images), step):
            grid = image_patches(images[start:start + step], self.patch_size, self.stride)
            b = grid.shape[0]
            acts = triangle_activation(self._whiten(grid.reshape(b * rows * cols, -1)), self.centroids_)
            out[start:start + b] = quadrant_sum_pool(acts.reshape(b, rows, cols, -1))
        return out

    # The names of :meth:`state`, in its order.
    STATE_FIELDS = ("patch_size", "stride", "norm_eps", "mean", "whiten", "centroids")

    def state(self):
        """What :meth:`from_state` needs to encode more images as this fitted encoder does: a dict of
        arrays named :attr:`STATE_FIELDS`."""
        return dict(zip(self.STATE_FIELDS, (np.int64(self.patch_size), np.int64(self.stride),
                                             np.float64(self.norm_eps), self.mean_, self.whiten_, self.centroids_)))

    @classmethod
    def from_state(cls, state):
        """The fitted encoder that :meth:`state` describes (e.g. read back from an ``.npz``)."""
        enc = cls(int(state["patch_size"]), len(state["centroids"]), stride=int(state["stride"]),
                  norm_eps=float(state["norm_eps"]))
        enc.mean_, enc.whiten_ = np.asarray(state["mean"]), np.asarray(state["whiten"])
        enc.centroids_ = np.asarray(state["centroids"])
        return enc


def features_model(features, kind, model=None):
    """The model for ``features`` on data of ``kind``: ``model`` (None: the kind's default, chosen by
    the caller) for ``raw``; for other features, ``model`` or :data:`DEFAULT_FEATURE_MODEL`'s, refused unless the kind allows
    them (:attr:`kinds.Kind.features`: patches and pretrained need images) and ``model`` is one of
    :data:`FEATURE_MODELS`."""
    check_choice(features, "features", FEATURES)
    if features == "raw":
        return model
    kinds.check_allowed("features", features, kind, "features")
    if model is None:
        return DEFAULT_FEATURE_MODEL[features]
    return check_choice(model, "model", FEATURE_MODELS)


def patch_features(pool, *others, patch_size=6, n_centroids=N_CENTROIDS, n_patches=100_000, stride=1, random_state=None):
    """Label-free features of images (Coates, Lee & Ng 2011; see the module): a
    :class:`PatchEncoder` fitted on ``pool`` alone (no labels), applied to ``pool`` and to each of ``others``.

    Parameters
    ----------
    pool : ndarray of shape (n, height, width[, channels]), 0-255 pixels
        ``min(height, width) >= patch_size + stride``.
    *others : ndarrays of images of the same height, width and channels (e.g. a test set)
    patch_size, n_centroids, n_patches, stride : int
        See :class:`PatchEncoder`.
    random_state : int, RandomState or None

    Returns
    -------
    list of ndarray of shape (len(images), 4 * n_centroids), float32: ``pool``'s, then each of ``others``'
    """
    enc = PatchEncoder(patch_size, n_centroids, n_patches, stride, random_state=random_state).fit(pool)
    return [enc.transform(images) for images in (pool, *others)]
