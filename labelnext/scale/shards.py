"""Pools larger than memory: one 2-D array stored as a memory-mapped ``.npy`` or as a
folder of shards (``.npy``, or Parquet when pyarrow is installed), read in fixed-size
blocks so memory stays flat as the pool grows.

:func:`open_rows` returns something every analysis reads like an array: ``x[start:stop]``
(an ndarray of those rows, across shard boundaries), ``x[int_array]`` and ``x[bool_mask]``
(ndarrays of those rows, read shard by shard), ``.shape``, ``.dtype``, and
:func:`iter_blocks` to stream it. Nothing is read at open beyond the shards' headers.

Shard layout (what :func:`write_shards` writes; files sort by name into row order):
``part-00000.npy``, ``part-00001.npy``, ... each of shape (rows_i, n_features); or
``part-00000.parquet``, ... each with either one fixed-size-list column of floats
(``column``, default ``'embedding'``) or only numeric columns (one per feature, in order).
"""
import os
from pathlib import Path

import numpy as np

from labelnext.utils.checks import check_choice, check_int, chunks, rows_per_block
from labelnext.utils.extras import require

SHARD_FORMATS = ("npy", "parquet")
# Rows per Parquet row group written: reads touch only the row groups they need.
PARQUET_ROW_GROUP = 65_536


# pyarrow is the 'scale' extra; .npy shards need nothing.
PARQUET_FEATURE = "Parquet shards (.npy shards need no extra)"


def _parquet():
    return require("pyarrow.parquet", "scale", PARQUET_FEATURE)


class _NpyShard:
    def __init__(self, path):
        self.path = str(path)
        self._data = np.load(self.path, mmap_mode="r")
        if self._data.ndim != 2:
            raise ValueError(f"shard {self.path} must hold a 2-D array, got shape {self._data.shape}")
        self.n_rows, self.n_cols = self._data.shape
        self.dtype = self._data.dtype

    def read(self, start, stop):
        return np.asarray(self._data[start:stop])

    def take(self, rows):
        return np.asarray(self._data[rows])


class _ParquetShard:
    """One Parquet file; reads only the row groups that hold the rows asked for."""

    def __init__(self, path, column):
        pq = _parquet()
        self.path = str(path)
        self._file = pq.ParquetFile(self.path)
        meta = self._file.metadata
        self.n_rows = meta.num_rows
        self._group_starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        schema = self._file.schema_arrow
        self._list = column in schema.names
        if self._list:
            self._columns = [column]
            self.n_cols = schema.field(column).type.list_size
            if self.n_cols is None or self.n_cols <= 0:
                raise ValueError(f"column {column!r} of {self.path} must be a fixed-size list of numbers")
            self.dtype = np.dtype(schema.field(column).type.value_type.to_pandas_dtype())
        else:
            self._columns = list(schema.names)
            types = {np.dtype(schema.field(c).type.to_pandas_dtype()) for c in self._columns}
            if not all(np.issubdtype(t, np.number) for t in types):
                raise ValueError(f"{self.path} has no column {column!r} and not only numeric columns")
            self.n_cols = len(self._columns)
            self.dtype = np.result_type(*types)

    def _to_numpy(self, table):
        if self._list:
            flat = table.column(0).combine_chunks().flatten().to_numpy(zero_copy_only=False)
            return flat.reshape(-1, self.n_cols).astype(self.dtype, copy=False)
        return np.column_stack([table.column(c).to_numpy() for c in self._columns]).astype(self.dtype, copy=False)

    def read(self, start, stop):
        if stop <= start:
            return np.empty((0, self.n_cols), dtype=self.dtype)
        first = int(np.searchsorted(self._group_starts, start, side="right") - 1)
        last = int(np.searchsorted(self._group_starts, stop - 1, side="right") - 1)
        table = self._file.read_row_groups(list(range(first, last + 1)), columns=self._columns)
        offset = start - self._group_starts[first]
        return self._to_numpy(table.slice(offset, stop - start))

    def take(self, rows):
        out = np.empty((rows.size, self.n_cols), dtype=self.dtype)
        # Contiguous runs of row groups at a time: memory bounded by the groups touched.
        group = np.searchsorted(self._group_starts, rows, side="right") - 1
        for g in np.unique(group):
            sel = np.flatnonzero(group == g)
            block = self.read(int(self._group_starts[g]), int(self._group_starts[g + 1]))
            out[sel] = block[rows[sel] - self._group_starts[g]]
        return out


class ShardedRows:
    """Rows of one 2-D array spread over shard files, read on demand.

    Parameters
    ----------
    shards : list of shard readers (see :func:`open_rows`), in row order.

    Attributes
    ----------
    shape : (n_rows, n_features)
    offsets : ndarray of shape (n_shards + 1,), first row of each shard, then n_rows
    """

    ndim = 2

    def __init__(self, shards):
        if not shards:
            raise ValueError("no shards: the folder holds no part-*.npy or part-*.parquet files")
        widths = {s.n_cols for s in shards}
        if len(widths) != 1:
            raise ValueError(f"shards have different feature counts {sorted(widths)}; they must all be equal")
        self.shards = shards
        self.offsets = np.cumsum([0] + [s.n_rows for s in shards]).astype(np.int64)
        self.shape = (int(self.offsets[-1]), widths.pop())
        self.dtype = np.result_type(*[s.dtype for s in shards])

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"ShardedRows(shape={self.shape}, shards={len(self.shards)})"

    def check_finite(self, name="embeddings"):
        """Finite values, checked block by block (the hook ``checks.check_embeddings`` calls for lazy inputs)."""
        for start, stop, block in iter_blocks(self):
            if not np.isfinite(block).all():
                raise ValueError(f"{name} contains NaN or infinite values (first bad block: rows {start}-{stop - 1})")

    def shard_rows(self, i):
        """(first row, stop row) of shard ``i`` in the whole array."""
        return int(self.offsets[i]), int(self.offsets[i + 1])

    def _read(self, start, stop):
        out = np.empty((stop - start, self.shape[1]), dtype=self.dtype)
        first = int(np.searchsorted(self.offsets, start, side="right") - 1)
        pos = start
        for i in range(first, len(self.shards)):
            lo, hi = self.shard_rows(i)
            if pos >= stop:
                break
            end = min(hi, stop)
            out[pos - start:end - start] = self.shards[i].read(pos - lo, end - lo)
            pos = end
        return out

    def _take(self, rows):
        out = np.empty((rows.size, self.shape[1]), dtype=self.dtype)
        shard = np.searchsorted(self.offsets, rows, side="right") - 1
        for i in np.unique(shard):
            sel = np.flatnonzero(shard == i)
            out[sel] = self.shards[i].take(rows[sel] - self.offsets[i])
        return out

    def __getitem__(self, key):
        n = self.shape[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step != 1:
                return self._take(np.arange(start, stop, step))
            return self._read(start, max(start, stop))
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (n,):
                raise IndexError(f"boolean index of shape {key.shape} does not match {n} rows")
            return self._take(np.flatnonzero(key))
        if np.issubdtype(key.dtype, np.integer) and key.ndim <= 1:
            rows = np.atleast_1d(key).astype(np.int64)
            if rows.size and (rows.min() < -n or rows.max() >= n):
                raise IndexError(f"row index out of range for {n} rows")
            out = self._take(np.where(rows < 0, rows + n, rows))
            return out[0] if key.ndim == 0 else out
        raise IndexError("sharded rows take a slice, an integer, an integer array or a boolean mask")

    def __array__(self, dtype=None, copy=None):
        out = self._read(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)


def shard_paths(folder):
    """The shard files of ``folder`` in row order (``part-*.npy`` or ``part-*.parquet``, not mixed)."""
    folder = Path(folder)
    npy = sorted(folder.glob("part-*.npy"))
    parquet = sorted(folder.glob("part-*.parquet"))
    if npy and parquet:
        raise ValueError(f"{folder} mixes .npy and .parquet shards; keep one format per folder")
    return npy or parquet


def open_rows(path, *, column="embedding"):
    """Open a pool array without reading it.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file (memory-mapped), a ``.parquet`` file, or a folder of shards.
    column : str
        Parquet: the fixed-size-list column holding each row (else all columns, numeric).

    Returns
    -------
    numpy.memmap (a single ``.npy``) or :class:`ShardedRows`
    """
    path = Path(path)
    if path.is_dir():
        files = shard_paths(path)
        return ShardedRows([_NpyShard(f) if f.suffix == ".npy" else _ParquetShard(f, column) for f in files])
    if path.suffix == ".npy":
        return np.load(path, mmap_mode="r")
    if path.suffix == ".parquet":
        return ShardedRows([_ParquetShard(path, column)])
    raise ValueError(f"path must be a .npy file, a .parquet file or a folder of shards, got {str(path)!r}")


def iter_blocks(x, block_rows=None):
    """Yield ``(start, stop, rows)`` over ``x`` in blocks of ``block_rows`` (default 16 MB of float32).

    Works on ndarrays, memmaps, :class:`ShardedRows` and ``knn.StandardizedView``.
    """
    n, d = x.shape
    step = rows_per_block(d) if block_rows is None else check_int(block_rows, "block_rows", low=1)
    for start, stop in chunks(n, step):
        yield start, stop, np.asarray(x[start:stop])


def write_shards(array, folder, rows_per_shard, *, fmt="npy", column="embedding"):
    """Write a 2-D array (any of the above kinds) as shards, block by block.

    Parameters
    ----------
    array : array-like of shape (n_rows, n_features)
    folder : str or Path, created if missing; existing ``part-*`` files are refused
    rows_per_shard : int
    fmt : {'npy', 'parquet'}
    column : str
        Parquet: name of the fixed-size-list column.

    Returns
    -------
    list of Path, the shard files in row order
    """
    check_choice(fmt, "fmt", SHARD_FORMATS)
    check_int(rows_per_shard, "rows_per_shard", low=1)
    if len(array.shape) != 2:
        raise ValueError(f"array must be 2-D (n_rows, n_features), got shape {array.shape}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if shard_paths(folder):
        raise ValueError(f"{folder} already holds shards; write to an empty folder")
    n, d = array.shape
    paths = []
    for i, (start, stop) in enumerate(chunks(n, rows_per_shard)):
        path = folder / f"part-{i:05d}.{fmt}"
        if fmt == "npy":
            out = np.lib.format.open_memmap(path, mode="w+", dtype=array.dtype, shape=(stop - start, d))
            for s, e, block in iter_blocks(array[start:stop] if isinstance(array, np.ndarray) else _Slice(array, start, stop)):
                out[s:e] = block
            out.flush()
            del out
        else:
            _write_parquet(array, start, stop, path, column)
        paths.append(path)
    return paths


class _Slice:
    """Rows [start, stop) of a lazy array, still lazy (for block-wise copies)."""

    def __init__(self, x, start, stop):
        self.x, self.start = x, start
        self.shape = (stop - start, x.shape[1])

    def __getitem__(self, key):
        s, e, _ = key.indices(self.shape[0])
        return self.x[self.start + s:self.start + e]


def _write_parquet(array, start, stop, path, column):
    pq = _parquet()
    pa = require("pyarrow", "scale", PARQUET_FEATURE)
    d = array.shape[1]
    writer = None
    try:
        for s, e in chunks(stop - start, PARQUET_ROW_GROUP):
            block = np.ascontiguousarray(array[start + s:start + e])
            values = pa.array(block.reshape(-1))
            table = pa.table({column: pa.FixedSizeListArray.from_arrays(values, d)})
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table, row_group_size=PARQUET_ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()


def folder_bytes(folder):
    """Bytes on disk of a folder's shard files."""
    return sum(os.path.getsize(p) for p in shard_paths(folder))
