"""Inference that streams: a pool's probabilities and embeddings written to disk block by block.

:func:`stream_predict` runs the one inference pass (:func:`training.predict.predict_two_outputs`)
over a source read block by block -- an array in memory, a memory-mapped ``.npy``
(:class:`ArraySource`) or a folder of images decoded lazily (:class:`ImageFolderSource`) --
so neither the items nor the outputs are ever held whole in memory. It writes, in ``out_dir``:

``probs.npy`` (n, n_classes) and ``embeddings.npy`` (n, n_features), float32
    ``.npy`` files filled block by block through ``np.lib.format.open_memmap``; read them with
    ``np.load(path, mmap_mode='r')`` (``AL_functions.analyze`` and ``shards.open_rows`` take
    them as they are). Once complete they equal :func:`training.predict.predict_with_embeddings`
    on the same items, bit for bit (every batch is the same as in one in-memory pass).
``items.txt``
    for a folder: the images' paths relative to it, one per line, in row order (written once).
``state.json``
    the rows finished, the last finished block and the fingerprint of the model
    (:func:`training.fingerprint.model_fingerprint`) and the source,
    written atomically after the block's rows are flushed to disk. A rerun after a crash resumes
    after the last finished block; a rerun with another model or source is refused in one line
    (``overwrite=True``, ``--overwrite``: start again).

With a Dask ``client`` (``--scheduler``) the blocks are predicted by its workers, each loading
the model file once (:func:`predict_block`). Command line (``--help`` lists the flags)::

    python -m labelnext.scale.inference --model models/500_train --images FOLDER --out DIR [--scheduler tcp://host:8786]
    python -m labelnext.scale.inference --model models/500_train/best_model.keras --array pool.npy --out DIR
"""
import functools
import hashlib
import itertools
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from labelnext.utils import console as cli
from labelnext.training.backbones import check_embedding_layer
from labelnext.training.fingerprint import model_fingerprint
from labelnext.training.predict import PREDICT_BATCH, predict_two_outputs, two_output_model
from labelnext.utils.checks import check_int
from labelnext.utils.extras import require
from labelnext.data.images import list_image_files, read_images
from labelnext.data.record import hash_rows
from labelnext.io.files import check_output_folder, folder_lock, load_json, save_json, save_text
from labelnext.training.runs import load_model

PROBS_FILE, EMBEDDINGS_FILE, ITEMS_FILE, STATE_FILE = "probs.npy", "embeddings.npy", "items.txt", "state.json"
OUTPUT_FILES = (PROBS_FILE, EMBEDDINGS_FILE, ITEMS_FILE, STATE_FILE)
# Default block: about this many bytes of float32 model input (what predict converts a block
# to), and at most MAX_BATCHES_PER_BLOCK batches: 5,376 rows of 32 px images, 256 of 224 px.
BLOCK_BYTES = 64 << 20
MAX_BATCHES_PER_BLOCK = 64
# Rows hashed for an array's fingerprint: hashing every row would read the whole pool again.
FINGERPRINT_ROWS = 64
# Raised whenever state.json records something differently (e.g. how the model is fingerprinted):
# an older state is then refused in one line, not compared field by field.
STATE_VERSION = 2


# --------------------------------------------------------------------------- sources
class ArraySource:
    """Items as rows of an array in memory, or of a ``.npy`` file opened memory-mapped.

    Parameters
    ----------
    x : ndarray of shape (n, ...) or str / Path of a ``.npy`` file
    """

    def __init__(self, x):
        self.path = None
        if isinstance(x, (str, os.PathLike)):
            # Absolute: a Dask worker may run elsewhere than the client's working folder.
            path = self.path = Path(x).absolute()
            if not path.is_file():
                raise ValueError(f"source {str(path)!r} is not a file: pass a .npy array or a folder of images")
            try:
                x = np.load(path, mmap_mode="r", allow_pickle=False)
            except ValueError as exc:
                raise ValueError(f"source {str(path)!r} is not a readable .npy array ({str(exc)[:120]})") from None
        self.x = x if isinstance(x, np.ndarray) else np.asarray(x)
        if self.x.ndim < 1 or len(self.x) == 0:
            raise ValueError(f"source must hold at least one item (n, ...), got shape {self.x.shape}")

    def __len__(self):
        return len(self.x)

    @property
    def item_shape(self):
        return tuple(self.x.shape[1:])

    @property
    def numeric(self):
        return self.x.dtype.kind in "biuf"

    def reader(self, start, stop):
        """A picklable callable returning rows ``start:stop``: a ``.npy`` opened from a path is
        read where the call runs (a Dask worker); otherwise the rows travel with it."""
        if self.path is not None:
            return functools.partial(_npy_rows, str(self.path), start, stop)
        return functools.partial(np.asarray, self.x[start:stop])

    def read(self, start, stop):
        """Rows ``start:stop`` as an ndarray (read from disk for a memmap)."""
        return np.asarray(self.x[start:stop])

    def items(self):
        """Names of the rows, for ``items.txt``: None for an array (row i is item i)."""

    def fingerprint(self):
        """Shape, dtype and a digest of :data:`FINGERPRINT_ROWS` evenly spaced rows (an edit
        elsewhere in the array is not seen)."""
        rows = np.unique(np.linspace(0, len(self.x) - 1, FINGERPRINT_ROWS).astype(np.int64))
        h = hashlib.blake2b(digest_size=16)
        hash_rows(h, np.asarray(self.x[rows]))  # texts by their characters, not object pointers
        return {"kind": "array", "shape": list(self.x.shape), "dtype": str(self.x.dtype), "digest": h.hexdigest()}


class ImageFolderSource:
    """Images under a folder (sub-folders included), decoded block by block at ``image_size``.

    The order is that of the paths relative to ``folder``, sorted (see
    :func:`datasets.images.list_image_files`); decoding is the loaders' (:func:`datasets.images.read_images`).
    Only the list of names is held in memory, never the images.

    Parameters
    ----------
    folder : str or Path
    image_size : int
        Side the images are resized to: the model's input side.
    """

    numeric = True

    def __init__(self, folder, image_size):
        self.folder = Path(folder).absolute()  # read by Dask workers too, whatever their working folder
        if not self.folder.is_dir():
            raise ValueError(f"source {str(folder)!r} is not a folder of images")
        self.image_size = check_int(image_size, "image_size", low=8, high=1024)
        files = list_image_files(self.folder)
        if not files:
            raise ValueError(f"source {str(folder)!r} holds no .jpg/.jpeg/.png files (sub-folders included)")
        bad = next((p for p, _ in files if "\n" in p or "\r" in p), None)
        if bad is not None:
            raise ValueError(f"source {str(folder)!r} holds an image whose name has a line break ({bad!r}): rename it")
        self.paths = [p for p, _ in files]
        h = hashlib.blake2b(digest_size=16)
        for path, size in files:
            h.update(f"{path}\0{size}\n".encode())
        self._digest = h.hexdigest()

    def __len__(self):
        return len(self.paths)

    @property
    def item_shape(self):
        return (self.image_size, self.image_size, 3)

    def reader(self, start, stop):
        """A picklable callable decoding images ``start:stop`` where it runs (it carries their paths only)."""
        return functools.partial(read_images, [os.path.join(self.folder, p) for p in self.paths[start:stop]],
                                 self.image_size)

    def read(self, start, stop):
        """Images ``start:stop`` decoded: ndarray of shape (stop - start, size, size, 3), uint8."""
        return self.reader(start, stop)()

    def items(self):
        """The images' paths relative to the folder, in row order (``items.txt``)."""
        return self.paths

    def fingerprint(self):
        """Count, image size and a digest of the relative paths and file sizes (not the folder's
        own path: a moved folder resumes)."""
        return {"kind": "images", "n": len(self.paths), "image_size": self.image_size, "digest": self._digest}


def _npy_rows(path, start, stop):
    return np.asarray(np.load(path, mmap_mode="r")[start:stop])


def _image_side(model):
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(f"a folder of images needs an image model (input (side, side, 3)), this one takes {shape[1:]}")
    return int(shape[1])


def as_source(source, model):
    """A source of items for ``model``: a source object is kept; a folder becomes an
    :class:`ImageFolderSource` at the model's input side; a ``.npy`` path or an array an
    :class:`ArraySource`. Items must have the model's input shape (numbers) or be text."""
    if not hasattr(source, "read"):
        is_folder = isinstance(source, (str, os.PathLike)) and Path(source).is_dir()
        source = ImageFolderSource(source, _image_side(model)) if is_folder else ArraySource(source)
    expected = tuple(model.input_shape[1:])
    if source.numeric and tuple(source.item_shape) != expected:
        raise ValueError(f"source items have shape {tuple(source.item_shape)}, the model takes {expected}")
    return source


# --------------------------------------------------------------------------- state
def default_block_rows(item_shape, batch_size=PREDICT_BATCH):
    """Rows per block: whole batches of about :data:`BLOCK_BYTES` of float32 input, at least one batch."""
    item_bytes = 4 * int(np.prod(item_shape, dtype=np.int64)) if len(item_shape) else 4
    batches = max(1, min(MAX_BATCHES_PER_BLOCK, BLOCK_BYTES // (item_bytes * batch_size)))
    return int(batches * batch_size)


def _read_state(out_dir, fingerprint, overwrite):
    """The state to resume from, None to start afresh; raises (before any write) when ``out_dir``
    holds another run's outputs, or damaged ones, and ``overwrite`` is false."""
    state, problem = _saved_state(out_dir, fingerprint)
    if problem is None or overwrite:
        return state if problem is None else None
    raise ValueError(f"out_dir {str(out_dir)!r} {problem}: start again with overwrite (--overwrite), or use another out_dir")


def _saved_state(out_dir, fingerprint):
    """(state, None) to resume from; (None, None) when none of our files is there; else (None, what is wrong)."""
    if not (out_dir / STATE_FILE).exists():
        ours = [f for f in OUTPUT_FILES if (out_dir / f).exists()]
        return None, (f"holds {ours[0]} but no {STATE_FILE} (not written by stream_predict)" if ours else None)
    try:
        state = load_json(out_dir / STATE_FILE)
        done, old = int(state["rows_done"]), state["fingerprint"]
    except (ValueError, KeyError, TypeError):
        return None, f"has a damaged {STATE_FILE}"
    if state.get("version") != STATE_VERSION:
        return None, f"holds outputs recorded in another format (state version {state.get('version')}, now {STATE_VERSION})"
    if old != fingerprint:
        what = " and ".join(k for k in ("model", "source") if old.get(k) != fingerprint[k]) or "model"
        return None, f"holds the outputs of another {what} ({done:,}/{int(old.get('n', 0)):,} rows done)"
    for name, cols in ((PROBS_FILE, fingerprint["n_classes"]), (EMBEDDINGS_FILE, fingerprint["n_features"])):
        try:
            mm = np.load(out_dir / name, mmap_mode="r")
            ok = mm.shape == (fingerprint["n"], cols) and mm.dtype == np.float32
            del mm
        except (OSError, ValueError):
            ok = False
        if not ok:
            return None, f"has a missing or damaged {name}"
    return state, None


def _start(out_dir, source, fingerprint):
    """Write a fresh state (nothing done), the item names and the empty outputs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # The old state goes first: a crash from here on starts again instead of resuming into new files.
    (out_dir / STATE_FILE).unlink(missing_ok=True)
    (out_dir / ITEMS_FILE).unlink(missing_ok=True)
    items = source.items()
    if items is not None:
        save_text(out_dir / ITEMS_FILE, "".join(f"{p}\n" for p in items))
    n = fingerprint["n"]
    for name, cols in ((PROBS_FILE, fingerprint["n_classes"]), (EMBEDDINGS_FILE, fingerprint["n_features"])):
        # A new file (a reader mapping the old one keeps it, instead of faulting on a truncated
        # one), sparse: no disk blocks are written until rows are.
        (out_dir / name).unlink(missing_ok=True)
        mm = np.lib.format.open_memmap(out_dir / name, mode="w+", dtype=np.float32, shape=(n, cols))
        del mm
    state = {"version": STATE_VERSION, "fingerprint": fingerprint, "rows_done": 0, "last_block": None, "complete": False}
    save_json(out_dir / STATE_FILE, state)
    return state


def _write_rows(path, start, rows):
    """Write ``rows`` at ``start`` of the ``.npy`` at ``path`` and flush them to disk. The file is mapped
    for this block only, so the written pages leave the process (resident memory stays flat)."""
    mm = np.lib.format.open_memmap(path, mode="r+")
    mm[start:start + len(rows)] = rows
    mm.flush()
    del mm


# --------------------------------------------------------------------------- the pass
def stream_predict(model, source, out_dir, *, block_rows=None, batch_size=PREDICT_BATCH, overwrite=False, progress=True,
                   client=None):
    """One inference pass written to ``out_dir`` block by block, resumable after a crash.

    Every argument, the source and ``out_dir``'s earlier run are checked before anything is
    written. Locally, block k + 1 is read (decoded) by a second thread while block k is
    predicted; with a Dask ``client``, blocks are predicted by its workers, a few per worker
    in flight, and written here as they come back.

    Parameters
    ----------
    model : keras.Model with a layer named ``embedding`` (:func:`training.backbones.build_model`), or
        the path of a run folder / ``.keras`` file (required with ``client``: each worker loads it
        once, so it must be readable there).
    source : ndarray of shape (n, ...), a ``.npy`` path, a folder of images, or a source object
        (:class:`ArraySource`, :class:`ImageFolderSource`: ``read(start, stop)``,
        ``reader(start, stop)``, ``items()``, ``fingerprint()``, ``item_shape``, ``numeric``, ``len``).
        With ``client``, a path (folder or ``.npy``) is read by the workers; an in-memory
        array's blocks are sent to them.
    out_dir : str or Path
        Folder of ``probs.npy``, ``embeddings.npy``, ``state.json`` [, ``items.txt``].
    block_rows : int or None
        Rows per block, a multiple of ``batch_size`` (so every batch is that of an in-memory
        pass). None: :func:`default_block_rows`.
    batch_size : int
    overwrite : bool
        Start again when ``out_dir`` holds the outputs of another model or source.
    progress : bool
        One line per block on stderr: items done / total, items per second, time left.
    client : distributed.Client or None

    Returns
    -------
    probs : memmap of shape (n, n_classes), float32, read-only
    embeddings : memmap of shape (n, n_features), float32, read-only

    Raises
    ------
    ValueError
        A bad argument or source, or ``out_dir`` holding another run's outputs (without ``overwrite``).
    """
    check_int(batch_size, "batch_size", low=1)
    model_path = None
    if isinstance(model, (str, os.PathLike)):
        model, model_path = load_model(model)
        model_path = model_path.absolute()
    elif client is not None:
        raise ValueError("model must be the path of a run folder or .keras file when a client is given: "
                         "each worker loads it")
    check_embedding_layer(model)
    source = as_source(source, model)
    n = len(source)
    if block_rows is None:
        block_rows = default_block_rows(source.item_shape, batch_size)
    check_int(block_rows, "block_rows", low=1)
    if block_rows % batch_size:
        raise ValueError(f"block_rows must be a multiple of batch_size ({batch_size}), got {block_rows}: "
                         f"each batch is then the same as in an in-memory pass")
    out_dir = Path(check_output_folder(out_dir))
    both = two_output_model(model)
    fingerprint = {"model": model_fingerprint(model), "source": source.fingerprint(), "n": n,
                   "n_classes": int(both.outputs[0].shape[-1]), "n_features": int(both.outputs[1].shape[-1])}
    with folder_lock(out_dir):
        state = _read_state(out_dir, fingerprint, overwrite)
        if state is None:
            state = _start(out_dir, source, fingerprint)
        blocks = [(start, min(start + block_rows, n)) for start in range(state["rows_done"], n, block_rows)]
        if client is None:
            results = _local_blocks(both, source, blocks, batch_size)
        else:
            results = _worker_blocks(client, model_path, fingerprint["model"], source, blocks, batch_size)
        _record_blocks(results, blocks, out_dir, state, progress)
    return np.load(out_dir / PROBS_FILE, mmap_mode="r"), np.load(out_dir / EMBEDDINGS_FILE, mmap_mode="r")


def _local_blocks(both, source, blocks, batch_size):
    """``(start, stop, probs, embeddings)`` of each block, in order."""
    if not blocks:
        return
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(source.read, *blocks[0])
        for i, (start, stop) in enumerate(blocks):
            x = pending.result()
            # Read the next block while this one is predicted (decoding and TensorFlow overlap).
            pending = reader.submit(source.read, *blocks[i + 1]) if i + 1 < len(blocks) else None
            yield (start, stop, *predict_two_outputs(both, x, batch_size))


# Per worker process: (model path, fingerprint) -> two-output model, loaded on its first block.
_WORKER_MODELS = {}


def predict_block(model_path, model_digest, reader, batch_size):
    """On a Dask worker: probabilities and embeddings of the block ``reader()`` returns.

    The model is loaded once per process and must have the fingerprint the client computed
    (a model file replaced under a running job is refused, not mixed in).
    """
    key = (str(model_path), model_digest)
    if key not in _WORKER_MODELS:
        model, _ = load_model(model_path)
        if model_fingerprint(model) != model_digest:
            raise ValueError(f"model_path {str(model_path)!r} on this worker is not the client's model: "
                             f"give every worker the same file")
        _WORKER_MODELS[key] = two_output_model(model)
    return predict_two_outputs(_WORKER_MODELS[key], reader(), batch_size)


def _worker_blocks(client, model_path, model_digest, source, blocks, batch_size):
    """``(start, stop, probs, embeddings)`` of each block as Dask workers finish them (any order).
    At most two blocks per worker are in flight: an in-memory source is sent as it is needed."""
    as_completed = require("distributed", "scale", "inference on a Dask cluster").as_completed

    in_flight = 2 * max(1, len(client.scheduler_info()["workers"]))
    todo, where = iter(blocks), {}

    def submit(block):
        future = client.submit(predict_block, str(model_path), model_digest, source.reader(*block), batch_size,
                               pure=False)
        where[future.key] = block
        return future

    done = as_completed([submit(b) for b in itertools.islice(todo, in_flight)])
    for future in done:
        start, stop = where.pop(future.key)
        probs, emb = future.result()
        following = next(todo, None)
        if following is not None:
            done.add(submit(following))
        yield start, stop, probs, emb


def _record_blocks(results, blocks, out_dir, state, progress):
    """Write each block's rows, then record the finished prefix of rows in ``state.json``."""
    n, first = state["fingerprint"]["n"], state["rows_done"]
    if not blocks:
        cli.progress(f"inference: {out_dir} is complete ({n:,} items): nothing to do", progress)
        return
    resumed = f", resuming at item {first:,}" if first else ""
    cli.progress(f"inference: {n:,} items in blocks of {blocks[0][1] - blocks[0][0]:,} -> {out_dir}{resumed}", progress)
    t0, written, finished = time.perf_counter(), 0, {}
    for start, stop, probs, emb in results:
        _write_rows(out_dir / PROBS_FILE, start, probs)
        _write_rows(out_dir / EMBEDDINGS_FILE, start, emb)
        # Recorded only once the rows are on disk, and only as far as every earlier block is
        # too (workers finish out of order): a crash redoes the blocks past the recorded rows.
        finished[start] = stop
        while state["rows_done"] in finished:
            begin = state["rows_done"]
            end = finished.pop(begin)
            state.update(rows_done=end, last_block=[begin, end])
        state["complete"] = state["rows_done"] == n
        save_json(out_dir / STATE_FILE, state)
        written += stop - start
        done = first + written
        rate = written / max(time.perf_counter() - t0, 1e-9)
        cli.progress(cli.rate_line("inference", done, n, "items", rate), progress)


# --------------------------------------------------------------------------- command line
# Python parameters -> the flags of this script, for one-line errors (cli.flag_message).
FLAGS = {"model_path": "--model", "out_dir": "--out", "block_rows": "--block-rows", "batch_size": "--batch-size"}


def build_parser():
    p = cli.ArgumentParser(
        description="One inference pass over a pool too large for memory: probabilities and embeddings written block "
        "by block to OUT/probs.npy and OUT/embeddings.npy (float32, read them with np.load(..., mmap_mode='r')). "
        "A rerun after a crash resumes after the last finished block (OUT/state.json); a rerun with another model "
        "or source is refused unless --overwrite.")
    p.add_argument("--model", required=True, help="run folder or .keras file of a model built by train.py (with an 'embedding' layer)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="folder of .jpg/.jpeg/.png images (sub-folders included), decoded block by block at the "
                     "model's input size, in the order of their sorted relative paths (listed in OUT/items.txt)")
    src.add_argument("--array", help=".npy array of items (n, ...) shaped as the model's input, read memory-mapped")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--block-rows", type=int, default=None,
                   help="rows per block written and recorded, a multiple of --batch-size; None: about 64 MB of float32 input")
    p.add_argument("--batch-size", type=int, default=PREDICT_BATCH, help="rows per model call")
    p.add_argument("--overwrite", action="store_true", help="start again when --out holds the outputs of another model or source")
    p.add_argument("--scheduler", default=None, help="address of a Dask scheduler (tcp://host:8786) whose workers "
                   "predict the blocks; --model and --images / --array must be readable on every worker")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    # Everything that needs no model is checked before TensorFlow is imported and before any write.
    check_int(args.batch_size, "batch_size", low=1)
    if args.block_rows is not None:
        check_int(args.block_rows, "block_rows", low=1)
        if args.block_rows % args.batch_size:
            raise ValueError(f"--block-rows must be a multiple of --batch-size ({args.batch_size}), got {args.block_rows}")
    if args.images is not None and not Path(args.images).is_dir():
        raise ValueError(f"--images {args.images!r} is not a folder")
    if args.array is not None and not Path(args.array).is_file():
        raise ValueError(f"--array {args.array!r} is not a file")
    if not Path(args.model).exists():
        raise ValueError(f"--model {args.model!r} does not exist: pass a run folder or a .keras file (python train.py writes one)")
    check_output_folder(args.out)
    run = functools.partial(stream_predict, args.model, args.images if args.images is not None else args.array, args.out,
                            block_rows=args.block_rows, batch_size=args.batch_size, overwrite=args.overwrite,
                            progress=not args.quiet)
    if args.scheduler is None:
        probs, emb = run()
    else:
        with require("distributed", "scale", "--scheduler").Client(args.scheduler) as client:
            probs, emb = run(client=client)
    print(f"wrote {Path(args.out) / PROBS_FILE} {probs.shape} and {Path(args.out) / EMBEDDINGS_FILE} {emb.shape}")


if __name__ == "__main__":
    sys.exit(cli.run_cli(main, flags=FLAGS))
