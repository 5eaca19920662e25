"""Pools too large for memory, for the analyzer: streamed inference into files, and the
three analyses on a Dask cluster (:mod:`labelnext.scale`).

:meth:`ActiveLearningAnalyzer.from_inference` runs :func:`scale.inference.stream_predict` over
a folder of images or a ``.npy`` array and analyses the memory-mapped outputs;
``find_intersection(client=...)`` runs the analyses on a cluster's workers
(:func:`scale.engine.analyze_sharded`), which read the pool from the files here named.
"""
import os
from pathlib import Path

import numpy as np

from labelnext.data.images import list_image_files
from labelnext.io.files import load_json
from labelnext.scale import engine, inference, shards
from labelnext.training import runs
from labelnext.utils import checks
from labelnext.utils.extras import require

# An image folder in the layout `al init` reads: FOLDER/<class>/... labeled, FOLDER/unlabeled/... the pool.
UNLABELED_FOLDER = "unlabeled"


def open_pool(path, name):
    """A ``.npy`` (memory-mapped), ``.parquet`` or folder of shards, opened without reading it."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{name} {str(path)!r} does not exist: pass a .npy, a .parquet or a folder of shards")
    return shards.open_rows(path)


def folder_labeled_mask(items):
    """Labeled mask of a streamed image folder from its layout: an image under a class
    sub-folder is labeled; one under ``unlabeled/`` (or at the top level) is in the pool.

    Parameters
    ----------
    items : list of str, the images' paths relative to the folder (``items.txt``)

    Returns
    -------
    ndarray of shape (n_items,), bool
    """
    first = [Path(p).parts[0] if len(Path(p).parts) > 1 else UNLABELED_FOLDER for p in items]
    return np.array([f != UNLABELED_FOLDER for f in first], dtype=bool)


def model_classes(model):
    """Class names recorded beside a saved model (``metadata.json``'s ``classes``, written by
    ``train.py`` and by each round of ``al``), or None."""
    if not isinstance(model, (str, os.PathLike)):
        return None
    meta = runs.resolve_model_path(model).parent / "metadata.json"
    classes = load_json(meta).get("classes") if meta.exists() else None
    return [str(c) for c in classes] if isinstance(classes, list) else None


def labeled_mask_file(path, source):
    """The labeled mask a ``.npy`` file gives for ``source``'s items: a boolean mask, or row numbers."""
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"labeled {str(path)!r} is not a readable .npy ({str(exc).splitlines()[0]})") from None
    if values.dtype == bool:
        return values
    source = Path(source)
    n = len(list_image_files(source)) if source.is_dir() else np.load(source, mmap_mode="r").shape[0]
    rows = np.asarray(values)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer) or (rows.size and (rows.min() < 0 or rows.max() >= n)):
        raise ValueError(f"labeled {str(path)!r} must hold a boolean mask or row numbers in [0, {n - 1}] of the source")
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def stream_outputs(model, source, out_dir, *, client=None, overwrite=False, block_rows=None, progress=True):
    """Streamed inference (:func:`scale.inference.stream_predict`) and what it wrote.

    Returns
    -------
    dict with ``probs`` and ``embeddings`` (paths of the ``.npy`` files), ``items`` (relative
    image paths in row order, or None for an array) and ``item_paths`` (absolute, or None)
    """
    inference.stream_predict(model, source, out_dir, client=client, overwrite=overwrite, block_rows=block_rows,
                             progress=progress)
    out = Path(out_dir)
    items_file = out / inference.ITEMS_FILE
    items = items_file.read_text(encoding="utf-8").splitlines() if items_file.exists() else None
    root = Path(source).absolute() if items is not None else None
    return {"probs": out / inference.PROBS_FILE, "embeddings": out / inference.EMBEDDINGS_FILE, "items": items,
            "item_paths": None if items is None else [str(root / p) for p in items]}


def cluster_file(array, path, name, workdir):
    """The file Dask workers read ``array`` from: ``path`` when the analyzer was given one, else
    ``array`` written block by block to ``workdir/<name>.npy`` (which every worker must see)."""
    if path is not None:
        return Path(path).absolute()
    target = Path(workdir).absolute() / f"{name}.npy"
    target.parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(target, mode="w+", dtype=np.float32, shape=array.shape)
    for start, stop in checks.chunks(array.shape[0], checks.rows_per_block(array.shape[1])):
        out[start:stop] = np.asarray(array[start:stop], dtype=np.float32)
    out.flush()
    del out
    return target


def analyze_on_cluster(client, probs_file, embeddings_file, labeled_mask, params, *, random_state):
    """The three analyses on the cluster's workers with ranks gathered exactly: the masks and
    scores the analyzer computes in memory (:func:`scale.engine.analyze_sharded`)."""
    return engine.analyze_sharded(client, embeddings_file, probs_file, labeled_mask, params, None,
                                  random_state=random_state, ranks="exact", kmeans="client")


def connect(address):
    """A Dask client on the scheduler at ``address`` (``tcp://host:8786``)."""
    return require("distributed", "scale", "--scheduler").Client(address)
