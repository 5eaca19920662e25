"""Image loaders: bundled digits, CIFAR-10 pickles, image-folder trees, ``.npz`` and archives."""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from labelnext.io.files import atomic_path

from labelnext.data.record import (CIFAR10_CLASSES, Dataset, DatasetError, _as_labels, _class_names,
                             _check_image_size, _one_line, _progress, _slug, _strip_suffix)

_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_PICKLE_DIR = "cifar-10-batches-py"
_UNLABELED = "unlabeled"
# Trees smaller than this decode in well under a second: not worth a cache file...
_CACHE_MIN_FILES = 1000
# ...unless decoding took this long (a few huge photos): then the resized pixels are kept too.
_CACHE_MIN_SECONDS = 1.0
_PROGRESS_EVERY = 10_000
# Bump when the decoding changes, so old cache files are not reused.
_CACHE_VERSION = "1"


# --------------------------------------------------------------------------- images

def _uint8_scale(x):
    """Return the factor that maps ``x`` to [0, 255] (1 or 255), checking the range once."""
    if x.dtype == np.uint8 or x.size == 0:
        return 1
    if x.dtype == np.bool_:
        return 255
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise DatasetError("images contain NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo >= 0.0 and hi <= 1.0:
            return 255
        if lo < 0.0 or hi > 255.0:
            raise DatasetError(f"float images must lie in [0, 1] or [0, 255], got values in [{lo:g}, {hi:g}]")
        return 1
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or hi > 255:
        raise DatasetError(f"integer images must lie in [0, 255], got values in [{lo}, {hi}]; scale them first")
    return 1


def _to_uint8(x, scale):
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind == "f":
        return np.rint(x * scale if scale != 1 else x).astype(np.uint8)
    return x.astype(np.uint8) * np.uint8(scale)


def resize_images(images, size):
    """Resize any batch of images to ``(n, size, size, 3)`` uint8.

    Parameters
    ----------
    images : array-like of shape (n, H, W), (n, H, W, 1), (n, H, W, 3) or (n, H, W, 4)
        Numeric images. Floats in [0, 1] are scaled to [0, 255]; other values must already
        lie in [0, 255]. Grayscale is repeated to 3 channels; RGBA drops the alpha channel.
    size : int
        Output side, in [8, 1024]. Resizing is bilinear (Pillow) and does not keep the
        aspect ratio.

    Returns
    -------
    ndarray of shape (n, size, size, 3), uint8
        Always a new array.

    Raises
    ------
    DatasetError
        For a bad shape, a non-numeric dtype, out-of-range values or a bad ``size``.
    """
    size = _check_image_size(size, "size")
    x = np.asarray(images)
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"images must be numeric, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise DatasetError(f"images must have shape (n, H, W) or (n, H, W, 1|3|4), got {np.shape(images)}")
    n, h, w = x.shape[:3]
    # One range check for the whole batch, so every chunk is scaled alike.
    scale = _uint8_scale(x)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    # Chunks keep the float temporaries small for large batches.
    for start in range(0, n, 1024):
        chunk = _to_uint8(x[start:start + 1024], scale)[..., :3]  # drops alpha
        if (h, w) != (size, size):
            resized = np.empty((len(chunk), size, size, chunk.shape[-1]), dtype=np.uint8)
            for i, img in enumerate(chunk):
                pil = Image.fromarray(np.ascontiguousarray(img[..., 0] if img.shape[-1] == 1 else img))
                resized[i] = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR)).reshape(size, size, -1)
            chunk = resized
        out[start:start + len(chunk)] = chunk  # broadcasts grayscale to 3 channels
    return out


def _read_image(path, size):
    """Decode one image file to (size, size, 3) uint8."""
    try:
        with Image.open(path) as im:
            # JPEG draft mode decodes large photos at a reduced DCT scale (still >= size): much faster.
            im.draft("RGB", (size, size))
            im = ImageOps.exif_transpose(im)  # phone photos store rotation in EXIF
            if im.mode in ("P", "PA"):
                im = im.convert("RGBA")  # palette transparency must go through RGBA
            if im.mode != "RGB":
                im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # PIL raises all for bad files
        raise DatasetError(f"cannot read image {path}: {_one_line(exc)}; fix or remove the file") from exc


def _decode_images(paths, size, label=""):
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    loud = len(paths) >= _PROGRESS_EVERY
    if loud:
        _progress(f"decoding {len(paths):,} {label}images (cached after the first load)")
    for i, path in enumerate(paths):
        out[i] = _read_image(path, size)
        if loud and (i + 1) % _PROGRESS_EVERY == 0:
            _progress(f"  {i + 1:,}/{len(paths):,}")
    return out


# --------------------------------------------------------------------------- digits

def _load_digits(image_size):
    # scikit-learn takes ~1 s to import: only pay for it when digits are asked for.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    y = bunch.target.astype(np.int64)
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # values 0..16
    # Fixed split, independent of any experiment seed, so every run sees the same test set.
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=y)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return Dataset(
        name="digits",
        x_train=resize_images(images[train_idx], image_size),
        y_train=y[train_idx],
        x_test=resize_images(images[test_idx], image_size),
        y_test=y[test_idx],
        class_names=[str(c) for c in range(10)],
        train_paths=None,
        source="sklearn.datasets.load_digits",
    )


# --------------------------------------------------------------------------- (a) pickles

def _is_pickle_dir(folder):
    return (folder / "data_batch_1").is_file() and (folder / "test_batch").is_file()


class _CifarUnpickler(pickle.Unpickler):
    """Admits only what the CIFAR-10 format holds: dicts, lists, str, bytes, ints and
    NumPy arrays. ``pickle.load`` would run any callable a file names (``__reduce__``),
    so a data folder from elsewhere could run code; here every other global is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # Python 2 pickles store some bytes through codecs.encode
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: a CIFAR-10 batch holds only "
                                     f"dicts, lists, strings, bytes, ints and NumPy arrays")


def _unpickle(path):
    try:
        with open(path, "rb") as f:
            # CIFAR pickles were written by Python 2: bytes keys.
            obj = _CifarUnpickler(f, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(f"cannot read CIFAR-10 pickle {path}: {_one_line(exc)}") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"CIFAR-10 pickle {path} must hold a dict, got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _read_batch(path):
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(f"CIFAR-10 pickle {path} must have keys b'data' and b'labels', got {sorted(batch)}")
    data = np.asarray(batch["data"])
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise DatasetError(f"b'data' in {path} must be (n, 3072) uint8 (32x32x3, channel-first), "
                           f"got {data.shape} {data.dtype}")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, _as_labels(batch["labels"], len(x), "b'labels'", path, allow_unknown=False)


def _load_pickles(folder, image_size, name, source):
    numbered = sorted((int(p.name.rsplit("_", 1)[1]), p) for p in folder.glob("data_batch_*")
                      if p.name.rsplit("_", 1)[1].isdigit())
    parts = [_read_batch(p) for _, p in numbered]
    x_test, y_test = _read_batch(folder / "test_batch")
    names = None
    if (folder / "batches.meta").is_file():
        names = list(_unpickle(folder / "batches.meta").get("label_names", [])) or None
    y_train = np.concatenate([y for _, y in parts])
    x_train = np.concatenate([x for x, _ in parts])
    return Dataset(
        name=name,
        x_train=resize_images(x_train, image_size),
        y_train=y_train,
        x_test=resize_images(x_test, image_size),
        y_test=y_test,
        class_names=_class_names(names, [y_train, y_test], folder, CIFAR10_CLASSES),
        train_paths=None,
        source=source,
    )


# --------------------------------------------------------------------------- (c) npz

def _load_npz(path, image_size, name):
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except ValueError as exc:  # object arrays need pickle, which we refuse
        raise DatasetError(f"cannot read {path} without pickle ({_one_line(exc)}); save class_names as "
                           "np.array(names, dtype=str) and images/labels as numeric arrays") from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"cannot read .npz {path}: {_one_line(exc)}") from exc
    missing = [k for k in ("x_train", "y_train") if k not in data]
    if ("x_test" in data) != ("y_test" in data):
        missing.append("y_test" if "x_test" in data else "x_test")
    if missing:
        raise DatasetError(f".npz {path} is missing keys {missing}: it needs x_train, y_train and optionally "
                           f"x_test + y_test and class_names (keras.datasets layout); it has {sorted(data)}")
    x_train = resize_images(data["x_train"], image_size)
    y_train = _as_labels(data["y_train"], len(x_train), "y_train", path, allow_unknown=True)
    x_test = y_test = None
    if "x_test" in data:
        x_test = resize_images(data["x_test"], image_size)
        y_test = _as_labels(data["y_test"], len(x_test), "y_test", path, allow_unknown=False)
    names = data["class_names"].tolist() if "class_names" in data else None
    default = CIFAR10_CLASSES if name == "cifar10" else None
    return Dataset(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=_class_names(names, [y_train, y_test], path, default),
                   train_paths=None, source=str(path))


# --------------------------------------------------------------------------- (b) trees

def _visible_dirs(folder):
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX")


def _image_files(folder):
    """Direct image files of ``folder`` as ``(path, stat)``, sorted by name, hidden files skipped.

    Plain strings, not Path objects: building 60,000 Paths costs more than loading the cache.
    """
    with os.scandir(folder) as it:
        entries = [e for e in it if e.is_file() and not e.name.startswith(".")
                   and e.name.lower().endswith(_IMAGE_EXTS)]
    return [(e.path, e.stat()) for e in sorted(entries, key=lambda e: e.name)]


def list_image_files(root):
    """Every image file under ``root``, sub-folders included (hidden ones and ``__MACOSX`` skipped),
    as ``(path relative to root, size in bytes)`` sorted by that path: the same order on every run."""
    root = Path(root).absolute()  # "." would list "a/x.png" below it, not "./a/x.png"
    skip = len(os.path.join(str(root), ""))  # scandir yields "<folder>/<name>": cheaper than relpath
    found, stack = [], [root]
    while stack:
        folder = stack.pop()
        found += [(path[skip:], st.st_size) for path, st in _image_files(folder)]
        stack += _visible_dirs(folder)
    found.sort()
    return found


def read_images(paths, size):
    """Decode image files as every loader does (EXIF rotation, RGB, bilinear resize) to an ndarray of
    shape (len(paths), size, size, 3), uint8; :class:`DatasetError` names a file that cannot be read."""
    return _decode_images(list(paths), _check_image_size(size, "size"))


def _class_files(class_dir):
    files = _image_files(class_dir)
    if not files:
        raise DatasetError(f"class folder {class_dir} has no images: put .jpg/.jpeg/.png files in it or remove it")
    return files


def _find_layout(root, depth=0):
    """Return ``(kind, folder)`` with kind in {'pickle', 'tree', 'flat'}, or None."""
    if _is_pickle_dir(root):
        return "pickle", root
    if _is_pickle_dir(root / _PICKLE_DIR):
        return "pickle", root / _PICKLE_DIR
    if (root / "train").is_dir():
        return "tree", root
    subdirs = _visible_dirs(root)
    if any(_image_files(d) for d in subdirs if d.name != _UNLABELED):
        return "flat", root
    # One wrapping folder, as a tarball of "cifar10/{train,test}" extracts to.
    if len(subdirs) == 1 and not _image_files(root) and depth < 3:
        return _find_layout(subdirs[0], depth + 1)
    return None


def _list_tree(root, kind):
    """List an image-folder tree: classes and (file, stat, label) per split."""
    train_root = root / "train" if kind == "tree" else root
    class_dirs = [d for d in _visible_dirs(train_root) if d.name != _UNLABELED]
    if not class_dirs:
        raise DatasetError(f"{train_root} has no class folders: expected {train_root}/<class>/*.jpg|png")
    classes = [d.name for d in class_dirs]
    train = [(p, st, c) for c, d in enumerate(class_dirs) for p, st in _class_files(d)]
    unlabeled_dir = root / _UNLABELED
    if unlabeled_dir.is_dir():
        train += [(p, st, -1) for p, st in _image_files(unlabeled_dir)]
    # Trees list files class by class; a fixed shuffle makes any index range (start_idx/end_idx)
    # a fair sample of the classes instead of one class, and keeps indices stable across runs.
    order = np.random.RandomState(0).permutation(len(train))
    train = [train[i] for i in order]
    test = None
    if kind == "tree" and (root / "test").is_dir():
        test = []
        for d in _visible_dirs(root / "test"):
            if d.name not in classes:
                raise DatasetError(f"test class folder {d} has no matching folder in {train_root}; "
                                   f"train classes are {classes}")
            test += [(p, st, classes.index(d.name)) for p, st in _class_files(d)]
        test = test or None  # an empty test/ folder means no test split
    return classes, train, test


def _tree_cache_file(root, cache_dir, image_size, train, test):
    h = hashlib.blake2b(digest_size=10)
    h.update(f"{_CACHE_VERSION}\0{root}\0{image_size}\0".encode())
    skip = len(str(root)) + 1
    for split, items in (("train", train), ("test", test or [])):
        h.update(f"{split}:{len(items)}\0".encode())
        # Relative path + label + size + mtime: renaming, relabelling or editing invalidates.
        h.update("".join(f"{p[skip:]}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\0"
                         for p, st, label in items).encode())
    return cache_dir / "decoded" / f"{_slug(root.name)}-{image_size}px-{h.hexdigest()}.npz"


def _read_tree_cache(cache_file, n_train, n_test, image_size):
    try:
        with np.load(cache_file, allow_pickle=False) as f:
            x_train = f["x_train"]
            x_test = f["x_test"] if n_test is not None else None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # missing or unreadable: decode again and overwrite
    shape = (image_size, image_size, 3)
    if x_train.shape != (n_train, *shape) or (x_test is not None and x_test.shape != (n_test, *shape)):
        return None
    return x_train, x_test


def _write_tree_cache(cache_file, x_train, x_test):
    arrays = {"x_train": x_train} if x_test is None else {"x_train": x_train, "x_test": x_test}
    try:
        with atomic_path(cache_file, ".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)  # uncompressed: images barely compress and load 5x faster
    except OSError as exc:  # a read-only cache must not stop the run
        _progress(f"could not write cache {cache_file}: {_one_line(exc)}")


def _load_tree(root, kind, image_size, cache_dir, name, source):
    classes, train, test = _list_tree(root, kind)
    n_files = len(train) + len(test or [])
    cache_file = _tree_cache_file(root, cache_dir, image_size, train, test)
    cached = _read_tree_cache(cache_file, len(train), None if test is None else len(test), image_size)
    if cached is not None:
        x_train, x_test = cached
    else:
        t = time.perf_counter()
        x_train = _decode_images([p for p, _, _ in train], image_size, "training ")
        x_test = None if test is None else _decode_images([p for p, _, _ in test], image_size, "test ")
        if n_files >= _CACHE_MIN_FILES or time.perf_counter() - t >= _CACHE_MIN_SECONDS:
            _write_tree_cache(cache_file, x_train, x_test)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=np.array([c for _, _, c in train], dtype=np.int64),
        x_test=x_test,
        y_test=None if test is None else np.array([c for _, _, c in test], dtype=np.int64),
        class_names=classes,
        train_paths=[p for p, _, _ in train],
        source=source,
        test_paths=None if test is None else [p for p, _, _ in test],
    )


# --------------------------------------------------------------------------- (d) archives

def _extract_archive(archive, cache_dir):
    """Extract ``archive`` once under ``cache_dir/extracted``; return the folder."""
    st = archive.stat()
    dest = cache_dir / "extracted" / f"{_slug(_strip_suffix(archive.name))}-{st.st_size}-{st.st_mtime_ns}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    big = st.st_size > 10 * 2**20
    if big:
        _progress(f"extracting {archive} to {dest} (once)")
    # Extract beside the destination, then rename: the folder is complete or absent.
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent))
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)  # zipfile drops absolute and '..' components
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")  # refuses links and paths outside tmp
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # not a concurrent extraction that won the race
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"cannot extract {archive} into {dest.parent}: {_one_line(exc)}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if big:
        _progress("extracted")
    return dest


def _cache_root(cache_dir):
    if cache_dir is not None:
        return Path(cache_dir).expanduser().resolve()
    env = os.environ.get("AL_CACHE_DIR")
    return Path(env).expanduser().resolve() if env else Path(".cache", "datasets").resolve()


def _cifar10_default(image_size):
    homes = [Path(os.environ["KERAS_HOME"]).expanduser()] if os.environ.get("KERAS_HOME") else []
    homes.append(Path.home() / ".keras")
    candidates = [h / "datasets" / _PICKLE_DIR for h in homes]
    for folder in candidates:
        if _is_pickle_dir(folder):
            return _load_pickles(folder, image_size, "cifar10", str(folder.resolve()))
    try:
        import keras  # lazy: pulls in TensorFlow; only here, as the last resort

        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as exc:  # offline: URL fetch error; any failure means "not available"
        hint = ""
        shared = Path.cwd().parent / "shared" / "data" / "cifar10-jpg.tar.gz"
        if shared.is_file():
            hint = f" (a JPEG copy lies at {shared}: pass name={str(shared)!r})"
        raise DatasetError(
            f"name='cifar10': not found in {' or '.join(map(str, candidates))} and "
            f"keras.datasets.cifar10.load_data() failed ({_one_line(exc, 120)}); put the CIFAR-10 python "
            f"pickles (data_batch_1..5, test_batch, batches.meta) in {candidates[0]}, or pass data_dir=<path> "
            f"to an image-folder tree, a .npz or an archive{hint}") from exc
    found = next((c for c in candidates if _is_pickle_dir(c)), None)
    return Dataset(
        name="cifar10",
        x_train=resize_images(x_train, image_size),
        y_train=_as_labels(y_train, len(x_train), "y_train", "keras.datasets.cifar10", allow_unknown=False),
        x_test=resize_images(x_test, image_size),
        y_test=_as_labels(y_test, len(x_test), "y_test", "keras.datasets.cifar10", allow_unknown=False),
        class_names=list(CIFAR10_CLASSES),
        train_paths=None,
        source=str(found.resolve()) if found is not None else "keras.datasets.cifar10",
    )
