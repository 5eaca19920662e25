"""A project's label-free features, computed on its first round and kept in its folder.

``features: patches`` keeps the patch features and their encoder (fitted on the pool, no
labels, :mod:`features.patches`); ``features: pretrained`` keeps EfficientNet-Lite2's, encoded
block by block so that a killed round resumes (:mod:`features.pretrained`). Either file is
``features_<name>.npz`` with a ``pool`` and a ``test`` array (empty without a test split); a
damaged file is said and recomputed (:func:`io.files.cached_arrays`), never a dead end.
"""
import time
from pathlib import Path

import numpy as np

from labelnext.features import pretrained
from labelnext.features.patches import FEATURE_MODELS, PatchEncoder
from labelnext.features.pretrained import encode_cached
from labelnext.io.files import cached_arrays


def resolve_features(features, kind_info, arch=None):
    """``features`` with ``'auto'`` resolved: ``pretrained`` for images when the ``pretrained`` extra is
    installed and ``arch`` (if named) reads feature vectors, else ``raw``."""
    if features != "auto":
        return features
    fits = arch is None or arch in FEATURE_MODELS
    return "pretrained" if kind_info.images and fits and pretrained.available() else "raw"


def kept_features(folder, features, ds, *, seed, progress):
    """The ``patches`` or ``pretrained`` features of ``ds``'s pool and test split (None without one),
    read from ``folder/features_<features>.npz`` or computed and kept there.

    Parameters
    ----------
    folder : Path
        The project folder.
    features : {'patches', 'pretrained'}
    ds : Dataset
    seed : int
        Seeds the patch encoder.
    progress : callable
        Gets one line per step.

    Returns
    -------
    pool : ndarray of shape (n_items, n_features), float32
    test : ndarray of shape (n_test, n_features), float32, or None
    """
    path = Path(folder) / f"features_{features}.npz"

    def empty_test(pool):
        # An empty test array where there is no test split: one file layout either way.
        return np.zeros((0, pool.shape[1]), np.float32)

    if features == "pretrained":
        def compute():
            # Block by block into features_pretrained-<key>.partial/ beside it: a killed round resumes.
            pool = encode_cached(ds.x_train, folder, name=path.stem, keep=False, progress=progress)
            test = (encode_cached(ds.x_test, folder, name=path.stem, keep=False, progress=progress)
                    if ds.x_test is not None else empty_test(pool))
            return pool, test

        names = ("pool", "test")
    else:
        def compute():
            t = time.perf_counter()
            enc = PatchEncoder(random_state=seed).fit(ds.x_train)
            pool = enc.transform(ds.x_train)
            test = enc.transform(ds.x_test) if ds.x_test is not None else empty_test(pool)
            progress(f"patch features {pool.shape} of the pool in {time.perf_counter() - t:.1f} s (kept in {path.name})")
            state = enc.state()
            return (pool, test, *(state[k] for k in PatchEncoder.STATE_FIELDS))

        names = ("pool", "test", *PatchEncoder.STATE_FIELDS)
    pool, test = cached_arrays(path, names, compute, log=progress)[:2]
    return pool, (test if ds.x_test is not None else None)
