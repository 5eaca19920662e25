"""Items listed, not loaded: DATA as a project whose features are a folder of embedding shards sees it.

With ``al init DATA --embeddings FOLDER`` the model and every strategy read the shards, so of DATA
only each item's identity and label are needed. Listing them keeps memory at a few dozen bytes per
item, where loading would decode every image or read every column:

- an image-folder tree (``ROOT/<class>/``, ``ROOT/unlabeled/``, ``ROOT/train|test/<class>/``): the
  files are listed exactly as :func:`load_dataset` lists them (the same listing, the same fixed
  shuffle), never opened; an item is its path under ROOT;
- a CSV/TSV/Parquet table with a header: only the class column is read, and an ``id`` / ``path`` /
  ``name`` / ``file`` column when there is one (the item's identity on sheets and the page; else
  its row number); ``--test FILE`` likewise.

The record is a :class:`Dataset` of kind :data:`LISTED` whose ``x_train`` / ``x_test`` hold the
identities (str). Anything else (digits, cifar10, ``.npz``, archives, text folders) is loaded as usual.
"""
from pathlib import Path

import numpy as np

from labelnext.data.images import _find_layout, _list_tree
from labelnext.data.record import Dataset, DatasetError
from labelnext.data.tables import LABEL_NAMES, TABLE_EXTS, _class_ids, _find, find_text_tree

LISTED = "listed"
# A table's column naming each row's item, looked up in this order (any case).
ID_COLUMNS = ("id", "path", "name", "file")


def listable(path):
    """Whether ``path`` is DATA that :func:`list_items` lists (an image-folder tree or a table file)."""
    path = Path(path).expanduser()
    if path.is_file():
        return path.name.lower().endswith(TABLE_EXTS)
    if not path.is_dir() or find_text_tree(path) is not None:
        return False
    found = _find_layout(path)
    return found is not None and found[0] in ("tree", "flat")


def list_items(path, *, label_column=None, test=None, name=None):
    """The items of ``path`` (see the module docstring) as a :data:`LISTED` :class:`Dataset`."""
    path = Path(path).expanduser().resolve()
    name = name or path.stem
    if path.is_file():
        return _list_table(path, label_column, test, name)
    if test is not None:
        raise DatasetError(f"--test applies to tables (.csv/.tsv/.parquet), got the folder {str(path)!r}")
    found = _find_layout(path) if path.is_dir() else None
    if found is None or found[0] not in ("tree", "flat"):
        raise DatasetError(f"{str(path)!r} is neither an image-folder tree nor a table: with a folder of embedding "
                           "shards, DATA is listed, not loaded (see docs/data.md)")
    kind, root = found
    classes, train, held = _list_tree(root, kind)
    rel = len(str(root)) + 1
    test_paths = None if held is None else [p for p, _, _ in held]
    return Dataset(name=name, x_train=np.array([p[rel:] for p, _, _ in train], dtype=object),
                   y_train=np.array([c for _, _, c in train], dtype=np.int64),
                   x_test=None if held is None else np.array([p[rel:] for p in test_paths], dtype=object),
                   y_test=None if held is None else np.array([c for _, _, c in held], dtype=np.int64),
                   class_names=classes, train_paths=[p for p, _, _ in train], test_paths=test_paths,
                   source=str(path), kind=LISTED,
                   notes=[f"{len(train)} image files listed by path, not decoded (the embeddings are the features)"])


def _read_table(path, columns=None):
    """The named columns of a table as str cells ('' where empty); ``columns=None``: the header only."""
    import pandas as pd

    lower = path.name.lower()
    try:
        if lower.endswith(".parquet"):
            if columns is None:
                import pyarrow.parquet as pq

                return list(pq.ParquetFile(path).schema_arrow.names)
            frame = pd.read_parquet(path, columns=columns)
            return {c: ["" if pd.isna(v) else str(v) for v in frame[c]] for c in columns}
        sep = "\t" if lower.endswith(".tsv") else ","
        if columns is None:
            return list(pd.read_csv(path, sep=sep, nrows=0).columns)
        frame = pd.read_csv(path, sep=sep, usecols=columns, dtype=str, keep_default_na=False)
        return {c: [v.strip() for v in frame[c]] for c in columns}
    except (OSError, ValueError, ImportError) as exc:
        raise DatasetError(f"{str(path)!r} cannot be read as a table with a header "
                           f"({' '.join(str(exc).split())[:120]})") from None


def _list_table(path, label_column, test, name):
    header = [str(h) for h in _read_table(path)]
    lower = {h.lower(): h for h in header}
    label = _find(header, LABEL_NAMES, label_column, "class column", path)  # as load_table finds it
    if label is None:
        raise DatasetError(f"{str(path)!r} has no column named {'/'.join(LABEL_NAMES)}: name the class column with "
                           "--label-column (only it is read; the embeddings are the features)")
    key = next((lower[w] for w in ID_COLUMNS if w in lower and lower[w] != label), None)
    wanted = [label] + ([key] if key else [])
    cells = _read_table(path, wanted)
    y_train, classes = _class_ids(cells[label], path, label)
    if len(np.unique(y_train[y_train >= 0])) < 2:
        raise DatasetError(f"{str(path)!r}: class column {label!r} has fewer than 2 classes")
    x_test = y_test = None
    if test is not None:
        test = Path(test).expanduser().resolve()
        test_header = _read_table(test)
        if label not in test_header or (key and key not in test_header):
            raise DatasetError(f"{str(test)!r} lacks the training file's columns {wanted}")
        held = _read_table(test, wanted)
        y_test, _ = _class_ids(held[label], test, label, classes)
        if (y_test < 0).any():
            raise DatasetError(f"{str(test)!r}: test rows need a class: {int((y_test < 0).sum())} rows have none")
        x_test = _identities(held, key, "test row ")
    note = f"class column {label!r}: {len(classes)} classes; " + (
        f"items named by column {key!r}" if key else "items named by their row number")
    return Dataset(name=name, x_train=_identities(cells, key, "row "), y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=classes, train_paths=None, source=str(path), kind=LISTED,
                   notes=[note + " (the other columns are not read: the embeddings are the features)"])


def _identities(cells, key, prefix):
    values = next(iter(cells.values()))
    return np.array(cells[key] if key else [f"{prefix}{i}" for i in range(len(values))], dtype=object)
