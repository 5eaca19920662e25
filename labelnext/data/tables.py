"""Tables and text from delimited files: a CSV/TSV (or Parquet) of feature columns, or a
column of free text, and one class column.

Tabular rows become float32 features (numeric columns as they are, categorical columns
one-hot encoded, missing values imputed with the training rows' medians; each step is
recorded in ``Dataset.notes``). Standardisation is left to the model (a ``Normalization``
layer adapted on the rows it trains on), so statistics never come from held-out rows.
Text rows become an object array of strings; the model's ``TextVectorization`` learns
its vocabulary from the pool text. An empty class cell marks an unlabeled row (-1).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from labelnext.data.record import Dataset, DatasetError, _one_line
from labelnext.utils.extras import require

TABLE_EXTS = (".csv", ".tsv", ".parquet")
KINDS = ("auto", "tabular", "text")
# Column names taken as the class column when none is given (compared case-insensitively).
LABEL_NAMES = ("class", "label", "target", "y", "sentiment", "category")
TEXT_NAMES = ("text", "review", "document", "sentence", "body")
# A string column whose cells average at least this many characters and words is free text.
TEXT_MIN_CHARS, TEXT_MIN_WORDS = 20, 4
# A string feature column with more distinct values than this is not a category.
MAX_CATEGORIES = 50


def _fail(path, message):
    raise DatasetError(f"{Path(path).name}: {message}")


# --------------------------------------------------------------------------- reading

def _read_delimited(path):
    """Header and rows of a CSV/TSV as strings; every row must have the header's width."""
    delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark.
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except UnicodeDecodeError as exc:
        _fail(path, f"is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8")
    except (OSError, csv.Error) as exc:
        _fail(path, f"cannot be read: {_one_line(exc)}")
    rows = [r for r in rows if r]  # blank lines
    if len(rows) < 2:
        _fail(path, "needs a header or at least two rows")
    width = len(rows[0])
    for line, row in enumerate(rows, 1):
        if len(row) != width:
            _fail(path, f"row {line} has {len(row)} fields but row 1 has {width}: ragged rows")
    has_header = _looks_like_header(rows[0], rows[1:])
    if has_header:
        header = [h.strip() or f"column{i}" for i, h in enumerate(rows[0])]
        rows = rows[1:]
    else:
        header = [f"column{i}" for i in range(width)]
    if len(set(header)) != len(header):
        _fail(path, f"has repeated column names {sorted({h for h in header if header.count(h) > 1})}")
    return header, [[c.strip() for c in r] for r in rows]


def _looks_like_header(first, rest):
    """A first row of distinct names, one of which is not like its column's values
    (a word over numbers, or a word that never occurs below it). csv.Sniffer guesses
    wrong on both shared data sets (a class name 'Letter' over numeric names '1'..'16';
    'review,sentiment' over long strings)."""
    if not all(first) or len(set(first)) != len(first):
        return False
    for i, cell in enumerate(first):
        if _numeric([cell]) is not None:
            continue
        column = [r[i] for r in rest[:1000]]
        if _numeric(column) is not None or cell not in column:
            return True
    return False


def _read_columns(path):
    """Dict column name -> list of str (empty string = missing)."""
    if str(path).lower().endswith(".parquet"):
        require("pyarrow", "scale", "a Parquet table")  # pandas reads Parquet through pyarrow
        try:
            import pandas as pd  # Parquet only: CSV is read without pandas
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow missing or a damaged file: one line either way
            _fail(path, f"cannot read Parquet: {_one_line(exc)}")
        return {str(c): ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in frame[c]]
                for c in frame.columns}
    header, rows = _read_delimited(path)
    return {h: [r[i] for r in rows] for i, h in enumerate(header)}


def _numeric(values):
    """float64 array (NaN = missing) when every non-empty cell is a number, else None."""
    try:
        out = np.array(values, dtype=np.float64)  # fast path: a column with no gaps
    except ValueError:
        out = None
    if out is not None:
        out[~np.isfinite(out)] = np.nan  # 'inf' cells are treated as missing
        return out
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v == "" or v.lower() in ("nan", "na", "n/a", "null", "?"):
            continue
        try:
            out[i] = float(v)
        except ValueError:
            return None
    out[~np.isfinite(out)] = np.nan
    return out


def _is_text(values):
    filled = [v for v in values if v]
    if not filled:
        return False
    chars = sum(len(v) for v in filled) / len(filled)
    words = sum(len(v.split()) for v in filled) / len(filled)
    return chars >= TEXT_MIN_CHARS and words >= TEXT_MIN_WORDS


def _find(header, wanted, given, what, path):
    if given is not None:
        if given not in header:
            _fail(path, f"{what} {given!r} is not a column; columns are {header}")
        return given
    lower = {h.lower(): h for h in header}
    return next((lower[w] for w in wanted if w in lower), None)


# --------------------------------------------------------------------------- labels

def _class_ids(values, path, column, class_names=None):
    """Class ids (-1 for an empty cell) and the sorted class names."""
    if class_names is None:
        present = sorted({v for v in values if v})
        num = _numeric(present)
        if num is not None and len(present):
            present = [present[i] for i in np.argsort(num, kind="stable")]  # 2 before 10
        class_names = present
    if not class_names:
        _fail(path, f"class column {column!r} is empty: no row has a class")
    index = {c: i for i, c in enumerate(class_names)}
    unknown = sorted({v for v in values if v and v not in index})
    if unknown:
        _fail(path, f"class column {column!r} has classes {unknown[:5]} not in the training file's {class_names}")
    return np.array([index[v] if v else -1 for v in values], dtype=np.int64), class_names


# --------------------------------------------------------------------------- features

class _Encoder:
    """Numeric columns kept, categorical one-hot, missing cells imputed: fitted on the
    training file, applied unchanged to a test file."""

    def __init__(self, columns, path):
        self.numeric, self.categories, self.medians, self.notes = {}, {}, {}, []
        for name, values in columns.items():
            num = _numeric(values)
            if num is not None:
                if np.isnan(num).all():
                    _fail(path, f"feature column {name!r} has no values (all missing)")
                self.numeric[name] = True
                self.medians[name] = float(np.nanmedian(num))
                continue
            cats = sorted({v for v in values if v})
            if len(cats) > MAX_CATEGORIES:
                _fail(path, f"feature column {name!r} holds {len(cats)} distinct strings: not a category "
                            f"(at most {MAX_CATEGORIES}); drop it, or pass --kind text if it is the text")
            self.categories[name] = cats
        if self.categories:
            self.notes.append(f"one-hot encoded {len(self.categories)} categorical columns "
                              f"({', '.join(self.categories)})")

    def feature_names(self):
        names = list(self.numeric)
        for name, cats in self.categories.items():
            names.extend(f"{name}={c}" for c in cats)
        return names

    def transform(self, columns, path, part):
        blocks, imputed = [], {}
        for name in self.numeric:
            num = _numeric(columns[name])
            if num is None:
                _fail(path, f"feature column {name!r} is numeric in the training file but not in the {part} file")
            missing = np.isnan(num)
            if missing.any():
                imputed[name] = int(missing.sum())
                num[missing] = self.medians[name]
            blocks.append(num[:, None])
        for name, cats in self.categories.items():
            index = {c: i for i, c in enumerate(cats)}
            onehot = np.zeros((len(columns[name]), len(cats)))
            for row, v in enumerate(columns[name]):
                if v in index:  # a category unseen in training (or a missing cell) stays all-zero
                    onehot[row, index[v]] = 1.0
            blocks.append(onehot)
        if imputed:
            total = sum(imputed.values())
            self.notes.append(f"{part}: imputed {total} missing values in {len(imputed)} columns "
                              f"({', '.join(imputed)}) with the training medians")
        return np.hstack(blocks).astype(np.float32)


# --------------------------------------------------------------------------- loading

def _detect(columns, label, text_column, kind, path):
    """The kind and, for text, the text column."""
    features = [c for c in columns if c != label]
    if not features:
        _fail(path, "has no feature column besides the class column")
    if kind == "tabular":
        return "tabular", None
    texts = [c for c in features if _numeric(columns[c]) is None and _is_text(columns[c])]
    if text_column is None and kind == "text" and not texts:
        texts = [c for c in features if _numeric(columns[c]) is None]
    if kind == "auto" and text_column is None and not texts:
        return "tabular", None
    if text_column is None:
        named = _find(texts, TEXT_NAMES, None, "text column", path)
        if named is None and not texts:
            _fail(path, "has no column of text: pass --text-column")
        text_column = named or max(texts, key=lambda c: sum(len(v) for v in columns[c]))
    elif text_column not in columns or text_column == label:
        _fail(path, f"text column {text_column!r} is not a feature column; columns are {list(columns)}")
    if not any(columns[text_column]):
        _fail(path, f"text column {text_column!r} is empty in every row")
    return "text", text_column


# A column is named as a likely leak only on enough rows for the pattern to mean something.
LEAK_MIN_ROWS = 20


def _column_list(value, param, columns, label, path):
    """Column names from 'A,B' or a list, each checked against the file's header."""
    if value is None:
        return []
    names = [c.strip() for c in value.split(",")] if isinstance(value, str) else list(value)
    for name in names:
        if name not in columns:
            _fail(path, f"{param} names {name!r}, which is not a column; columns are {list(columns)}")
        if name == label:
            _fail(path, f"{param} names the class column {label!r}; pick the class column with --label-column")
    return names


def column_warnings(columns, y):
    """Feature columns that would leak the class or mislead a model, with the reasons.

    Parameters
    ----------
    columns : dict of str to list of str
        Feature columns as read (the class column excluded).
    y : ndarray of shape (n_rows,)
        Class ids, -1 where unlabeled.

    Returns
    -------
    warnings : list of str
        One per suspicious column: ``'id': unique integers (an ID?); values monotone in row order``.
        Reasons: a constant; unique integers in every row (an ID); values that only rise or
        only fall with the row order (a counter or a timestamp, which splits by when a row was
        written); values whose sort order puts the classes in blocks (an ID assigned class by
        class, or a column derived from the class).
    """
    labeled = y >= 0
    n_classes = len(np.unique(y[labeled]))
    out = []
    for name, values in columns.items():
        reasons = []
        present = [v for v in values if v]
        if len(set(present)) <= 1:
            out.append(f"{name!r}: constant, it carries no information")
            continue
        num = _numeric(values)
        if num is None or np.isnan(num).any() or len(num) < LEAK_MIN_ROWS:
            continue
        distinct = len(np.unique(num))
        if distinct == len(num) and np.all(num == np.round(num)):
            reasons.append("unique integers in every row (an ID?)")
        steps = np.diff(num)
        if np.all(steps >= 0) or np.all(steps <= 0):
            reasons.append("values monotone in row order (a counter or a time?)")
        x, cls = num[labeled], y[labeled]
        if n_classes >= 2 and distinct >= len(num) / 2 and len(x) >= LEAK_MIN_ROWS:
            ordered = cls[np.argsort(x, kind="stable")]
            runs = 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1]))
            if runs <= n_classes + max(2, len(x) // 100):
                reasons.append(f"sorting by it puts the {n_classes} classes in {runs} blocks (it encodes the class?)")
        if reasons:
            out.append(f"{name!r}: " + "; ".join(reasons))
    return out


def _default_label(columns, path):
    header = list(columns)
    named = _find(header, LABEL_NAMES, None, "class column", path)
    if named is not None:
        return named
    strings = [c for c in header if _numeric(columns[c]) is None and not _is_text(columns[c])]
    # A table of numbers with one string column (UCI style: 'Letter', 'species'): that is the class.
    return strings[0] if len(strings) == 1 else header[-1]


def load_table(path, *, kind="auto", label_column=None, text_column=None, test=None, name=None, drop_columns=None,
               keep_columns=None):
    """Load a CSV/TSV/Parquet file as a tabular or text :class:`Dataset`.

    Parameters
    ----------
    path : path-like
        The training pool. Rows with an empty class cell are unlabeled (-1).
    kind : {'auto', 'tabular', 'text'}
        ``auto``: text when a non-class column holds free text (cells averaging at least
        20 characters and 4 words), else tabular.
    label_column : str, optional
        Default: a column named class/label/target/y/sentiment/category (any case), else
        the only string column of an otherwise numeric table, else the last column.
    text_column : str, optional
        Default: a column named text/review/document/sentence/body, else the longest
        text column.
    test : path-like, optional
        A held-out file with the same columns. Without one, ``x_test`` is None and
        :func:`datasets.with_holdout` draws a stratified split.
    drop_columns, keep_columns : str ('A,B') or list of str, optional
        Feature columns to leave out, or the only ones to use (not both). Every feature
        column that looks like a leak (:func:`column_warnings`) is named in ``notes`` with
        a line starting ``warning:``.

    Returns
    -------
    Dataset
        ``kind='tabular'``: ``x_train`` float32 of shape (n, n_features) with
        ``feature_names``; ``kind='text'``: ``x_train`` object array of str, shape (n,).
    """
    if kind not in KINDS:
        raise DatasetError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    path = Path(path)
    columns = _read_columns(path)
    label = _find(list(columns), LABEL_NAMES, label_column, "class column", path) if label_column else \
        _default_label(columns, path)
    drop = _column_list(drop_columns, "--drop-columns", columns, label, path)
    keep = _column_list(keep_columns, "--keep-columns", columns, label, path)
    if drop and keep:
        _fail(path, "give --drop-columns or --keep-columns, not both")
    if drop or keep:
        columns = {c: v for c, v in columns.items() if c == label or (c in keep if keep else c not in drop)}
    y_train, class_names = _class_ids(columns[label], path, label)
    if (y_train >= 0).sum() and len(np.unique(y_train[y_train >= 0])) < 2:
        _fail(path, f"class column {label!r} has a single class {class_names}: need at least 2")
    kind, text_column = _detect(columns, label, text_column, kind, path)
    test_columns = None
    if test is not None:
        test = Path(test)
        test_columns = _read_columns(test)
        missing = [c for c in columns if c not in test_columns and (kind == "tabular" or c in (label, text_column))]
        if missing:
            _fail(test, f"lacks the training file's columns {missing}")
    notes, feature_names = [f"class column {label!r}: {len(class_names)} classes"], None
    if drop or keep:
        notes.append(f"dropped columns {drop}" if drop else f"kept only columns {keep}")
    if kind == "text":
        notes.append(f"text column {text_column!r}")
        x_train = np.array(columns[text_column], dtype=object)
        x_test = None if test_columns is None else np.array(test_columns[text_column], dtype=object)
    else:
        features = {c: v for c, v in columns.items() if c != label}
        notes.extend(f"warning: column {w}: drop it with --drop-columns if it is not a real feature"
                     for w in column_warnings(features, y_train))
        encoder = _Encoder(features, path)
        x_train = encoder.transform(columns, path, "training")
        x_test = None if test_columns is None else encoder.transform(test_columns, test, "test")
        feature_names = encoder.feature_names()
        notes.extend(encoder.notes)
    y_test = None
    if test_columns is not None:
        y_test, _ = _class_ids(test_columns[label], test, label, class_names)
        if (y_test < 0).any():
            _fail(test, f"test rows need a class: {int((y_test < 0).sum())} rows have an empty {label!r}")
    return Dataset(name=name or path.stem, x_train=x_train, y_train=y_train, x_test=x_test,
                   y_test=y_test, class_names=class_names, train_paths=None, source=str(path.resolve()),
                   kind=kind, feature_names=feature_names, notes=notes)


# --------------------------------------------------------------------------- text folders

UNLABELED_TEXT_DIRS = ("unlabeled", "unsup")  # aclImdb calls its unlabeled reviews 'unsup'


def _text_files(folder):
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("."))


def _has_images(folder):
    return any(p.suffix.lower() in (".jpg", ".jpeg", ".png") for p in folder.iterdir())


def find_text_tree(root, depth=0):
    """The folder holding ``train/<class>/*.txt`` (or ``<class>/*.txt``) with no images, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    base = root / "train" if (root / "train").is_dir() else root
    subdirs = [d for d in sorted(base.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    classes = [d for d in subdirs if d.name not in UNLABELED_TEXT_DIRS]
    if any(_text_files(d) for d in classes) and not any(_has_images(d) for d in subdirs):
        return root
    if len(subdirs) == 1 and depth < 3:
        return find_text_tree(subdirs[0], depth + 1)
    return None


def _read_texts(files):
    texts = []
    for p in files:
        try:
            texts.append(p.read_text(encoding="utf-8-sig").strip())
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{p}: is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        except OSError as exc:
            raise DatasetError(f"cannot read {p}: {_one_line(exc)}") from None
    return texts


def load_text_tree(root, *, name=None):
    """``ROOT/{train,test}/<class>/*.txt`` (the aclImdb layout) or ``ROOT/<class>/*.txt``.

    ``train/unsup/`` or ``train/unlabeled/`` files join the pool with label -1. Training
    files are listed in a fixed shuffled order (as image trees are), so any index range is
    a fair sample of the classes.
    """
    root = Path(root)
    base = root / "train" if (root / "train").is_dir() else root
    class_dirs = [d for d in sorted(base.iterdir()) if d.is_dir() and not d.name.startswith(".")
                  and d.name not in UNLABELED_TEXT_DIRS and _text_files(d)]
    class_names = [d.name for d in class_dirs]
    if len(class_names) < 2:
        raise DatasetError(f"{base} needs at least 2 class folders of .txt files, got {class_names}")
    files = [(p, c) for c, d in enumerate(class_dirs) for p in _text_files(d)]
    files += [(p, -1) for u in UNLABELED_TEXT_DIRS if (base / u).is_dir() for p in _text_files(base / u)]
    order = np.random.RandomState(0).permutation(len(files))
    files = [files[i] for i in order]
    x_test = y_test = test_paths = None
    if base != root and (root / "test").is_dir():
        test = [(p, class_names.index(d.name)) for d in sorted((root / "test").iterdir())
                if d.is_dir() and d.name in class_names for p in _text_files(d)]
        if test:
            x_test = np.array(_read_texts([p for p, _ in test]), dtype=object)
            y_test = np.array([c for _, c in test], dtype=np.int64)
            test_paths = [str(p) for p, _ in test]
    x_train = np.array(_read_texts([p for p, _ in files]), dtype=object)
    if not any(x_train):
        raise DatasetError(f"{base}: every text file is empty")
    return Dataset(name=name or root.name, x_train=x_train, y_train=np.array([c for _, c in files], dtype=np.int64),
                   x_test=x_test, y_test=y_test, class_names=class_names, train_paths=[str(p) for p, _ in files],
                   source=str(root.resolve()), kind="text", notes=[f"text files: {len(files)} in the pool"],
                   test_paths=test_paths)
