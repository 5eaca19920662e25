"""A ``train.py`` run as the analyzer sees it: model adapter, data set check, retraining.

:class:`KerasModel` wraps the saved Keras model behind the two calls the analyzer
makes (one ``predict`` giving probabilities and embeddings, the softmax ``head``);
:func:`open_run` loads a run folder with the data set it was trained on and checks
that they belong together; :func:`retrain_and_compare` trains on the labeled set plus
a selection and, for comparison, plus a random set of the same size.
TensorFlow is imported by ``train.py`` on first use, never on import.
"""
import time
from pathlib import Path

import numpy as np

import checks
import train
from datasets import load_dataset


class KerasModel:
    """The analyzer's view of a classifier saved by ``train.py``.

    Another kind of model needs only :meth:`predict`, :meth:`head`,
    :meth:`evaluate`, :meth:`fingerprint` and ``path``.

    Parameters
    ----------
    model : keras.Model with layers named ``embedding`` and ``predictions``
    path : Path of its ``.keras`` file
    """

    def __init__(self, model, path):
        self.model = model
        self.path = Path(path)

    @property
    def n_classes(self):
        return int(self.model.output_shape[-1])

    @property
    def image_size(self):
        return int(self.model.input_shape[1])

    def fingerprint(self):
        """What identifies the saved weights for the inference cache: path, size, mtime."""
        st = self.path.stat()
        return str(self.path.resolve()), st.st_size, st.st_mtime_ns

    def predict(self, x, batch_size=256):
        """Probabilities of shape (n, n_classes) and embeddings of shape (n, n_features), float32."""
        return train.predict_with_embeddings(self.model, x, batch_size)

    def head(self):
        """(weights of shape (n_features, n_classes), bias of shape (n_classes,))."""
        return tuple(self.model.get_layer("predictions").get_weights())

    def evaluate(self, x, y):
        """``{'accuracy', 'macro_f1'}`` on labeled data."""
        return train.evaluate(self.model, x, y)


def open_run(model_path, labeled_size=None, dataset=None, data_dir=None):
    """Load a run folder (or its ``.keras`` file) and the data set it was trained on.

    Parameters
    ----------
    model_path : str or Path
    labeled_size : int or None
        Expected size of the run's labeled set (checked).
    dataset, data_dir : str or None
        Default: the data set recorded in the run's metadata.

    Returns
    -------
    model : KerasModel
    data : datasets.Dataset
    labeled : ndarray of int64, absolute indices of the run's labeled set
    metadata : dict
    """
    path = train.resolve_model_path(model_path)
    keras_model, labeled, metadata = train.load_run(path)
    model = KerasModel(keras_model, path)
    if labeled_size is not None and checks.check_int(labeled_size, "labeled_size", low=1) != len(labeled):
        raise ValueError(
            f"labeled_size={labeled_size} but the model's labeled set ({path.parent / 'labeled_indices.npy'}) "
            f"has {len(labeled)} items: pass labeled_size={len(labeled)} or train a run with --labeled-size {labeled_size}"
        )
    name = dataset or metadata.get("dataset_source") or metadata.get("dataset", "digits")
    if name == "sklearn.datasets.load_digits":
        name = "digits"
    data = load_dataset(name, data_dir=data_dir, image_size=model.image_size)
    n_train = len(data.y_train)
    if data.n_classes != model.n_classes:
        raise ValueError(f"dataset {data.name!r} has {data.n_classes} classes but the model predicts {model.n_classes}: pass the dataset the model was trained on")
    digest = metadata.get("labels_digest")
    if digest is not None and digest != train.labels_digest(data.y_train):
        raise ValueError(
            f"dataset {name!r} is not the one the model was trained on ({metadata.get('dataset')}, "
            f"{metadata.get('n_train')} training items): pass that data set, or train a model on this one with `python train.py --dataset ...`"
        )
    if labeled.size and (labeled.min() < 0 or labeled.max() >= n_train):
        raise ValueError(f"labeled_indices.npy refers to items outside the dataset's {n_train} training items: was the model trained on another dataset?")
    return model, data, labeled, metadata


def retrain_and_compare(model, data, y, base_labeled, added, random_added, metadata, *, run_dir, steps, seed,
                        compare_random=True, log=None):
    """Train a fresh model on ``base_labeled + added``, save it as a run, and compare.

    The comparison model is trained exactly alike (architecture, steps, seed,
    validation split) on ``base_labeled + random_added``.

    Parameters
    ----------
    model : KerasModel, the model being replaced (evaluated for "before")
    data : datasets.Dataset
    y : ndarray of shape (n_train,), int; training labels (with any a person supplied)
    base_labeled, added, random_added : ndarray of int64, absolute indices
    metadata : dict, the parent run's metadata (architecture, seed)
    run_dir : Path of the new run folder
    steps, seed : int
    compare_random : bool
    log : callable(str) or None, progress lines

    Returns
    -------
    dict with ``labeled_before``, ``labeled_after``, ``accuracy_before``, ``accuracy_after``,
    ``accuracy_random`` and the same for ``macro_f1`` (None without a test split),
    ``seed``, ``steps``, ``model_path`` (the new run's model) and ``seconds``.
    """
    arch = metadata.get("arch", "mobilenetv3")
    has_test = data.x_test is not None and data.y_test is not None
    before = model.evaluate(data.x_test, data.y_test) if has_test else {}

    def fit(extra, what):
        lab = np.union1d(base_labeled, extra)
        if log:
            log(f"retrain ({what}): {len(lab)} labeled items, {steps} steps ...")
        new, info = train.train_classifier(data.x_train[lab], y[lab], model.n_classes, arch=arch, random_state=seed,
                                           steps=steps, adapt=data.x_train if data.kind == "text" else None, verbose=0)
        return lab, new, info, (train.evaluate(new, data.x_test, data.y_test) if has_test else {})

    t = time.perf_counter()
    lab, new, info, after = fit(added, "selection")
    rand = fit(random_added, "random, same size")[3] if compare_random and has_test else {}
    meta = dict(metadata, labeled_size=int(len(lab)), parent_run=str(model.path.parent), added=np.asarray(added).tolist(),
                epochs=info["epochs"], steps=info["steps"], validation_accuracy=info["best_val_accuracy"],
                test_accuracy=after.get("accuracy"), test_macro_f1=after.get("macro_f1"),
                train_seconds=info["train_seconds"], created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    train.save_run(new, run_dir, lab, meta)
    return {
        "labeled_before": int(len(base_labeled)),
        "labeled_after": int(len(lab)),
        "accuracy_before": before.get("accuracy"),
        "accuracy_after": after.get("accuracy"),
        "accuracy_random": rand.get("accuracy"),
        "macro_f1_before": before.get("macro_f1"),
        "macro_f1_after": after.get("macro_f1"),
        "macro_f1_random": rand.get("macro_f1"),
        "seed": seed,
        "steps": steps,
        "model_path": str(Path(run_dir) / train.MODEL_FILE),
        "seconds": round(time.perf_counter() - t, 1),
    }
