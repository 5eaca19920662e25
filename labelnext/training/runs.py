"""Run folders: a trained model with its labeled set and metadata, written as a unit.

``models/<run>/`` holds ``best_model.keras``, ``labeled_indices.npy`` (absolute data set
indices) and ``metadata.json``. :func:`save_run` stages the folder and swaps it in
(:func:`io.files.staged_folder`) and replaces only an earlier run, never a file or a
folder of anything else (:func:`check_run_target`). The metadata names the data set a run
was trained on by :func:`labels_digest`.
"""
import hashlib
from pathlib import Path

import numpy as np

from labelnext.io.files import check_output_folder, load_json, save_json, save_npy, staged_folder
from labelnext.training.backbones import check_embedding_layer, load_keras
from labelnext.utils.defaults import DEFAULT_RUN, MODEL_FILE


def is_run_folder(path):
    """True when ``path`` is a folder written by :func:`save_run` (``metadata.json`` holding a
    dict, beside ``best_model.keras``)."""
    path = Path(path)
    if not (path.is_dir() and (path / MODEL_FILE).is_file() and (path / "metadata.json").is_file()):
        return False
    try:
        return isinstance(load_json(path / "metadata.json"), dict)
    except ValueError:
        return False


def check_run_target(out_dir, overwrite=True):
    """Refuse, before any training, a run folder target that is not ours to replace.

    A missing path is fine; an existing one must be one of our runs (:func:`is_run_folder`)
    and ``overwrite`` true. A file, or a folder holding anything else, is never touched.

    Raises
    ------
    ValueError
        One line naming the path and what to do.
    """
    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise ValueError(f"out_dir {str(out_dir)!r} exists and is not a run folder (a file or link): "
                         f"pass a new folder")
    if out_dir.exists():
        if not is_run_folder(out_dir):
            raise ValueError(f"out_dir {str(out_dir)!r} is a folder that is not one of our runs "
                             f"(no {MODEL_FILE} + metadata.json): pass a new or empty-free folder; nothing was touched")
        if not overwrite:
            raise ValueError(f"out_dir {str(out_dir)!r} already holds a run: pass --overwrite to replace it")
    check_output_folder(out_dir)
    return out_dir


def save_run(model, out_dir, labeled_indices, metadata, *, overwrite=True):
    """Write model, labeled set and metadata to a staged folder, then swap it in
    (:func:`io.files.staged_folder`).

    A crash or bad input never leaves a run folder whose model and labeled set disagree;
    only an earlier run is ever replaced (see :func:`check_run_target`).
    """
    out_dir = Path(out_dir)
    check_run_target(out_dir, overwrite)
    with staged_folder(out_dir) as tmp:
        check_run_target(out_dir, overwrite)  # again under the folder lock: another writer may have won
        write_run(tmp, model, labeled_indices, metadata)
    return out_dir


def write_run(folder, model, labeled_indices, metadata):
    """The files of a run (model, labeled set, metadata) written into ``folder``, which the
    caller stages: :func:`save_run`, or a folder that is itself part of a staged one (a
    project's round), which needs no lock or swap of its own."""
    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    model.save(folder / MODEL_FILE)
    save_npy(folder / "labeled_indices.npy", np.asarray(labeled_indices, dtype=np.int64))
    save_json(folder / "metadata.json", metadata)


def resolve_model_path(model_path):
    """Accept a run folder or a ``.keras`` file; return the model file path.

    Raises
    ------
    ValueError
        The path does not exist (the README promises ``ValueError`` for bad input).
    """
    path = Path(model_path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise ValueError(f"model_path {str(model_path)!r} does not exist: train one with `python train.py` (writes {DEFAULT_RUN / MODEL_FILE})")
    return path


def load_model(model_path):
    """Load a saved model (a run folder or a ``.keras`` file) that has an ``embedding`` layer.

    Returns
    -------
    model : keras.Model
    path : Path of the ``.keras`` file

    Raises
    ------
    ValueError
        The path does not exist, is not a Keras model, or the model has no ``embedding`` layer.
    """
    keras = load_keras()
    path = resolve_model_path(model_path)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ValueError(f"model_path {str(path)!r} is not a readable Keras model ({type(exc).__name__}): retrain it with `python train.py`") from None
    return check_embedding_layer(model, f"model {str(path)!r}"), path


def load_run(model_path):
    """Load a saved model with its labeled set and metadata.

    Returns
    -------
    model : keras.Model
    labeled_indices : ndarray of int64 (absolute dataset indices)
    metadata : dict
    """
    model, path = load_model(model_path)
    run = path.parent
    labeled_file, meta_file = run / "labeled_indices.npy", run / "metadata.json"
    if not labeled_file.exists() or not meta_file.exists():
        raise ValueError(f"{run} must hold labeled_indices.npy and metadata.json beside {path.name}: train with `python train.py`")
    return model, np.load(labeled_file).astype(np.int64), load_json(meta_file)


def labels_digest(y):
    """Digest of a training split's labels: tells whether a data set is the one a run was trained on,
    wherever it lies on disk."""
    return hashlib.sha1(np.ascontiguousarray(y, dtype=np.int64).tobytes()).hexdigest()[:16]
