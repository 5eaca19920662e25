"""The one embedding-export schema between the Keras side and the torch side.

A folder holding ``embeddings.npy`` (n, d) float32, ``probs.npy`` (n, c) float32,
``labels.npy`` (n,) int64 with -1 for unknown, ``labeled_mask.npy`` (n,) bool,
``indices.npy`` (n,) int64 absolute dataset indices and ``metadata.json``
(``dataset``, ``n_classes``, ``class_names``, ...). Written by the analyzer, read by
the GNN sidecar. No torch and no TensorFlow import here.
"""
import os
from pathlib import Path

import numpy as np

from labelnext.io import files as results_io

EXPORT_FILES = ("embeddings.npy", "probs.npy", "labels.npy", "labeled_mask.npy", "metadata.json")


def write_export(out_dir, embeddings, probs, labels, labeled_mask, indices=None, metadata=None):
    """Validate with :func:`check_export`, then write the folder (each file atomically).

    Returns
    -------
    out_dir : Path
    """
    export = check_export(embeddings, probs, labels, labeled_mask, indices, metadata, trainable=False)
    out = Path(out_dir)
    for name in ("embeddings", "probs", "labels", "labeled_mask", "indices"):
        results_io.save_npy(out / f"{name}.npy", export[name])
    results_io.save_json(out / "metadata.json", export["metadata"])
    return out


def load_export(embeddings_dir):
    """Load and validate the analyzer's embedding export.

    Parameters
    ----------
    embeddings_dir : str or path-like
        Folder holding ``embeddings.npy``, ``probs.npy``, ``labels.npy``,
        ``labeled_mask.npy``, ``metadata.json`` and optionally ``indices.npy``.

    Returns
    -------
    export : dict
        ``embeddings`` ndarray of shape (n, d) float32, ``probs`` (n, c) float32,
        ``labels`` (n,) int64 (-1 = unknown), ``labeled_mask`` (n,) bool,
        ``indices`` (n,) int64 absolute dataset indices, ``metadata`` dict with
        ``dataset``, ``n_classes`` and ``class_names`` filled in.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the required files is missing.
    ValueError
        If the arrays are inconsistent (see :func:`check_export`).
    """
    folder = os.fspath(embeddings_dir)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"embeddings folder not found: {folder!r} (run `python AL_cycle.py` first to export embeddings)"
        )
    missing = [name for name in EXPORT_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise FileNotFoundError(f"embeddings folder {folder!r} is missing {', '.join(missing)}")

    def load(name):
        try:
            return np.load(os.path.join(folder, name), allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:  # object arrays, a corrupt header, an empty or truncated file
            raise ValueError(f"cannot read {name} in {folder!r}: {exc or 'the file is empty'}") from None

    indices_path = os.path.join(folder, "indices.npy")
    try:
        metadata = results_io.load_json(os.path.join(folder, "metadata.json"))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"cannot read metadata.json in {folder!r}: {exc}") from None
    return check_export(
        embeddings=load("embeddings.npy"),
        probs=load("probs.npy"),
        labels=load("labels.npy"),
        labeled_mask=load("labeled_mask.npy"),
        indices=load("indices.npy") if os.path.isfile(indices_path) else None,
        metadata=metadata,
    )


def check_export(embeddings, probs, labels, labeled_mask, indices=None, metadata=None, *, trainable=True):
    """Validate export arrays together; return them with normalised dtypes.

    ``trainable=False`` checks the schema only (what a writer must get right); the
    default also requires what the GNN needs to train and score: labeled rows of at
    least 2 classes and a non-empty pool.

    Every check runs before anything is written, so bad input never touches
    ``results/``. Parameters and return value as in :func:`load_export`.
    """
    metadata = dict(metadata or {})
    arrays = {"embeddings": np.asarray(embeddings), "probs": np.asarray(probs),
              "labels": np.asarray(labels), "labeled_mask": np.asarray(labeled_mask)}
    if indices is not None:
        arrays["indices"] = np.asarray(indices)
    for name, ndim in (("embeddings", 2), ("probs", 2), ("labels", 1), ("labeled_mask", 1), ("indices", 1)):
        if name in arrays and arrays[name].ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D, got shape {arrays[name].shape}")
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"export arrays have different lengths: {lengths}")
    n = lengths["embeddings"]
    if trainable and n < 2:
        raise ValueError(f"need at least 2 nodes, got n={n}")

    emb = arrays["embeddings"]
    if not np.issubdtype(emb.dtype, np.number):
        raise ValueError(f"embeddings must be numeric, got dtype {emb.dtype}")
    emb = emb.astype(np.float32, copy=False)
    bad_rows = int((~np.isfinite(emb)).any(axis=1).sum())
    if bad_rows:
        raise ValueError(f"embeddings contain NaN or infinite values in {bad_rows} of {n} rows")

    probs = arrays["probs"]
    if not np.issubdtype(probs.dtype, np.number) or not np.isfinite(probs).all():
        raise ValueError("probs must be finite numbers")
    probs = probs.astype(np.float32, copy=False)
    n_classes = probs.shape[1]
    if metadata.get("n_classes", n_classes) != n_classes:
        raise ValueError(f"metadata n_classes={metadata['n_classes']} but probs has {n_classes} columns")
    if n_classes < 2:
        raise ValueError(f"probs must have at least 2 columns (classes), got {n_classes}")

    labels = arrays["labels"]
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers (-1 = unknown), got dtype {labels.dtype}")
    labels = labels.astype(np.int64, copy=False)
    if labels.size and (labels.min() < -1 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [-1, {n_classes - 1}], got [{labels.min()}, {labels.max()}]")

    mask = arrays["labeled_mask"]
    if mask.dtype != np.bool_:
        if not np.issubdtype(mask.dtype, np.integer) or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"labeled_mask must be boolean, got dtype {mask.dtype}")
        mask = mask.astype(bool)
    n_labeled = int(mask.sum())
    if trainable and n_labeled == 0:
        raise ValueError("no labeled nodes: labeled_mask is all False (the GNN trains on the labeled set)")
    unknown = int((labels[mask] < 0).sum())
    if unknown:
        raise ValueError(f"labeled_mask marks {unknown} rows whose label is -1 (unknown)")
    classes = np.unique(labels[mask])
    if trainable and len(classes) < 2:
        raise ValueError(f"need at least 2 classes among the labeled nodes, got {classes.tolist()}")
    if trainable and n_labeled == n:
        raise ValueError("no pool nodes: every row is labeled, nothing to score")

    if "indices" in arrays:
        idx = arrays["indices"]
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64, copy=False)
        if len(np.unique(idx)) != n:
            raise ValueError("indices.npy contains duplicate dataset indices")
    else:
        idx = np.arange(n, dtype=np.int64)

    metadata.setdefault("dataset", "unknown")
    metadata["n_classes"] = n_classes
    names = metadata.get("class_names")
    if not isinstance(names, (list, tuple)) or len(names) != n_classes:
        metadata["class_names"] = [str(c) for c in range(n_classes)]
    return {"embeddings": emb, "probs": probs, "labels": labels, "labeled_mask": mask,
            "indices": idx, "metadata": metadata}
