"""Dataset loaders: bundled digits, CIFAR-10 pickles, image-folder trees, ``.npz`` and archives.

Every loader returns a :class:`Dataset` of ``uint8`` images of shape
``(n, image_size, image_size, 3)`` and ``int64`` labels (``-1`` where unknown), so the
model, the analyzer and the plots never care where the images came from.

Accepted sources (``load_dataset(name, data_dir=...)``):

``'digits'`` (default)
    scikit-learn's 1,797 real 8x8 handwritten digits, embedded, offline. Fixed split.
``'cifar10'``
    the CIFAR-10 python pickles in ``$KERAS_HOME/datasets/cifar-10-batches-py`` or
    ``~/.keras/datasets/cifar-10-batches-py`` (else ``keras.datasets.cifar10.load_data()``),
    or whatever ``data_dir`` points to.
a path (as ``name`` or ``data_dir``), layout auto-detected
    (a) a CIFAR-10 pickle folder: ``data_batch_1..5``, ``test_batch`` [, ``batches.meta``],
        or a folder that contains ``cifar-10-batches-py/``;
    (b) an image-folder tree: ``ROOT/train/<class>/*.jpg|jpeg|png``
        [+ ``ROOT/test/<class>/...``] [+ ``ROOT/unlabeled/*.jpg|png``, label -1],
        or ``ROOT/<class>/*.jpg`` (all train), possibly inside one wrapping folder;
    (c) a ``.npz`` with ``x_train``, ``y_train`` [, ``x_test``, ``y_test``, ``class_names``];
    (d) a ``.tar.gz`` / ``.tgz`` / ``.tar`` / ``.zip`` of (a) or (b), extracted once into the
        cache folder.

Image-folder trees of 1,000 images or more are decoded once and cached as ``.npz`` in the
cache folder (``cache_dir``, else ``$AL_CACHE_DIR``, else ``.cache/datasets`` in the working directory);
so are smaller trees whose decoding took a second or more (a few huge photos).
Nothing here imports TensorFlow or torch at module level.
"""
from __future__ import annotations

import os
from pathlib import Path


from labelnext.data.images import (_cache_root, _cifar10_default, _extract_archive, _find_layout, _load_digits,
                             _load_npz, _load_pickles, _load_tree, resize_images)
from labelnext.data.record import (_ARCHIVE_EXTS, _LAYOUTS, CIFAR10_CLASSES, Dataset, DatasetError, _check_image_size,
                             _strip_suffix, dataset_fingerprint, with_holdout)
from labelnext.data.tables import TABLE_EXTS, find_text_tree, load_table, load_text_tree
from labelnext.data.listing import LISTED, list_items

__all__ = ["DatasetError", "Dataset", "load_dataset", "resize_images", "dataset_fingerprint", "with_holdout",
           "load_table", "CIFAR10_CLASSES"]

# --------------------------------------------------------------------------- dispatch

def _load_path(path, image_size, cache_dir, name, param, table):
    """Load ``path`` (already known to exist) by its detected layout."""
    source = str(path)
    lower = path.name.lower()
    if path.is_file() and lower.endswith(TABLE_EXTS):
        return load_table(path, name=name, **table)
    if table["drop_columns"] or table["keep_columns"]:
        raise DatasetError(f"--drop-columns / --keep-columns apply to tables (.csv/.tsv/.parquet), got {source!r}")
    if table["kind"] != "auto" and not path.is_dir():
        raise DatasetError(f"--kind {table['kind']} needs a .csv/.tsv/.parquet file or a folder of .txt files, "
                           f"got {source!r}")
    if path.is_file():
        if lower.endswith(".npz"):
            return _load_npz(path, image_size, name)
        if not lower.endswith(_ARCHIVE_EXTS):
            raise DatasetError(f"{param}={source!r} is a file of unknown type: expected {_LAYOUTS}")
        folder = _extract_archive(path, _cache_root(cache_dir))
    else:
        folder = path
    text_root = find_text_tree(folder)
    if text_root is not None:
        return load_text_tree(text_root, name=name)
    if table["kind"] not in ("auto", "image"):
        raise DatasetError(f"--kind {table['kind']}: {source!r} holds no class folders of .txt files")
    found = _find_layout(folder)
    if found is None:
        raise DatasetError(f"{param}={source!r} has no recognised layout: expected {_LAYOUTS}")
    kind, root = found
    if kind == "pickle":
        return _load_pickles(root, image_size, name, source)
    return _load_tree(root, kind, image_size, _cache_root(cache_dir), name, source)


def _existing_path(value, param):
    if not isinstance(value, (str, os.PathLike)):
        raise DatasetError(f"{param} must be a path (str or os.PathLike), got {type(value).__name__}")
    path = Path(value).expanduser()
    if not path.exists():
        raise DatasetError(f"{param}={os.fspath(value)!r} does not exist: pass an existing path to {_LAYOUTS}")
    return path.resolve()


def load_dataset(name="digits", data_dir=None, image_size=32, cache_dir=None, *, kind="auto", label_column=None,
                 text_column=None, test=None, drop_columns=None, keep_columns=None, holdout=True):
    """Load a dataset: uint8 images of one size, table rows or texts, with int64 labels.

    Parameters
    ----------
    name : str or os.PathLike, default='digits'
        ``'digits'`` (bundled, offline), ``'cifar10'`` or a path to a CIFAR-10 pickle
        folder, an image-folder tree, a ``.npz`` or a ``.tar.gz``/``.tgz``/``.tar``/``.zip``
        archive of a tree (see the module docstring for the layouts).
    data_dir : str or os.PathLike, optional
        Where the data lies, for ``name='cifar10'`` (or any path layout). When given,
        ``name`` only labels the dataset: ``'cifar10'`` keeps that name, the default
        ``'digits'`` is replaced by the basename of ``data_dir``.
    image_size : int, default=32
        Output side ``S`` in [8, 1024]; every image is resized (bilinear) to ``S x S x 3``.
    cache_dir : str or os.PathLike, optional
        Where archives are extracted and decoded trees are cached. Default:
        ``$AL_CACHE_DIR`` if set, else ``.cache/datasets`` in the working directory.

    kind : {'auto', 'image', 'tabular', 'text'}
        Overrides the detected kind of a ``.csv``/``.tsv``/``.parquet`` file (see
        :func:`datasets.tables.load_table`, which also documents ``label_column``,
        ``text_column``, ``test`` (a held-out file with the same columns), ``drop_columns``
        and ``keep_columns``).
    holdout : bool, default=True
        When the data has no test split, move a stratified 20 % of the labeled training
        items to one (:func:`with_holdout`, fixed seed), so accuracy can be reported.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        One line naming the parameter, the value and what is accepted.

    Notes
    -----
    ``digits`` is split once with a fixed seed (stratified, 20 % test), whatever the
    experiment seed. Image-folder trees list classes sorted by folder name; images of
    ``ROOT/unlabeled/`` are appended to the training pool with label -1.
    """
    ds = _load(name, data_dir, image_size, cache_dir,
               {"kind": kind, "label_column": label_column, "text_column": text_column, "test": test,
                "drop_columns": drop_columns, "keep_columns": keep_columns})
    return with_holdout(ds) if holdout else ds


def _load(name, data_dir, image_size, cache_dir, table):
    if table["kind"] not in ("auto", "image", "tabular", "text", LISTED):
        raise DatasetError(f"kind must be one of ['auto', 'image', 'tabular', 'text', {LISTED!r}], got {table['kind']!r}")
    if table["test"] is not None:
        table["test"] = _existing_path(table["test"], "test")
    if table["kind"] == LISTED:  # identities and labels only (a project on embedding shards)
        return list_items(_existing_path(data_dir or name, "name"), label_column=table["label_column"],
                          test=table["test"])
    image_size = _check_image_size(image_size, "image_size")
    if not isinstance(name, (str, os.PathLike)):
        raise DatasetError(f"name must be 'digits', 'cifar10' or a path, got {type(name).__name__}")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise DatasetError(f"cache_dir must be a path (str or os.PathLike), got {type(cache_dir).__name__}")
    key = os.fspath(name)
    if not key.strip():
        raise DatasetError("name must be 'digits', 'cifar10' or a path, got an empty string")
    is_cifar = key.strip().lower() in ("cifar10", "cifar-10")
    if data_dir is not None:
        path = _existing_path(data_dir, "data_dir")
        if key not in ("digits", "") and not is_cifar and Path(key).expanduser().resolve() != path:
            raise DatasetError(f"name={key!r} conflicts with data_dir={os.fspath(data_dir)!r}: with data_dir, "
                               "name must be 'cifar10' or left at its default")
        label = "cifar10" if is_cifar else _strip_suffix(path.name)
        return _load_path(path, image_size, cache_dir, label, "data_dir", table)
    if key == "digits":
        return _load_digits(image_size)
    if is_cifar:
        return _cifar10_default(image_size)
    path = Path(key).expanduser()
    if not path.exists() and os.sep not in key and "/" not in key and not Path(key).suffix:
        raise DatasetError(f"name={key!r} is not a known dataset nor an existing path: use 'digits', "
                           f"'cifar10', or a path to {_LAYOUTS}")
    path = _existing_path(key, "name")
    return _load_path(path, image_size, cache_dir, _strip_suffix(path.name), "name", table)
