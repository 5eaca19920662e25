"""The one identity of a model: what its outputs depend on, hashed.

Caches and resumable outputs record :func:`model_fingerprint`: the analyzer's inference
cache (``analysis/model_run.py``) and streamed inference's ``state.json``
(``scale/inference.py``), where a Dask worker also checks that it loaded the client's model.

Why not the ``.keras`` file's bytes: Keras writes the save date and its version into the file,
so saving the same model twice gives two digests (a needless recomputation), and the file is
not there for a model in memory. The weights alone are not enough either: two models built
with the same seed share their weights until trained, while a text model's vocabulary (not a
weight) or an edited layer setting changes what they compute.
"""
import hashlib
import json

import numpy as np


def _vocabularies(layers):
    """Vocabularies of the lookup layers (text vectorisation), nested models included, in layer order."""
    found = []
    for layer in layers:
        if hasattr(layer, "get_vocabulary"):
            found.append(layer.get_vocabulary())
        found.extend(_vocabularies(getattr(layer, "layers", ())))
    return found


def model_fingerprint(model):
    """Digest of a Keras model's architecture, lookup vocabularies and every weight.

    Equal for the same model saved and loaded any number of times (the configuration Keras
    saves round-trips exactly, measured for every backbone); different as soon as one weight,
    one layer setting, the wiring or a vocabulary differs. Two models built separately with
    the same weights may differ by their generated layer names (``dense_1`` / ``dense_2``):
    that costs a recomputation, never a wrong reuse.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    digest : str of 32 hex characters
    """
    h = hashlib.blake2b(digest_size=16)
    try:
        config = model.get_config()
    except NotImplementedError:  # a subclassed model without get_config: its class and weights
        config = type(model).__qualname__
    # default=repr: a value JSON does not know is written as its repr (none in the backbones here).
    h.update(json.dumps(config, sort_keys=True, default=repr).encode())
    h.update(json.dumps(_vocabularies(model.layers), default=str).encode())
    for w in model.get_weights():
        w = np.asarray(w)
        h.update(repr((w.shape, str(w.dtype))).encode())
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()
