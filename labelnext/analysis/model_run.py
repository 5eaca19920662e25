"""A ``train.py`` run as the analyzer sees it: model adapter, data set check, retraining.

:class:`KerasModel` wraps the saved Keras model behind the two calls the analyzer
makes (one ``predict`` giving probabilities and embeddings, the softmax ``head``);
:func:`open_run` loads a run folder with the data set it was trained on and checks
that they belong together; :func:`retrain_and_compare` trains on the labeled set plus
a selection and, for comparison, plus a random set of the same size.
TensorFlow is imported by ``labelnext.training`` on first use, never on import.
"""
import hashlib
import time
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext.utils import checks
from labelnext.training.backbones import ADAPTED_ARCHS, head_dropout_rate, softmax_head
from labelnext.training.fingerprint import model_fingerprint
from labelnext.training.predict import evaluate, predict_with_embeddings
from labelnext.training.runs import labels_digest, load_run, resolve_model_path, save_run
from labelnext.training.trainer import make_trainer
from labelnext.data import dataset_fingerprint, load_dataset
from labelnext.utils.defaults import COMPARE_SEEDS, MODEL_FILE, PATIENCE


class KerasModel:
    """The analyzer's view of a classifier saved by ``train.py``.

    Another kind of model needs only :meth:`predict`, :meth:`head`, :meth:`dropout_rate`,
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
        """Input side of an image model; None for tables and text."""
        shape = self.model.input_shape
        return int(shape[1]) if len(shape) == 4 else None

    def fingerprint(self):
        """What identifies the model for the inference cache (:func:`training.fingerprint.model_fingerprint`:
        architecture, vocabularies and weights, the same as streamed inference records), str."""
        return model_fingerprint(self.model)

    def predict(self, x, batch_size=256):
        """Probabilities of shape (n, n_classes) and embeddings of shape (n, n_features), float32."""
        return predict_with_embeddings(self.model, x, batch_size)

    def head(self):
        """(weights of shape (n_features, n_classes), bias of shape (n_classes,)), or None when the model
        has no softmax layer over its embedding (:func:`training.backbones.softmax_head`)."""
        return softmax_head(self.model)

    def dropout_rate(self):
        """The rate of the Dropout in front of :meth:`head` (None: not a single Dropout; see
        :func:`training.backbones.head_dropout_rate`), for MC-dropout passes (``bald``)."""
        return head_dropout_rate(self.model)

    def evaluate(self, x, y):
        """``{'accuracy', 'macro_f1'}`` on labeled data."""
        return evaluate(self.model, x, y)


def cache_key(model, data, indices):
    """Key of an inference pass: the model's fingerprint, the data set's content and the items."""
    h = hashlib.sha1()
    for part in (model.fingerprint(), dataset_fingerprint(data), np.asarray(indices, dtype=np.int64).tobytes()):
        h.update(part if isinstance(part, bytes) else str(part).encode())
    return h.hexdigest()[:16]


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
    path = resolve_model_path(model_path)
    keras_model, labeled, metadata = load_run(path)
    model = KerasModel(keras_model, path)
    if labeled_size is not None and checks.check_int(labeled_size, "labeled_size", low=1) != len(labeled):
        raise ValueError(
            f"labeled_size={labeled_size} but the model's labeled set ({path.parent / 'labeled_indices.npy'}) "
            f"has {len(labeled)} items: pass labeled_size={len(labeled)} or train a run with --labeled-size {labeled_size}"
        )
    name = dataset or metadata.get("dataset_source") or metadata.get("dataset", "digits")
    if name == "sklearn.datasets.load_digits":
        name = "digits"
    kind = metadata.get("kind", "image")
    data = load_dataset(name, data_dir=data_dir, **({"image_size": model.image_size} if model.image_size else {}))
    if data.kind != kind:
        raise ValueError(f"dataset {data.name!r} holds {data.kind} data but the model was trained on {kind} data: "
                         f"pass the dataset the model was trained on")
    n_train = len(data.y_train)
    if data.n_classes != model.n_classes:
        raise ValueError(f"dataset {data.name!r} has {data.n_classes} classes but the model predicts {model.n_classes}: pass the dataset the model was trained on")
    digest = metadata.get("labels_digest")
    if digest is not None and digest != labels_digest(data.y_train):
        raise ValueError(
            f"dataset {name!r} is not the one the model was trained on ({metadata.get('dataset')}, "
            f"{metadata.get('n_train')} training items): pass that data set, or train a model on this one with `python train.py --dataset ...`"
        )
    if labeled.size and (labeled.min() < 0 or labeled.max() >= n_train):
        raise ValueError(f"labeled_indices.npy refers to items outside the dataset's {n_train} training items: was the model trained on another dataset?")
    return model, data, labeled, metadata


def retrain_selection(model, data, pool, rows, metadata, *, target_per_class, run_dir, steps, random_state,
                      compare_seeds=COMPARE_SEEDS, patience=PATIENCE, compare_random=True, log=None):
    """Add up to ``target_per_class`` labeled items per class from the ranked selection ``rows``,
    retrain, save the run, and compare with random selections of the same size.

    Parameters
    ----------
    model : KerasModel, the model being replaced
    data : datasets.Dataset
    pool : pool.Pool (labels a person supplied overrule the data set's unknown ones)
    rows : ndarray of int, pool rows of the selection, best first
    metadata : dict, the parent run's metadata (architecture, seed)
    target_per_class, steps, random_state : int
    compare_seeds : int
        The comparison runs with this many seeds (training seed ``seed + k`` and random
        draw ``random_state + k``); the first is the saved run, the same as with one seed.
    patience : int
        Epochs without a better validation accuracy before a fit stops (best epoch kept).

    Returns
    -------
    dict: what :func:`retrain_and_compare` returns, plus ``added`` and ``added_per_class``.
    """
    pool_labels = pool.labels[pool.pool_mask]
    labels = pool_labels[rows]
    if (labels < 0).all():
        raise ValueError("the selected items have no labels: fill in the CSV from export_labeling_csv() and call load_labels_csv(path)")
    picked_rows = rows[labels >= 0]
    picked = alf.balanced_pick(picked_rows, pool_labels[picked_rows], pool.n_classes, target_per_class)
    added = pool.pool_indices[picked]
    known_pool = pool.pool_indices[pool_labels >= 0]
    random_added = [np.sort(check_random_state(random_state + k).choice(known_pool, size=len(added), replace=False))
                    for k in range(compare_seeds)]
    seed = int(metadata.get("seed", random_state))
    y = data.y_train.copy()
    y[pool.indices] = np.where(pool.labels >= 0, pool.labels, y[pool.indices])
    report = retrain_and_compare(model, data, y, pool.indices[pool.labeled_mask], added, random_added, metadata,
                                 run_dir=run_dir, steps=steps, seed=seed, patience=patience, compare_random=compare_random,
                                 log=log)
    return {"added": int(len(added)),
            "added_per_class": dict(zip(pool.class_names, alf.class_counts(y[added], pool.n_classes).tolist())),
            **report}


def retrain_and_compare(model, data, y, base_labeled, added, random_added, metadata, *, run_dir, steps, seed,
                        patience=PATIENCE, compare_random=True, log=None):
    """Train a fresh model on ``base_labeled + added``, save it as a run, and compare.

    The comparison model is trained exactly alike (architecture, steps, seed,
    validation split, early stopping) on ``base_labeled + random_added``. With several
    random sets (a list), seed ``k`` trains both the selection's and the k-th random set's
    model with training seed ``seed + k``: the difference is reported per seed and as mean
    and standard deviation, since one seed's difference is mostly noise.

    Parameters
    ----------
    model : KerasModel, the model being replaced (evaluated for "before")
    data : datasets.Dataset
    y : ndarray of shape (n_train,), int; training labels (with any a person supplied)
    base_labeled, added : ndarray of int64, absolute indices
    random_added : ndarray of int64, or list of them (one per comparison seed)
    metadata : dict, the parent run's metadata (architecture, seed)
    run_dir : Path of the new run folder
    steps, seed : int
        Step budget of every fit (epochs = ceil(steps / batches per epoch)); training seed.
    patience : int
        Epochs without a better validation accuracy before a fit stops; its best epoch is kept.
    compare_random : bool
    log : callable(str) or None, progress lines

    Returns
    -------
    dict with ``labeled_before``, ``labeled_after``, ``accuracy_before``, ``accuracy_after``,
    ``accuracy_random`` and the same for ``macro_f1`` (None without a test split; the
    first seed's), ``comparison`` (``seeds``, ``selection``, ``random``, ``difference``
    per seed, ``mean_difference``, ``std_difference``; None without one), ``seed``,
    ``steps`` (the budget), ``steps_trained`` (the saved run's, early stopping included),
    ``patience``, ``model_path`` (the new run's model) and ``seconds``.
    """
    checks.check_int(patience, "patience", low=1)
    arch = metadata.get("arch", "mobilenetv3")
    has_test = data.x_test is not None and data.y_test is not None
    before = model.evaluate(data.x_test, data.y_test) if has_test else {}
    randoms = list(random_added) if isinstance(random_added, (list, tuple)) else [random_added]
    # What preprocessing layers are fitted on: the pool's text, or (MLP standardisation) each fit's rows.
    pool_adapt = data.x_train if data.kind_info.fit_on_pool else None
    per_rows = pool_adapt is None and arch in ADAPTED_ARCHS
    trainers = {}

    def fit(extra, what, train_seed):
        """One fit, as ``trainer.train_classifier`` does it. A seed's selection and random fits share
        one Trainer when their preprocessing is the same: each fit resets it to the seed's initial
        weights, optimizer and dropout state, so the numbers equal two fresh models' (measured on
        the digits demo: same accuracies), and the training step is traced once, not twice."""
        lab = np.union1d(base_labeled, extra)
        if log:
            log(f"retrain ({what}): {len(lab)} labeled items, up to {steps} steps, seed {train_seed} ...")
        trainer = None if per_rows else trainers.get(train_seed)
        if trainer is None:
            trainer = make_trainer(data.x_train.shape[1:], model.n_classes, arch=arch, steps=steps,
                                   validation_split=0.1, patience=patience, exact_steps=False)
            trainer.start(train_seed, adapt=data.x_train[lab] if per_rows else pool_adapt)
            trainers[train_seed] = trainer
        trainer.fit(data.x_train[lab], y[lab], train_seed)
        info = dict(trainer.info_, train_seconds=round(trainer.info_["train_seconds"], 2))
        return lab, trainer.model_, info, (evaluate(trainer.model_, data.x_test, data.y_test) if has_test else {})

    t = time.perf_counter()
    lab, new, info, after = fit(added, "selection", seed)
    # The run is saved before the comparison trains (and before the random fit resets this model):
    # a long comparison killed halfway keeps it.
    meta = dict(metadata, labeled_size=int(len(lab)), parent_run=str(model.path.parent), added=np.asarray(added).tolist(),
                epochs=info["epochs"], steps=info["steps"], steps_budget=int(steps), patience=int(patience),
                validation_accuracy=info["best_val_accuracy"], test_accuracy=after.get("accuracy"),
                test_macro_f1=after.get("macro_f1"), train_seconds=info["train_seconds"],
                created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    save_run(new, run_dir, lab, meta)
    comparison, rand = None, {}
    if compare_random and has_test:
        sel_acc, rand_acc = [], []
        for k, extra in enumerate(randoms):
            sel = after if k == 0 else fit(added, "selection", seed + k)[3]
            r = fit(extra, "random, same size", seed + k)[3]
            rand = rand or r
            sel_acc.append(sel["accuracy"])
            rand_acc.append(r["accuracy"])
        diff = np.subtract(sel_acc, rand_acc)
        comparison = {"seeds": [seed + k for k in range(len(randoms))], "selection": sel_acc, "random": rand_acc,
                      "difference": diff.tolist(), "mean_difference": float(diff.mean()),
                      "std_difference": float(diff.std(ddof=1)) if len(diff) > 1 else None}
    return {
        "labeled_before": int(len(base_labeled)),
        "labeled_after": int(len(lab)),
        "accuracy_before": before.get("accuracy"),
        "accuracy_after": after.get("accuracy"),
        "accuracy_random": rand.get("accuracy"),
        "macro_f1_before": before.get("macro_f1"),
        "macro_f1_after": after.get("macro_f1"),
        "macro_f1_random": rand.get("macro_f1"),
        "comparison": comparison,
        "seed": seed,
        "steps": steps,
        "steps_trained": info["steps"],
        "patience": int(patience),
        "model_path": str(Path(run_dir) / MODEL_FILE),
        "seconds": round(time.perf_counter() - t, 1),
    }
