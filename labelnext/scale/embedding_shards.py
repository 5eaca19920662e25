"""A project's embeddings as a folder of shards (``al init DATA --embeddings FOLDER``), never copied.

FOLDER is in :mod:`scale.shards`' layout (``part-00000.npy``, ... or ``part-*.parquet``), one row per
item: the training items in the order ``al init`` lists them, then the data set's own test split
(the ``.npy`` rule of :mod:`features.embeddings`). :func:`check_folder` reads it once, block by
block, before anything is written: the row count against the items, every value finite as float32,
and a content digest of every value. ``project.json`` keeps the folder's place and, per shard, its
name, size, modification time, header (rows, columns, dtype) and a digest of its first and last rows.

:func:`reopen` re-checks that record at every later command without reading the values again:
another shard set, a size, a header, a modification time or one of the spot rows that differs is
refused. A rewrite that keeps every size, the header, the modification time and the spot rows
(values edited in place with the time put back) is not seen; only a full read would see it.
"""
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labelnext.scale import shards
from labelnext.utils.checks import chunks, rows_per_block

LAYOUT = "shards"


@dataclass
class ShardPool:
    """The opened shards: ``rows`` (all of them, :class:`shards.ShardedRows`), ``pool`` (the training
    items' rows, lazy), ``test`` (the test split's rows, read: small) and ``record`` (``project.json``'s)."""

    rows: object
    pool: object
    test: np.ndarray | None
    record: dict

    def save(self, folder):
        """Nothing to write: the shards stay where they are (the project records their place)."""


class RowRange:
    """Rows ``[start, stop)`` of a lazy 2-D array, still lazy: what the trainer, the analyses and the
    predictions read, a block (a slice), some rows (an int array) or a mask at a time."""

    ndim = 2

    def __init__(self, rows, start, stop):
        self.rows, self.start = rows, int(start)
        self.shape = (int(stop) - int(start), rows.shape[1])
        self.dtype = rows.dtype

    def __len__(self):
        return self.shape[0]

    def check_finite(self, name="embeddings"):
        """Checked when the project was made (every value, streamed); later commands re-check the record."""

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step == 1:
                return self.rows[self.start + start:self.start + max(start, stop)]
            key = np.arange(start, stop, step)
        key = np.asarray(key)
        if key.dtype == bool:
            key = np.flatnonzero(key)
        return self.rows[key.astype(np.int64) + self.start]

    def __array__(self, dtype=None, copy=None):
        out = self[0:self.shape[0]]
        return out if dtype is None else out.astype(dtype, copy=False)


def _facts(path, shard):
    """What is recorded of a shard file without reading its values: size, modification time and its
    header (rows, columns, dtype), the last from the shard as opened."""
    st = os.stat(path)
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
            "header": [int(shard.n_rows), int(shard.n_cols), str(np.dtype(shard.dtype))]}


def _spot_digest(shard):
    """Digest of a shard's first and last rows: a cheap look at the values when re-checking."""
    n = shard.n_rows
    h = hashlib.blake2b(digest_size=8)
    for start in sorted({0, max(0, n - 1)}):
        h.update(np.ascontiguousarray(shard.read(start, min(n, start + 1)), dtype=np.float32).tobytes())
    return h.hexdigest()


def _describe(folder, rows):
    out = []
    for path, shard in zip(shards.shard_paths(folder), rows.shards):
        out.append({"name": path.name, **_facts(path, shard), "spot": _spot_digest(shard)})
    return out


def _open(folder, what):
    try:
        rows = shards.open_rows(folder)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what} {str(folder)!r}: {' '.join(str(exc).split())[:200]}") from None
    if rows.dtype.kind not in "iuf":
        raise ValueError(f"{what} {str(folder)!r} must hold numbers (int or float), got dtype {rows.dtype}")
    return rows


def check_folder(folder, n_train, n_test, *, block_rows=None, progress=None):
    """Read ``folder`` once, block by block, and check it against ``n_train`` + ``n_test`` items.

    Returns
    -------
    ShardPool
        Its ``record``: ``layout``, ``source`` (absolute), ``dim``, ``rows``, ``digest`` (every value,
        as float32), ``shards`` (see the module docstring).

    Raises
    ------
    ValueError
        One line naming the folder, the shard and the row: a wrong row count, NaN or infinite values
        (or beyond float32), an unreadable or non-numeric shard.
    """
    folder = Path(folder).expanduser().resolve()
    rows = _open(folder, "--embeddings")
    n, d = rows.shape
    files = shards.shard_paths(folder)
    want = n_train + n_test
    if n != want:
        split = f"{n_train} training items and {n_test} test items (in that order)" if n_test else f"{n_train} items"
        raise ValueError(f"--embeddings {str(folder)!r}: its {len(files)} shards hold {n} rows ({files[-1].name} ends "
                         f"at row {n - 1}) but the data has {split}: give one row per item, in the order al init "
                         "lists them")
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{n},{d}\0".encode())
    step = block_rows or rows_per_block(d)
    for i, (path, shard) in enumerate(zip(files, rows.shards)):
        for start, stop in chunks(shard.n_rows, step):
            block = np.asarray(shard.read(start, stop), dtype=np.float32)  # beyond float32 -> inf, refused
            bad = np.flatnonzero(~np.isfinite(block).all(axis=1))
            if bad.size:
                row = start + int(bad[0])
                raise ValueError(f"--embeddings {path}: row {row} (row {int(rows.offsets[i]) + row} of the items) "
                                 "holds NaN or infinite values (or beyond float32); every value must be a finite number")
            h.update(np.ascontiguousarray(block).tobytes())
        if progress is not None:
            progress(f"checked {path.name} ({int(rows.offsets[i + 1]):,} of {n:,} rows)")
    record = {"layout": LAYOUT, "source": str(folder), "dim": int(d), "rows": int(n), "digest": h.hexdigest(),
              "shards": _describe(folder, rows)}
    return _pool(rows, n_train, n_test, record)


def _pool(rows, n_train, n_test, record):
    test = np.asarray(rows[n_train:n_train + n_test], dtype=np.float32) if n_test else None
    return ShardPool(rows, RowRange(rows, 0, n_train), test, record)


def reopen(record, n_train, n_test):
    """The shards of ``record`` after the cheap re-check (module docstring); ValueError in one line when
    the folder is gone or any recorded fact differs."""
    folder = Path(record["source"])
    again = (f"put the shards back as they were at `al init`, or start a new project with "
             f"`al init ... --embeddings {folder}`")
    if not folder.is_dir():
        raise ValueError(f"the embedding shards {str(folder)!r} are gone (the project reads them in place); {again}")
    rows = _open(folder, "the embedding shards")
    now = [p.name for p in shards.shard_paths(folder)]
    then = [s["name"] for s in record["shards"]]
    if now != then:
        raise ValueError(f"the embedding shards in {str(folder)!r} changed since `al init`: {len(now)} shard files "
                         f"now, {len(then)} then ({sorted(set(now) ^ set(then))[:2]} differ); {again}")
    for path, shard, was in zip(shards.shard_paths(folder), rows.shards, record["shards"]):
        changed = [k for k, v in _facts(path, shard).items() if v != was[k]]
        if not changed and _spot_digest(shard) != was["spot"]:
            changed = ["first or last row"]
        if changed:
            raise ValueError(f"the embedding shard {path} changed since `al init` ({', '.join(changed)} differ): "
                             f"the rows would no longer match the labels; {again}")
    if rows.shape != (n_train + n_test, record["dim"]):
        raise ValueError(f"the embedding shards {str(folder)!r} hold {rows.shape[0]} rows, the project "
                         f"{n_train + n_test} items; {again}")
    return _pool(rows, n_train, n_test, record)
