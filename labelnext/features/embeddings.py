"""Your own embeddings as the features: ``al init DATA --embeddings FILE``.

Embeddings from any model (CLIP, DINOv2, a fine-tuned network) replace the data as what the
model trains on and every strategy reads, for any data kind. FILE is read and checked once,
before anything is written, matched to the items of DATA, and copied into the project
(:data:`EMBEDDINGS_FILE`, with its digest in ``project.json``), so rounds never read it again.

The file, one row per item:

``.npy``
    A 2-D numeric array: the training items in the order ``load_dataset(DATA, holdout=False)``
    lists them (``ds.train_paths`` for folders), then the test split's items (``ds.test_paths``)
    when the data set has its own test split (``ROOT/test/``, ``--test``, digits).
``.parquet``
    With a ``path`` column: each row names its item's file (image and text folders), either the
    absolute path or a trailing part of it that names one item only (``train/cat/001.jpg``,
    ``cat/001.jpg``); rows may come in any order and cover the test split's items too. Without
    one: the rows of the ``.npy`` rule. The values are the other columns, all numeric, or one
    column whose cells are lists of numbers of one length.

Every item needs exactly one row of finite values; anything else is one line naming the file
and the row. With no test split of its own, the project's held-out items (when one is drawn)
take their rows along (:func:`data.with_holdout`, the same draw as the items').
"""
import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import numpy as np

from labelnext.data import with_holdout
from labelnext.io.files import load_npz, save_npz
from labelnext.utils.extras import require

EMBEDDINGS_FILE = "features_embeddings.npz"
KEY_COLUMN = "path"
SUFFIXES = (".npy", ".parquet")
# Show at most this many items in a message (a missing row or an ambiguous path).
SHOWN = 2


@dataclass
class UserEmbeddings:
    """Embeddings matched to a project's items: ``pool`` rows follow ``x_train``, ``test`` rows
    ``x_test`` (None without a test split); ``record`` is what ``project.json`` keeps."""

    pool: np.ndarray
    test: np.ndarray | None
    record: dict

    def save(self, folder):
        """Write :data:`EMBEDDINGS_FILE` into ``folder`` (atomically; an empty test array without a test split)."""
        save_npz(Path(folder) / EMBEDDINGS_FILE, pool=self.pool, test=_test_array(self.pool, self.test))


def check_request(features, embeddings):
    """The features a project trains on given ``--features`` and ``--embeddings``: a file means
    ``'embeddings'`` (refused with other features), and ``'embeddings'`` needs a file."""
    if embeddings is not None and features not in ("raw", "auto", "embeddings"):
        raise ValueError(f"--embeddings {os.fspath(embeddings)!r} are the features: leave out --features {features}")
    if embeddings is None and features == "embeddings":
        raise ValueError("--features embeddings needs --embeddings FILE (a .npy or .parquet of one row per item)")
    return "embeddings" if embeddings is not None else features


def embeddings_for(file, ds, holdout=False):
    """Read ``file``, match its rows to the items of ``ds`` and check them (see the module docstring).

    Parameters
    ----------
    file : str or Path
    ds : Dataset
        As loaded, before any held-out split (``load_dataset(..., holdout=False)``).
    holdout : bool
        The project draws a held-out split with :func:`data.with_holdout`: split the rows the same way.

    Returns
    -------
    UserEmbeddings
    """
    path = Path(file).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"--embeddings {str(file)!r} must be a .npy or .parquet file, got {path.suffix or 'no suffix'}")
    if not path.is_file():
        raise ValueError(f"--embeddings {str(file)!r} does not exist")
    if path.suffix.lower() == ".npy":
        values, keys = _read_npy(path), None
    else:
        values, keys = _read_parquet(path)
    name = repr(str(file))
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"{name} must hold a 2-D array of one row per item, got shape {values.shape}")
    values = values.astype(np.float32)  # a value beyond float32 becomes inf and is refused below
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise ValueError(f"{name}: {bad.size} rows hold NaN or infinite values (or beyond float32), "
                         f"first row {bad[0]}; every value must be a finite number")
    n_train, n_test = len(ds.y_train), 0 if ds.x_test is None else len(ds.x_test)
    if keys is not None:
        values = values[_order_by_path(keys, ds, name)]
    elif len(values) != n_train + n_test:
        split = (f"{n_train} training items and {n_test} test items: give {n_train + n_test} rows, the training "
                 "items then the test items" if n_test else f"{n_train} items: give one row per item")
        keyed = f", or a Parquet file with a '{KEY_COLUMN}' column" if ds.train_paths is not None else ""
        raise ValueError(f"{name} has {len(values)} rows but {ds.name} has {split}, in the order "
                         f"load_dataset lists them{keyed}")
    pool, test = values[:n_train], (values[n_train:] if n_test else None)
    if holdout and ds.x_test is None:
        # The draw depends only on the labels: the rows follow the items into the held-out split.
        split = with_holdout(replace(ds, x_train=pool, train_paths=None, test_paths=None, notes=[]))
        pool, test = split.x_train, split.x_test
    record = {"source": str(path.resolve()), "file_digest": file_digest(path), "digest": array_digest(pool, test),
              "dim": int(values.shape[1])}
    return UserEmbeddings(pool, test, record)


def load_embeddings(folder, record, ds):
    """The project's copy of the embeddings, ``(pool, test or None)``; ValueError (one line) when it is
    missing, damaged, changed since ``al init`` or does not fit the items of ``ds``."""
    path = Path(folder) / EMBEDDINGS_FILE
    again = f"start a new project with `al init ... --embeddings {record['source']}`"
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is missing: it held the embeddings copied at `al init`; restore it from a "
                         f"backup or {again}")
    try:
        pool, test = load_npz(path, ("pool", "test"))
    except ValueError as exc:
        raise ValueError(f"{str(path)!r} is damaged ({str(exc).splitlines()[0][:160]}); restore it or {again}") from None
    has_test = ds.x_test is not None
    if array_digest(pool, test if has_test else None) != record["digest"] or len(pool) != len(ds.y_train) \
            or len(test) != (len(ds.x_test) if has_test else 0):
        raise ValueError(f"{str(path)!r} changed since `al init` (its digest differs): the rows would no longer "
                         f"match the labels; restore it or {again}")
    return pool, (test if has_test else None)


def array_digest(pool, test):
    """Content key of the pool and test rows (shapes, dtype and every value)."""
    h = hashlib.blake2b(digest_size=16)
    test = _test_array(pool, test)
    for arr in (pool, test):
        h.update(f"{arr.shape}\0{arr.dtype.str}\0".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def file_digest(path, block=1 << 20):
    """blake2b of a file's bytes: which file the embeddings came from, as it was."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def _test_array(pool, test):
    # One file layout with or without a test split.
    return np.zeros((0, pool.shape[1]), pool.dtype) if test is None else test


def _read_npy(path):
    try:
        values = np.load(path, allow_pickle=False)
    except ValueError as exc:  # an object array, or not a .npy at all
        raise ValueError(f"{str(path)!r} is not a numeric .npy array ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "iuf":
        raise ValueError(f"{str(path)!r} must hold numbers (int or float), got dtype {values.dtype}")
    return values


def _read_parquet(path):
    """``(values, keys or None)`` from a Parquet file (module docstring: which columns mean what)."""
    require("pyarrow", "scale", "a Parquet embeddings file")
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # not Parquet, damaged: one line either way
        raise ValueError(f"{str(path)!r} cannot be read as Parquet ({str(exc).splitlines()[0][:120]})") from None
    name = repr(str(path))
    keys = None
    if KEY_COLUMN in frame.columns:
        keys = frame[KEY_COLUMN].tolist()
        frame = frame.drop(columns=[KEY_COLUMN])
    if "id" in frame.columns:  # a numeric id would pass for a dimension: refuse rather than guess
        raise ValueError(f"{name} has an 'id' column: rows are matched by a '{KEY_COLUMN}' column (item files) or "
                         f"by their order; drop the 'id' column")
    if frame.shape[1] == 0:
        raise ValueError(f"{name} has no embedding column besides '{KEY_COLUMN}'")
    if frame.shape[1] == 1 and frame.dtypes.iloc[0] == object:
        return _stack_lists(frame.iloc[:, 0], name), keys
    for column, dtype in frame.dtypes.items():
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype) \
                or pd.api.types.is_complex_dtype(dtype):
            raise ValueError(f"{name}: column {column!r} is not numeric ({dtype}); the values are numeric columns "
                             f"or one column of lists of numbers, besides a '{KEY_COLUMN}' column")
    return frame.to_numpy(dtype=np.float64, na_value=np.nan), keys


def _stack_lists(cells, name):
    """One column of lists of numbers, one length, as a 2-D array."""
    rows = []
    for i, cell in enumerate(cells):
        row = np.asarray(cell) if isinstance(cell, (list, tuple, np.ndarray)) else None
        if row is None or row.ndim != 1 or row.dtype.kind not in "iuf" or (rows and len(row) != len(rows[0])):
            want = f"a list of {len(rows[0])} numbers" if rows else "a list of numbers"
            raise ValueError(f"{name}: row {i} of column {cells.name!r} is not {want}, got {str(cell)[:60]}")
        rows.append(row)
    return np.stack(rows).astype(np.float64)


def _parts(path):
    return tuple(p for p in PurePosixPath(str(path).replace("\\", "/")).parts if p != ".")


def _order_by_path(keys, ds, name):
    """Row of the file for each item (training items, then test items), from the ``path`` keys."""
    paths = list(ds.train_paths or [])
    if ds.train_paths is None or (ds.x_test is not None and ds.test_paths is None):
        raise ValueError(f"{name} keys its rows by '{KEY_COLUMN}', but the items of {ds.name} are not files of "
                         "their own (only image and text folders have them): drop the column and give the rows "
                         "in the order load_dataset lists the items")
    paths += list(ds.test_paths or [])
    exact = {os.path.normpath(p): i for i, p in enumerate(paths)}
    item_parts = [_parts(p) for p in paths]
    tails = {}  # number of trailing parts -> {tail: items ending with it}
    item_of_row = np.empty(len(keys), np.int64)
    for row, key in enumerate(keys):
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"{name}: row {row} has no '{KEY_COLUMN}' (got {key!r}); every row names its item's file")
        parts = _parts(key.strip())
        if os.path.isabs(key.strip()):  # as listed, or through a symbolic link to it
            n = os.path.normpath(key.strip())
            n = n if n in exact else os.path.realpath(n)
            found = [exact[n]] if n in exact else []
        else:
            if len(parts) not in tails:
                tails[len(parts)] = index = {}
                for i, p in enumerate(item_parts):
                    index.setdefault(p[-len(parts):], []).append(i)
            found = tails[len(parts)].get(parts, [])
        if not found:
            raise ValueError(f"{name}: row {row}: {KEY_COLUMN} {key!r} is not an item of {ds.name} ({len(paths)} "
                             "items); give the file's absolute path or its path under the data folder")
        if len(found) > 1:
            shown = ", ".join(paths[i] for i in found[:SHOWN])
            raise ValueError(f"{name}: row {row}: {KEY_COLUMN} {key!r} matches {len(found)} items ({shown}, ...); "
                             "give more of the path")
        item_of_row[row] = found[0]
    counts = np.bincount(item_of_row, minlength=len(paths))
    if (counts > 1).any():
        item = int(np.flatnonzero(counts > 1)[0])
        rows = np.flatnonzero(item_of_row == item)[:SHOWN].tolist()
        raise ValueError(f"{name}: rows {rows} both name {paths[item]}; give one row per item")
    if (counts == 0).any():
        missing = np.flatnonzero(counts == 0)
        raise ValueError(f"{name} has no row for {missing.size} of the {len(paths)} items of {ds.name}, e.g. "
                         f"{', '.join(paths[i] for i in missing[:SHOWN])}; give one row per item")
    order = np.empty(len(paths), np.int64)
    order[item_of_row] = np.arange(len(keys))
    return order
