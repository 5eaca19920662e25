"""The one Keras trainer: reset to a saved initial state, fit a step budget, predict, save a run.

:class:`Trainer` is the one place a Keras model is trained: the base model
(:func:`train_base_model`, which ``python train.py`` runs to write ``models/500_train/``),
the analyzer's retraining (:func:`train_classifier`), a project's rounds and the
label-efficiency benchmark all go through it. The models come from :mod:`backbones` (a new
architecture is one function in ``backbones.BACKBONES``), their inference and metrics from
:mod:`predict`, run folders from :mod:`runs`.
"""
import math
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from labelnext.data import load_dataset
from labelnext.io.files import atomic_path
from labelnext.training.backbones import (ADAPTED_ARCHS, ARCHS_BY_KIND, BACKBONES, GRAPH_ARCHS, adapt_data, as_model_input, build_model,
                                          check_weights, compile_model, default_arch, default_lr, head_dropout_rate,
                                          load_keras, softmax_head)
from labelnext.training.predict import PREDICT_BATCH, evaluate, predict_two_outputs, two_output_model
from labelnext.training.runs import check_run_target, labels_digest, save_run
from labelnext.utils.checks import check_choice, check_int
from labelnext.utils.defaults import DEFAULT_RUN, PATIENCE
from labelnext.utils.seeding import seed_everything

SCHEDULES = ("constant", "cosine")
# ``logreg``'s inverse L2 strength on standardised features (see LogisticTrainer) and its L-BFGS cap.
LOGREG_C = 0.1
LOGREG_MAX_ITER = 1000


# --------------------------------------------------------------------------- training
def _validation_split(y, fraction, rng):
    """Stratified hold-out rows for early stopping (none when too few items)."""
    n = len(y)
    n_val = int(round(n * fraction))
    if fraction <= 0 or n_val < 10 or n - n_val < 10:
        return np.arange(n), np.arange(0)
    order = rng.permutation(n)
    # Stratify by taking the same share from each class.
    val = np.concatenate([order[y[order] == c][: max(1, int(round((y == c).sum() * fraction)))] for c in np.unique(y)])
    train = np.setdiff1d(np.arange(n), val)
    return rng.permutation(train), val


def _seed_generators(model):
    """Every layer's random seed generator (Dropout's), whose state is not among the weights."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        gen = getattr(layer, "seed_generator", None)
        if gen is not None and getattr(gen, "state", None) is not None:
            found.append(gen)
    return found


class Trainer:
    """One compiled Keras classifier, reset to its saved initial state before every fit.

    :meth:`start` builds and compiles the model once under a seed and keeps its initial
    weights, optimizer state and Dropout seed-generator state; every :meth:`fit` re-seeds
    and restores all three, so two fits on different labeled sets differ only by their
    data (not by how many fits ran before, nor by retracing a new graph for each).

    Parameters
    ----------
    input_shape : tuple of int
        One item's shape, e.g. (height, width, 3).
    n_classes : int
    arch : str, one of :data:`backbones.ARCHS`
    weights : None, 'imagenet' or the path of a MobileNetV3Small weights file (backbones.check_weights)
    steps : int
        Optimiser steps per fit.
    batch_size : int
    lr : float or None
        Adam learning rate (the peak rate with ``schedule='cosine'``); None: the
        architecture's (:func:`backbones.default_lr`: 1e-2 for ``mlp``, else 1e-3).
    schedule : {'constant', 'cosine'}
        ``cosine`` decays the rate to 0 over ``steps`` (the iteration counter is reset
        with the optimizer state at every fit): the last iterate is far less noisy.
    validation_split : float in [0, 1)
        Share of each fit's items held out (stratified) for early stopping on validation
        accuracy, best weights restored; 0 trains on everything. Needs ``exact_steps=False``.
    patience : int
        Early-stopping patience in epochs.
    exact_steps : bool
        True: exactly ``steps`` steps drawn from a seeded, repeating shuffle in one pass
        (no per-epoch overhead). False: ``steps`` rounded up to whole epochs of a Keras
        shuffle (epochs = ceil(steps / batches per epoch)), which early stopping needs
        since it checks at epoch ends.
    dropout : float
        Dropout rate before the softmax layer.

    Attributes
    ----------
    model_ : keras.Model
        The compiled model (after :meth:`start`).
    info_ : dict
        The last fit: ``epochs``, ``max_epochs``, ``steps``, ``n_train``, ``n_val``,
        ``best_val_accuracy`` (None without validation) and ``train_seconds``.
    """

    # Whether the fit's length is the step budget (:class:`LogisticTrainer` fits to convergence).
    uses_steps = True

    def __init__(self, input_shape, n_classes, *, arch="small_cnn", weights=None, steps=200, batch_size=32, lr=None,
                 schedule="constant", validation_split=0.0, patience=15, exact_steps=True, dropout=0.2):
        self.input_shape = tuple(int(s) for s in input_shape)
        self.n_classes = check_int(n_classes, "n_classes", low=2)
        self.arch = check_choice(arch, "arch", tuple(BACKBONES))
        self.weights = check_weights(weights, self.arch)
        self.steps = check_int(steps, "steps", low=1)
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        lr = default_lr(self.arch) if lr is None else lr
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        self.lr = float(lr)
        self.schedule = check_choice(schedule, "schedule", SCHEDULES)
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        if exact_steps and validation_split > 0:
            raise ValueError(f"validation_split must be 0 with exact_steps=True (early stopping checks at epoch ends), "
                             f"got {validation_split!r}")
        self.validation_split = float(validation_split)
        self.patience = check_int(patience, "patience", low=0)
        self.exact_steps = bool(exact_steps)
        self.dropout = float(dropout)
        self.model_ = None

    def start(self, random_state=0, *, adapt=None, initial_weights=None, weights_file=None, clear_session=False):
        """Build and compile the model under seed ``random_state`` and keep its initial state.

        Parameters
        ----------
        random_state : int
            Seeds the initial weights (Python, NumPy and TensorFlow).
        adapt : ndarray, optional
            What preprocessing layers are fitted on (``mlp``: training rows; text: the
            pool's text); see :func:`backbones.build_model`.
        initial_weights : list of ndarray, optional
            Start from these (``get_weights()`` of a model of the same arch and shape).
        weights_file : path, optional
            A ``.npz`` of initial weights: loaded when it exists, else written from the
            fresh model, so a resumed run starts from the same weights.
        clear_session : bool
            Free the previous models' graphs first (a long run that starts many).

        Returns
        -------
        self
        """
        keras = load_keras()
        if clear_session:
            keras.backend.clear_session()
        seed_everything(random_state)
        model = build_model(self.input_shape, self.n_classes, arch=self.arch, weights=self.weights, dropout=self.dropout,
                            adapt=adapt)
        if initial_weights is not None:
            model.set_weights(initial_weights)
        lr = self.lr
        if self.schedule == "cosine":
            lr = keras.optimizers.schedules.CosineDecay(self.lr, self.steps)
        compile_model(model, lr)
        model.optimizer.build(model.trainable_variables)
        if weights_file is not None:
            path = Path(weights_file)
            if path.exists():
                with np.load(path) as f:
                    model.set_weights([f[f"w{i}"] for i in range(len(f.files))])
            else:
                with atomic_path(path, ".npz") as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(fh, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        self.model_ = model
        self._weights0 = model.get_weights()
        self._optimizer0 = [v.numpy() for v in model.optimizer.variables]
        # Dropout's seed-generator state is not among the weights and advances with every
        # step: without a reset, a fit's dropout masks would depend on how many fits ran
        # before it in this process (strategy order, resumes).
        self._seed_states = [(g.state, g.state.numpy()) for g in _seed_generators(model)]
        self._both = two_output_model(model)
        return self

    def _check_fit_data(self, x, y):
        """``y`` as int64, once ``x`` and ``y`` are non-empty, of one length, with labels of this model's classes."""
        y = np.asarray(y, dtype=np.int64)
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"x and y must be non-empty and the same length, got {len(x)} and {len(y)}")
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"labels must be in [0, {self.n_classes - 1}], got range [{y.min()}, {y.max()}]")
        return y

    def _check_started(self):
        if self.model_ is None:
            raise RuntimeError("call Trainer.start(random_state) before fit / predict")

    def fit(self, x, y, random_state=0, *, start_weights=None, verbose=0):
        """Reset to the initial state (or ``start_weights``), re-seed and train; sets ``info_``.

        Parameters
        ----------
        x : ndarray of shape (n_samples, *input_shape)
        y : ndarray of shape (n_samples,), int in [0, n_classes)
        random_state : int
            Seeds the shuffle, dropout and the validation split of this fit.
        start_weights : list of ndarray, optional
            Continue from these weights (fine-tuning) instead of the initial ones; the
            optimizer state is reset either way.
        verbose : int
            Keras' progress output.

        Returns
        -------
        self
        """
        self._check_started()
        keras = load_keras()
        y = self._check_fit_data(x, y)
        seed_everything(random_state)
        model = self.model_
        model.set_weights(self._weights0 if start_weights is None else start_weights)
        for var, value in zip(model.optimizer.variables, self._optimizer0):
            var.assign(value)
        for var, value in self._seed_states:
            var.assign(value)
        if self.exact_steps:
            import tensorflow as tf

            data = (tf.data.Dataset.from_tensor_slices((as_model_input(x), y))
                    .shuffle(len(y), seed=random_state, reshuffle_each_iteration=True).repeat().batch(self.batch_size))
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=self.steps, epochs=1, shuffle=False, verbose=verbose)
            self.info_ = {"epochs": 1, "max_epochs": 1, "steps": self.steps, "n_train": int(len(y)), "n_val": 0,
                          "best_val_accuracy": None, "train_seconds": time.perf_counter() - start}
            return self
        tr, val = _validation_split(y, self.validation_split, np.random.RandomState(random_state))
        batches = math.ceil(len(tr) / self.batch_size)
        epochs = max(1, math.ceil(self.steps / batches))
        callbacks, val_data = [], None
        if len(val):
            val_data = (as_model_input(x[val]), y[val])
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=self.patience,
                                                           restore_best_weights=True))
        start = time.perf_counter()
        hist = model.fit(as_model_input(x[tr]), y[tr], batch_size=self.batch_size, epochs=epochs,
                         validation_data=val_data, callbacks=callbacks, shuffle=True, verbose=verbose)
        self.info_ = {
            "epochs": len(hist.history["loss"]),
            "max_epochs": epochs,
            "steps": len(hist.history["loss"]) * batches,
            "n_train": int(len(tr)),
            "n_val": int(len(val)),
            "best_val_accuracy": float(max(hist.history["val_accuracy"])) if len(val) else None,
            "train_seconds": time.perf_counter() - start,
        }
        return self

    def predict(self, x, batch_size=PREDICT_BATCH):
        """Class probabilities and embeddings in one pass.

        Returns
        -------
        probs : ndarray of shape (n_samples, n_classes), float32
        embeddings : ndarray of shape (n_samples, n_features), float32
        """
        self._check_started()
        return predict_two_outputs(self._both, x, batch_size)

    def predict_held_out(self, x):
        """Class probabilities of rows held out of a fit, as of items the model has never seen: what a
        cross-validation fold measures (:class:`loop.learner.LearnerChoice`). :meth:`predict`'s, except
        for a learner that keeps the pool's items inside its model (:class:`spread.SpreadTrainer`)."""
        return self.predict(x)[0]

    def evaluate(self, x, y, batch_size=PREDICT_BATCH):
        """Accuracy and macro-F1 on labeled data (see :func:`predict.evaluate`)."""
        self._check_started()
        return evaluate(self.model_, x, y, batch_size)

    def head(self):
        """The softmax layer over the embedding: (weights (n_features, n_classes), bias (n_classes,)), or
        None when the model predicts otherwise (:func:`backbones.softmax_head`)."""
        self._check_started()
        return softmax_head(self.model_)

    def dropout_rate(self):
        """The rate of the Dropout in front of :meth:`head` (see :func:`backbones.head_dropout_rate`)."""
        self._check_started()
        return head_dropout_rate(self.model_)

    def get_weights(self):
        self._check_started()
        return self.model_.get_weights()

    def save_run(self, out_dir, labeled_indices, metadata):
        """Write the model with its labeled set and metadata as a run folder (see :func:`runs.save_run`)."""
        self._check_started()
        return save_run(self.model_, out_dir, labeled_indices, metadata)


class LogisticTrainer(Trainer):
    """:class:`Trainer` for ``arch='logreg'``: the ``linear`` model's layers, fitted by scikit-learn's
    L2-regularised multinomial logistic regression (L-BFGS, deterministic, convex: no steps, seed
    or start weights matter) on the standardised inputs, its coefficients then written into the
    softmax head. On a few hundred labels and 1,280 features a fit takes a fraction of a second.

    Parameters
    ----------
    input_shape, n_classes : see :class:`Trainer`
    C : float
        Inverse L2 strength of :class:`sklearn.linear_model.LogisticRegression` (:data:`LOGREG_C`).
    **kwargs
        :class:`Trainer`'s other arguments; ``steps``, ``batch_size``, ``lr`` and ``schedule`` do not
        change the fit. The head has no dropout (BALD sees no spread, as for any point estimate).
    """

    uses_steps = False

    def __init__(self, input_shape, n_classes, *, C=None, **kwargs):
        kwargs.update(arch="logreg", dropout=0.0)
        super().__init__(input_shape, n_classes, **kwargs)
        self.C = LOGREG_C if C is None else float(C)
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {C!r}")

    def start(self, random_state=0, **kwargs):
        super().start(random_state, **kwargs)
        keras = load_keras()
        norm = self.model_.get_layer("standardize")
        # The layer's own arithmetic, so the saved model predicts what this fit learned.
        self._mean = keras.ops.convert_to_numpy(norm.mean).astype(np.float64)
        self._scale = np.maximum(np.sqrt(keras.ops.convert_to_numpy(norm.variance).astype(np.float64)),
                                 keras.backend.epsilon())
        return self

    def fit(self, x, y, random_state=0, *, start_weights=None, verbose=0):
        self._check_started()
        y = self._check_fit_data(x, y)
        start = time.perf_counter()
        z = ((np.asarray(x, dtype=np.float64).reshape(len(y), -1) - self._mean.ravel()) / self._scale.ravel())
        w, b, iterations = logistic_head(z, y, self.n_classes, self.C)
        self.model_.get_layer("predictions").set_weights([w, b])
        self.info_ = {"epochs": 1, "max_epochs": 1, "steps": iterations, "n_train": int(len(y)), "n_val": 0,
                      "best_val_accuracy": None, "train_seconds": time.perf_counter() - start}
        return self


def logistic_head(z, y, n_classes, C=LOGREG_C):
    """The weights of a softmax layer fitted by scikit-learn's L2-regularised multinomial logistic
    regression on the inputs ``z`` (already standardised) and labels ``y``.

    Returns
    -------
    weights : ndarray of shape (n_features, n_classes), float32
    bias : ndarray of shape (n_classes,), float32
        A class without labels gets a logit far below the others (probability ~0, as scikit-learn would give).
    iterations : int
        L-BFGS iterations (0 for a single class).
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    seen = np.unique(y)
    w = np.zeros((z.shape[1], n_classes))
    b = np.full(n_classes, -30.0)
    iterations = 0
    if len(seen) == 1:
        b[seen[0]] = 0.0
    else:
        # One thread: the problem is small, and on shared cores the BLAS and OpenMP threads of a
        # 30-iteration L-BFGS waited on each other for 3-7 s a fit (0.1-0.2 s on one thread, load 5).
        with warnings.catch_warnings(), threadpool_limits(1):
            # A fold of a few labels per class is a classification problem all the same.
            warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
            clf = LogisticRegression(C=C, max_iter=LOGREG_MAX_ITER).fit(z, y)
        iterations = int(np.max(clf.n_iter_))
        coef, bias = clf.coef_, clf.intercept_
        if len(seen) == 2:  # one logit difference: split it so the softmax gives the same odds
            coef, bias = np.vstack([-coef / 2, coef / 2]), np.concatenate([-bias / 2, bias / 2])
        w[:, seen], b[seen] = coef.T, bias
        b[np.setdiff1d(np.arange(n_classes), seen)] += bias.min()
    return w.astype(np.float32), b.astype(np.float32), iterations


def make_trainer(input_shape, n_classes, *, arch, **kwargs):
    """The trainer of ``arch``: :class:`LogisticTrainer` for ``logreg``, :class:`spread.SpreadTrainer` for
    ``spread`` and ``blend``, else :class:`Trainer`."""
    if arch in GRAPH_ARCHS:
        from labelnext.training.spread import SpreadTrainer  # it subclasses Trainer

        return SpreadTrainer(input_shape, n_classes, blend=arch == "blend", **kwargs)
    return (LogisticTrainer if arch == "logreg" else Trainer)(input_shape, n_classes, arch=arch, **kwargs)


def train_classifier(x, y, n_classes, *, arch="mobilenetv3", weights=None, random_state=0, steps=800, batch_size=32,
                     validation_split=0.1, patience=15, lr=None, initial_weights=None, adapt=None, verbose=0):
    """Train a fresh classifier for a step budget, keeping the best validation epoch.

    A fixed number of optimiser steps (not of epochs) keeps small labeled sets from
    being starved; re-seeding and optional ``initial_weights`` make two trainings on
    different labeled sets comparable. One :class:`Trainer` with ``exact_steps=False``.

    Parameters
    ----------
    x : ndarray of shape (n_samples, height, width, 3), values in [0, 255]
    y : ndarray of shape (n_samples,), int
    random_state : int
        Seeds the initial weights, the validation split, the shuffle and dropout.
    steps : int
        Optimiser steps in all; epochs = ceil(steps / batches per epoch).
    validation_split : float
        Share held out for early stopping; 0 trains on everything for ``steps``.
    initial_weights : list of ndarray or None
        Start from these weights (``model.get_weights()`` of a model of the same arch).
    adapt : ndarray, optional
        Fit preprocessing on this (text: pass the pool's text so the vocabulary covers it);
        default ``x`` for the architectures that have such layers.

    Returns
    -------
    model : keras.Model
    info : dict with ``epochs``, ``max_epochs``, ``steps``, ``n_train``, ``n_val``,
        ``best_val_accuracy`` and ``train_seconds``
    """
    trainer = make_trainer(np.shape(x)[1:], n_classes, arch=arch, weights=weights, steps=steps, batch_size=batch_size,
                           lr=lr, validation_split=validation_split, patience=patience, exact_steps=False)
    if adapt is None and arch in ADAPTED_ARCHS:
        adapt = x
    trainer.start(random_state, adapt=adapt, initial_weights=initial_weights).fit(x, y, random_state, verbose=verbose)
    return trainer.model_, dict(trainer.info_, train_seconds=round(trainer.info_["train_seconds"], 2))


# --------------------------------------------------------------------------- labeled set
def draw_labeled_set(y, size, *, random_state=0, stratified=True):
    """Absolute indices of the initial labeled set.

    Stratified draws take the same share of each class (at least one per class
    when ``size`` allows); otherwise, or when a class has a single item, a uniform draw.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    size : int in [1, n_samples]
    random_state : int
    stratified : bool

    Returns
    -------
    indices : ndarray of shape (size,), int64, sorted
    """
    y = np.asarray(y)
    n = len(y)
    check_int(size, "labeled_size", low=1, high=n)
    rng = np.random.RandomState(random_state)
    if not stratified:
        return np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
    classes, counts = np.unique(y, return_counts=True)
    if size < len(classes) or size == n or counts.min() < 2:
        return np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
    chosen, _ = train_test_split(np.arange(n), train_size=size, stratify=y, random_state=rng)
    return np.sort(chosen).astype(np.int64)


def train_base_model(dataset="digits", data_dir=None, *, labeled_size=500, random_state=0, stratified=True,
                     out_dir=DEFAULT_RUN, arch=None, weights=None, steps=800, image_size=32,
                     validation_split=0.1, patience=PATIENCE, labeled_indices=None, verbose=2, data=None, overwrite=True):
    """Draw (or take) the labeled seed set, train, evaluate on the test split and save the run.

    ``random_state`` seeds the labeled draw, the initial weights and training; it is
    written to the run's metadata as ``seed``. ``arch`` defaults to the data kind's
    (:func:`backbones.default_arch`: images ``mobilenetv3``, tables ``mlp``, text
    ``textmlp``); preprocessing is fitted as :func:`backbones.adapt_data` says (a text vocabulary on
    the whole pool's text, the MLP's standardisation on the labeled rows).
    ``out_dir`` is checked before anything is loaded or trained (:func:`runs.check_run_target`).

    Returns
    -------
    out_dir : Path
    metadata : dict
    """
    check_run_target(out_dir, overwrite)
    ds = data if data is not None else load_dataset(dataset, data_dir=data_dir, image_size=image_size)
    # A model of another data kind (the table MLP on images) would fail deep inside Keras.
    arch = default_arch(ds.kind) if arch is None else check_choice(arch, "arch", ARCHS_BY_KIND[ds.kind])
    known = np.flatnonzero(ds.y_train >= 0)
    if labeled_indices is None:
        labeled_indices = known[draw_labeled_set(ds.y_train[known], labeled_size, random_state=random_state,
                                                 stratified=stratified)]
    labeled_indices = np.asarray(labeled_indices, dtype=np.int64)
    if (ds.y_train[labeled_indices] < 0).any():
        raise ValueError("labeled_indices include items with unknown labels")
    model, info = train_classifier(ds.x_train[labeled_indices], ds.y_train[labeled_indices], ds.n_classes, arch=arch,
                                   weights=weights, random_state=random_state, steps=steps,
                                   validation_split=validation_split, patience=patience, verbose=verbose,
                                   adapt=adapt_data(arch, ds.x_train, labeled_indices))
    test = evaluate(model, ds.x_test, ds.y_test) if ds.x_test is not None and ds.y_test is not None else {}
    metadata = {
        "dataset": ds.name,
        "dataset_source": ds.source,
        "kind": ds.kind,
        "seed": int(random_state),
        "stratified": bool(stratified),
        "arch": arch,
        "weights": weights,
        "classes": list(ds.class_names),
        "n_classes": int(ds.n_classes),
        "input_shape": list(ds.x_train.shape[1:]),
        "n_train": int(len(ds.y_train)),
        "labels_digest": labels_digest(ds.y_train),
        "labeled_size": int(len(labeled_indices)),
        "epochs": info["epochs"],
        "steps": info["steps"],
        "steps_budget": int(steps),
        "validation_accuracy": info["best_val_accuracy"],
        "test_accuracy": test.get("accuracy"),
        "test_macro_f1": test.get("macro_f1"),
        "train_seconds": info["train_seconds"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    save_run(model, out_dir, labeled_indices, metadata, overwrite=overwrite)
    return Path(out_dir), metadata
