"""Argument checks shared by every layer (heuristics, kNN, strategies, AnchorAL, GNN, scripts).

Each ``check_*`` returns the normalised value or raises ``ValueError`` naming the
parameter, the value received and what is allowed. Also the block iteration that
checks and streams large (memory-mapped) arrays without loading them whole.
"""
import dataclasses
import numbers
from collections.abc import Mapping

import numpy as np

# Elements of one temporary block (float32): 16 MB. Blocks below glibc's 32 MB mmap
# threshold are reused instead of page-faulted in anew: standardising 300k x 576 in
# 111k-row blocks took 1.5 s, in 7k-row blocks 0.15 s.
BLOCK_ELEMENTS = 4_000_000


class EmptyPoolError(ValueError):
    """Raised when a selection is asked of an empty pool."""


# --------------------------------------------------------------------------- checks
def check_probs(probs, name="probs", atol=1e-3):
    """Validate class probabilities: 2-D, finite, non-negative, rows summing to 1.

    Returns
    -------
    probs : ndarray of shape (n_samples, n_classes), float32
    """
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n_samples, n_classes >= 2), got shape {probs.shape}")
    if not np.issubdtype(probs.dtype, np.number) or np.iscomplexobj(probs):
        raise ValueError(f"{name} must be real numbers, got dtype {probs.dtype}")
    probs = probs.astype(np.float32, copy=False)
    if not np.isfinite(probs).all():
        raise ValueError(f"{name} contains NaN or infinite values; expected probabilities in [0, 1]")
    if (probs < 0).any():
        raise ValueError(f"{name} contains negative values; expected probabilities in [0, 1]")
    sums = probs.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise ValueError(
            f"{name} rows must sum to 1 (within {atol}); row {bad[0]} sums to {sums[bad[0]]:.4f} "
            f"({bad.size} bad rows): pass softmax outputs, not logits"
        )
    return probs


def check_embeddings(embeddings, name="embeddings", n_samples=None):
    """Validate a finite 2-D embedding matrix (kept as is when already float32; memmaps stay memmaps,
    :class:`StandardizedView` stays lazy)."""
    lazy = hasattr(embeddings, "check_finite")  # knn.StandardizedView: read lazily, checked by itself
    if not (lazy or isinstance(embeddings, np.ndarray)):
        embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_samples, n_features), got shape {embeddings.shape}")
    if not np.issubdtype(embeddings.dtype, np.number) or np.iscomplexobj(embeddings):
        raise ValueError(f"{name} must be real numbers, got dtype {embeddings.dtype}")
    if n_samples is not None and embeddings.shape[0] != n_samples:
        raise ValueError(f"{name} has {embeddings.shape[0]} rows but {n_samples} were expected")
    if lazy:
        embeddings.check_finite(name)
        return embeddings
    for start, stop in chunks(embeddings.shape[0], rows_per_block(embeddings.shape[1])):
        if not np.isfinite(embeddings[start:stop]).all():
            raise ValueError(f"{name} contains NaN or infinite values (first bad block: rows {start}-{stop - 1})")
    return embeddings


def check_percentile(value, name):
    """Percentiles are numbers in [0, 100]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 100:
        raise ValueError(f"{name} must be a number between 0 and 100, got {value!r}")
    return float(value)


def check_int(value, name, low=1, high=None):
    """An integer in [low, high]; names the parameter and the allowed range when not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer between {low} and {high}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_float(value, name, low, high, *, low_open=False, high_open=False):
    """A finite real number in [low, high] (or open at either end); ``high=None``: no upper bound."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high is None else "]"
        raise ValueError(f"{name} must be a number in {lo}{low}, {'inf' if high is None else high}{hi}, got {value!r}")
    return float(value)


def build_options(cls, owner, given):
    """A frozen options dataclass ``cls`` from ``given`` (a dict, an instance, or None for the defaults).

    Names that are not fields are refused with the allowed ones; the values are checked
    by ``cls.__post_init__``.

    Parameters
    ----------
    owner : str
        What the options belong to, for messages (e.g. ``"strategy 'gnn'"``).
    """
    if given is None:
        return cls()
    if isinstance(given, cls):
        return given
    allowed = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(given, Mapping):
        raise ValueError(f"{owner} options must be a dict with keys among {allowed} or a {cls.__name__}, "
                         f"got {type(given).__name__}")
    unknown = sorted(set(given) - set(allowed), key=str)
    if unknown:
        raise ValueError(f"{owner} has no option {unknown[0]!r}; allowed options are {allowed}")
    return cls(**given)


def check_choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def check_pool(labeled_mask, n_samples, budget):
    """The labeled mask checked, the pool rows (``~labeled_mask``), and ``budget`` checked
    against the pool size (an oversized budget raises; it is never clipped).

    Returns
    -------
    labeled_mask : ndarray of shape (n_samples,), bool
    pool : ndarray of shape (n_pool,), int64
    """
    labeled_mask = check_mask(labeled_mask, n_samples)
    pool = np.flatnonzero(~labeled_mask)
    check_int(budget, "budget", low=1, high=pool.size)
    return labeled_mask, pool


def check_mask(mask, n_samples, name="labeled_mask"):
    mask = np.asarray(mask)
    if mask.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},), got {mask.shape}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1)")
        mask = mask.astype(bool)
    return mask


# --------------------------------------------------------------------------- blocks
def chunks(n, size):
    """(start, stop) pairs covering range(n) in steps of ``size``."""
    for start in range(0, n, size):
        yield start, min(start + size, n)


def rows_per_block(n_cols):
    """Rows of an ``n_cols``-wide float32 block of BLOCK_ELEMENTS (16 MB)."""
    return max(1, BLOCK_ELEMENTS // max(1, int(n_cols)))


# --------------------------------------------------------------------------- items and classes
def check_class_names(class_names, name="class_names"):
    """Class names are a list of at least two distinct, non-empty strings; returns it as a list."""
    if isinstance(class_names, str) or not hasattr(class_names, "__iter__"):
        raise ValueError(f"{name} must be a list of class-name strings, got {class_names!r}")
    names = list(class_names)
    if len(names) < 2 or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"{name} must be a list of at least two non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"{name} must be distinct; {dup!r} appears more than once")
    return names


def _as_1d(values):
    """``values`` as an array, keeping Python's element types where NumPy would change them.

    ``np.asarray`` turns ``[0, True]`` into ``[0, 1]`` and ``[1, 'cat']`` into
    ``['1', 'cat']``; a list holding bools or mixed types becomes an object array instead.
    """
    arr = np.asarray(values)
    if isinstance(values, np.ndarray) or arr.ndim != 1 or arr.dtype.kind == "f":
        return arr
    if arr.dtype.kind in "iu" and not any(isinstance(v, (bool, np.bool_)) for v in values):
        return arr
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def check_items(items, n_items, name="items"):
    """Dataset indices: a 1-D integer array with every value in [0, n_items).

    Returns
    -------
    items : ndarray of shape (n,), int64
    """
    arr = _as_1d(items)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of dataset indices, got shape {arr.shape}")
    if arr.dtype == object:
        for pos, value in enumerate(arr.tolist()):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name}[{pos}] = {value!r} is not a dataset index (an integer)")
        arr = arr.astype(np.int64)
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool):
        raise ValueError(f"{name} must be integer dataset indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    bad = np.flatnonzero((arr < 0) | (arr >= n_items))
    if bad.size:
        raise ValueError(
            f"{name}[{bad[0]}] = {arr[bad[0]]} is not a dataset index; allowed: 0-{n_items - 1} (n_items={n_items})"
        )
    return arr


def class_ids(classes, class_names, name="classes"):
    """Class ids for ``classes``, each a class id (int) or a class name (str).

    Returns
    -------
    ids : ndarray of shape (n,), int64
    """
    n_classes = len(class_names)
    allowed = f"allowed: {class_names} or ids 0-{n_classes - 1}"
    arr = _as_1d(classes)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class ids or names, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        ids = arr.astype(np.int64, copy=False)
    else:
        lookup = {n: i for i, n in enumerate(class_names)}
        ids = np.empty(arr.size, dtype=np.int64)
        for pos, value in enumerate(arr.tolist()):
            if isinstance(value, str):
                if value not in lookup:
                    raise ValueError(f"{name}[{pos}] = {value!r} is not a class; {allowed}")
                ids[pos] = lookup[value]
            elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
                ids[pos] = value
            else:
                raise ValueError(f"{name}[{pos}] = {value!r} is not a class; {allowed}")
    bad = np.flatnonzero((ids < 0) | (ids >= n_classes))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {ids[bad[0]]} is not a class; {allowed}")
    return ids
