"""Argument checks shared by every layer (heuristics, kNN, strategies, AnchorAL, GNN, scripts).

Each ``check_*`` returns the normalised value or raises ``ValueError`` naming the
parameter, the value received and what is allowed. Also the block iteration that
checks and streams large (memory-mapped) arrays without loading them whole.
"""
import numbers

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
    if not np.issubdtype(probs.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {probs.dtype}")
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
    if not np.issubdtype(embeddings.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {embeddings.dtype}")
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


def check_choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


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
