"""The one Dataset record every loader returns, its errors and its content fingerprint."""
from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field, replace

import numpy as np

from labelnext.data import kinds


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
_ARCHIVE_EXTS = (".tar.gz", ".tgz", ".tar", ".zip")
_MIN_SIZE, _MAX_SIZE = 8, 1024
_LAYOUTS = ("a CIFAR-10 pickle folder (data_batch_1..5 + test_batch), an image-folder tree "
            "(ROOT/train/<class>/*.jpg|png [+ ROOT/test/<class>/, ROOT/unlabeled/] or ROOT/<class>/*.jpg), "
            "a .npz with x_train/y_train[/x_test/y_test], or a .tar.gz/.tgz/.tar/.zip of one of these")


class DatasetError(ValueError):
    """A dataset cannot be loaded as asked; the message says what to put where."""


@dataclass(repr=False)
class Dataset:
    """Items (images, table rows or texts) and labels, ready for the model.

    Attributes
    ----------
    name : str
        ``'digits'``, ``'cifar10'`` or the basename of the path (archive suffix removed).
    x_train : ndarray of shape (n_train, S, S, 3), uint8
        The training pool.
    y_train : ndarray of shape (n_train,), int64
        Class ids; ``-1`` where the label is unknown (``ROOT/unlabeled/`` images).
    x_test : ndarray of shape (n_test, S, S, 3), uint8, or None
    y_test : ndarray of shape (n_test,), int64, or None
    class_names : list of str
        Index = class id.
    train_paths : list of str or None
        Absolute source file of each training item (image and text folders), else None.
    source : str
        Absolute path loaded, or ``'sklearn.datasets.load_digits'``.
    kind : {'image', 'tabular', 'text'}
        ``tabular``: ``x_*`` float32 of shape (n, n_features); ``text``: object arrays of str.
        What differs between kinds is asked of :attr:`kind_info`.
    feature_names : list of str or None
        Column of each tabular feature (one-hot columns as ``name=value``).
    notes : list of str
        What loading did that a user should know (imputation, encoding, held-out split).
    test_paths : list of str or None
        Absolute source file of each test item, where ``train_paths`` has them and there is a test split.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list
    train_paths: list | None
    source: str
    kind: str = "image"
    feature_names: list | None = None
    notes: list = field(default_factory=list)
    test_paths: list | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes (``len(class_names)``)."""
        return len(self.class_names)

    @property
    def kind_info(self) -> kinds.Kind:
        """How items of this kind are previewed, modelled and reported (:mod:`labelnext.data.kinds`)."""
        return kinds.get(self.kind)

    @property
    def column_names(self) -> list:
        """A table's feature names, or ``f0, f1, ...`` when its file had no header."""
        return self.feature_names or [f"f{j}" for j in range(self.x_train.shape[1])]

    @property
    def has_labels(self) -> bool:
        """True when at least one training label is known."""
        return bool((np.asarray(self.y_train) >= 0).any())

    def __repr__(self):
        # The default dataclass repr would print the image arrays.
        test = None if self.x_test is None else self.x_test.shape
        return (f"Dataset(name={self.name!r}, kind={self.kind!r}, x_train={self.x_train.shape}, x_test={test}, "
                f"n_classes={self.n_classes}, unlabeled={int((self.y_train < 0).sum())}, "
                f"source={self.source!r})")


# --------------------------------------------------------------------------- validation

def _check_image_size(value, param):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not _MIN_SIZE <= value <= _MAX_SIZE:
        raise DatasetError(f"{param} must be an int in [{_MIN_SIZE}, {_MAX_SIZE}], got {value!r}")
    return int(value)


def _one_line(exc, limit=200):
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "dataset"


def _strip_suffix(name):
    for ext in _ARCHIVE_EXTS + (".npz", ".csv", ".tsv", ".parquet"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _progress(message):
    print(f"datasets: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- labels

def _as_labels(y, n_images, what, path, allow_unknown):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # keras.datasets stores labels as (n, 1)
    if y.ndim != 1 or len(y) != n_images:
        raise DatasetError(f"labels shapes mismatch in {path}: {what} has shape {np.shape(y)} "
                           f"but there are {n_images} images; expected ({n_images},) or ({n_images}, 1)")
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.array_equal(y, np.round(y))):
        raise DatasetError(f"{what} in {path} must hold integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64)
    low = -1 if allow_unknown else 0
    if len(y) and y.min() < low:
        raise DatasetError(f"{what} in {path} must be >= {low} (-1 = unknown, training pool only), got {y.min()}")
    return y


def _class_names(names, labels, path, default):
    top = max((int(y.max()) for y in labels if y is not None and len(y)), default=-1)
    if names is None:
        names = default if default is not None and top < len(default) else [str(c) for c in range(top + 1)]
    names = [c.decode() if isinstance(c, bytes) else str(c) for c in names]
    if top >= len(names):
        raise DatasetError(f"labels shapes mismatch in {path}: label {top} but class_names has {len(names)} entries")
    return names


def dataset_fingerprint(ds):
    """Content key for caches of anything computed from a dataset.

    Parameters
    ----------
    ds : Dataset

    Returns
    -------
    str
        ``'<name>-<S>px-n<n_train>-<digest>'``; the digest covers the name, source,
        shapes, all labels and EVERY image (train and test), so replacing any image under
        the same path gives a new key. Hashing is cheap next to one inference pass
        (blake2b runs at roughly 1 GB/s: CIFAR-10's 184 MB of pixels in a fraction of a second).
    """
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a Dataset, got {type(ds).__name__}")
    h = hashlib.blake2b(digest_size=8)
    test_shape = None if ds.x_test is None else ds.x_test.shape
    h.update(f"{ds.name}\0{ds.source}\0{ds.x_train.shape}\0{test_shape}\0".encode())
    for arr in (ds.y_train, ds.y_test):
        if arr is not None:
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    for arr in (ds.x_train, ds.x_test):
        if arr is not None:
            hash_rows(h, arr)
    n = len(ds.x_train)
    size = ds.x_train.shape[1] if ds.x_train.ndim == 4 else 0
    return f"{_slug(ds.name)}-{size}px-n{n}-{h.hexdigest()}"


def hash_rows(h, arr, block=4096):
    """Feed an array to a hash block by block (no contiguous copy of a large pool)."""
    if arr.dtype == object:  # texts: hash the characters, not the object pointers
        for text in arr:
            h.update(str(text).encode("utf-8", "surrogatepass") + b"\0")
        return
    for start in range(0, len(arr), block):
        h.update(np.ascontiguousarray(arr[start:start + block]).tobytes())


# Smallest labeled set for which a held-out split is drawn: below it every label is
# worth more for training than a test accuracy over a handful of items.
HOLDOUT_MIN_LABELED = 20


def with_holdout(ds, fraction=0.2, random_state=0):
    """Move a stratified ``fraction`` of the labeled training items to a test split.

    Used when a data set comes without one (an image folder with no ``test/``, a table
    with no ``--test`` file), so every run can report accuracy. Drawn once with a fixed
    seed (like digits' split), whatever the experiment seed, so indices are stable.

    Returns
    -------
    Dataset
        ``ds`` itself when it has a test split or too few labeled items (the reason is
        added to ``notes``), else a new Dataset whose training items keep their order.
    """
    if ds.x_test is not None:
        return ds
    labeled = np.flatnonzero(ds.y_train >= 0)
    counts = np.bincount(ds.y_train[labeled], minlength=ds.n_classes) if labeled.size else np.zeros(0, int)
    if labeled.size < HOLDOUT_MIN_LABELED or (counts[counts > 0] < 2).any():
        if labeled.size:
            ds.notes.append(f"no held-out split: {labeled.size} labeled items are too few "
                            f"(need {HOLDOUT_MIN_LABELED}, at least 2 per class); accuracy cannot be measured")
        return ds
    rng = np.random.RandomState(random_state)
    # Stratified: the same fraction of every class (at least one item), as sklearn's
    # train_test_split(stratify=...) would, without importing scikit-learn here.
    test_rows = np.concatenate([
        rng.permutation(rows)[:max(1, int(round(fraction * rows.size)))]
        for rows in (labeled[ds.y_train[labeled] == c] for c in range(ds.n_classes)) if rows.size])
    keep = np.ones(len(ds.y_train), dtype=bool)
    keep[test_rows] = False
    test_rows = np.sort(test_rows)
    note = (f"held-out split drawn: {test_rows.size} of {labeled.size} labeled items "
            f"({fraction:.0%}, stratified, seed {random_state})")
    return replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep], x_test=ds.x_train[test_rows],
                   y_test=ds.y_train[test_rows], notes=[*ds.notes, note],
                   train_paths=None if ds.train_paths is None else [p for p, k in zip(ds.train_paths, keep) if k],
                   test_paths=None if ds.train_paths is None else [ds.train_paths[i] for i in test_rows])
