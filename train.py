"""Base model: build, train and save a MobileNetV3Small classifier on a labeled seed set.

``python train.py`` trains the default run ``models/500_train/`` on the embedded
digits data: ``best_model.keras``, ``labeled_indices.npy`` and ``metadata.json``.
Everything downstream reads the labeled set from there.
"""
import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent
# Keep Keras' cache inside the project's ignored folders and TensorFlow's C++ logs quiet;
# both must be set before TensorFlow is imported.
os.environ.setdefault("KERAS_HOME", str(REPO / ".keras"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from checks import check_choice, check_int  # noqa: E402
from results_io import load_json, save_json  # noqa: E402
from seeding import seed_everything  # noqa: E402

ARCHS = ("mobilenetv3", "small_cnn")
DEFAULT_RUN = REPO / "models" / "500_train"
MODEL_FILE = "best_model.keras"


def _keras():
    if "keras" not in sys.modules:
        # TensorFlow 2.21 prints its oneDNN / absl start-up lines from C++ before its log
        # level applies (TF_CPP_MIN_LOG_LEVEL does not reach them): silence fd 2 for the import.
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    import keras
    import tensorflow as tf

    # Retracing notices from tf.function are noise for users of a CLI.
    tf.get_logger().setLevel("ERROR")
    return keras


# --------------------------------------------------------------------------- model
def build_model(input_shape=(32, 32, 3), n_classes=10, arch="mobilenetv3", weights=None, dropout=0.2):
    """A softmax classifier whose pooled penultimate layer is named ``embedding``.

    Parameters
    ----------
    input_shape : tuple of int (height, width, 3)
    n_classes : int
    arch : {'mobilenetv3', 'small_cnn'}
        ``small_cnn`` is a ~60k-parameter 3-block CNN, about 4x faster per step,
        for benchmarks and tests.
    weights : None or 'imagenet'
        ImageNet weights need network access once (cached under ``.keras/``).
    inputs are images with values in [0, 255].
    """
    keras = _keras()
    layers = keras.layers
    check_choice(arch, "arch", ARCHS)
    check_choice(weights, "weights", (None, "imagenet"))
    check_int(n_classes, "n_classes", low=2)
    if arch == "mobilenetv3":
        try:
            base = keras.applications.MobileNetV3Small(
                input_shape=tuple(input_shape), include_top=False, weights=weights, pooling="avg", include_preprocessing=True
            )
        except Exception as exc:  # urllib / HTTP / OS errors differ by platform
            if weights == "imagenet":
                raise ValueError(
                    f"could not fetch ImageNet weights for MobileNetV3Small ({type(exc).__name__}); "
                    "this needs network access once, or use --weights none"
                ) from None
            raise
        # Keras builds BatchNorm with momentum 0.999: after a few thousand steps the moving
        # statistics have barely moved and inference predicts at chance. 0.9 fixes it.
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = 0.9
        inputs, features = base.input, base.output
    else:
        inputs = keras.Input(shape=tuple(input_shape))
        x = layers.Rescaling(1.0 / 255)(inputs)
        for filters in (32, 64, 96):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
            x = layers.MaxPooling2D()(x)
        features = layers.GlobalAveragePooling2D()(x)
    embedding = layers.Identity(name="embedding")(features)
    x = layers.Dropout(dropout)(embedding)
    outputs = layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"{arch}_classifier")


def compile_model(model, lr=1e-3):
    keras = _keras()
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def predict_with_embeddings(model, x, batch_size=256):
    """One inference pass: class probabilities and pooled embeddings.

    Returns
    -------
    probs : ndarray of shape (n_samples, n_classes), float32
    embeddings : ndarray of shape (n_samples, n_features), float32
    """
    keras = _keras()
    both = keras.Model(model.inputs, [model.output, model.get_layer("embedding").output])
    probs, emb = both.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size, verbose=0)
    probs = probs.astype(np.float32)
    # Softmax in float32 can miss 1 by ~1e-6; renormalise so downstream checks are exact.
    probs /= probs.sum(axis=1, keepdims=True)
    return probs, emb.astype(np.float32)


def evaluate(model, x, y, batch_size=256):
    """Accuracy and macro-F1 on labeled data."""
    from sklearn.metrics import f1_score

    probs = model.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size, verbose=0)
    pred = probs.argmax(axis=1)
    return {"accuracy": float((pred == y).mean()), "macro_f1": float(f1_score(y, pred, average="macro"))}


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


def train_classifier(x, y, n_classes, *, arch="mobilenetv3", weights=None, seed=0, steps=800, batch_size=32,
                     validation_split=0.1, patience=15, lr=1e-3, initial_weights=None, verbose=0):
    """Train a fresh classifier for a fixed step budget, keeping the best validation epoch.

    A fixed number of optimiser steps (not of epochs) keeps small labeled sets from
    being starved; re-seeding and optional ``initial_weights`` make two trainings on
    different labeled sets comparable.

    Parameters
    ----------
    x : ndarray of shape (n_samples, height, width, 3), values in [0, 255]
    y : ndarray of shape (n_samples,), int
    steps : int
        Optimiser steps in all; epochs = ceil(steps / batches per epoch).
    validation_split : float
        Share held out for early stopping; 0 trains on everything for ``steps``.
    initial_weights : list of ndarray or None
        Start from these weights (``model.get_weights()`` of a model of the same arch).

    Returns
    -------
    model : keras.Model
    info : dict with ``epochs``, ``steps``, ``best_val_accuracy``, ``train_seconds``
    """
    keras = _keras()
    check_int(steps, "steps", low=1)
    check_int(batch_size, "batch_size", low=1)
    y = np.asarray(y, dtype=np.int64)
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x and y must be non-empty and the same length, got {len(x)} and {len(y)}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must be in [0, {n_classes - 1}], got range [{y.min()}, {y.max()}]")
    seed_everything(seed)
    rng = np.random.RandomState(seed)
    model = build_model(x.shape[1:], n_classes, arch=arch, weights=weights)
    if initial_weights is not None:
        model.set_weights(initial_weights)
    compile_model(model, lr)
    tr, val = _validation_split(y, validation_split, rng)
    epochs = max(1, math.ceil(steps / math.ceil(len(tr) / batch_size)))
    callbacks, val_data = [], None
    if len(val):
        val_data = (x[val].astype(np.float32), y[val])
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience, restore_best_weights=True))
    start = time.perf_counter()
    hist = model.fit(x[tr].astype(np.float32), y[tr], batch_size=batch_size, epochs=epochs, validation_data=val_data,
                     callbacks=callbacks, shuffle=True, verbose=verbose)
    info = {
        "epochs": len(hist.history["loss"]),
        "max_epochs": epochs,
        "steps": len(hist.history["loss"]) * math.ceil(len(tr) / batch_size),
        "n_train": int(len(tr)),
        "n_val": int(len(val)),
        "best_val_accuracy": float(max(hist.history["val_accuracy"])) if len(val) else None,
        "train_seconds": round(time.perf_counter() - start, 2),
    }
    return model, info


# --------------------------------------------------------------------------- labeled set
def labels_digest(y):
    """Digest of a training split's labels: tells whether a data set is the one a run was trained on,
    wherever it lies on disk."""
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(y, dtype=np.int64).tobytes()).hexdigest()[:16]



def draw_labeled_set(y, size, *, seed=0, stratified=True):
    """Absolute indices of the initial labeled set, drawn with ``seed``.

    Stratified draws take the same share of each class (at least one per class
    when ``size`` allows).
    """
    y = np.asarray(y)
    n = len(y)
    check_int(size, "labeled_size", low=1, high=n)
    rng = np.random.RandomState(seed)
    if not stratified:
        return np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(y, return_counts=True)
    if size < len(classes) or size == n or counts.min() < 2:
        return np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
    chosen, _ = train_test_split(np.arange(n), train_size=size, stratify=y, random_state=rng)
    return np.sort(chosen).astype(np.int64)


# --------------------------------------------------------------------------- run folders
def save_run(model, out_dir, labeled_indices, metadata):
    """Write model, labeled set and metadata to a temporary folder, then swap it in.

    A crash or bad input never leaves a run folder whose model and labeled set disagree.
    """
    from results_io import save_npy

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".tmp-{out_dir.name}-"))
    try:
        model.save(tmp / MODEL_FILE)
        save_npy(tmp / "labeled_indices.npy", np.asarray(labeled_indices, dtype=np.int64))
        save_json(tmp / "metadata.json", metadata)
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".old-{out_dir.name}-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def resolve_model_path(model_path):
    """Accept a run folder or a ``.keras`` file; return the model file path."""
    path = Path(model_path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"model_path {str(model_path)!r} does not exist: train one with `python train.py` (writes {DEFAULT_RUN.relative_to(REPO) / MODEL_FILE})")
    return path


def load_run(model_path):
    """Load a saved model with its labeled set and metadata.

    Returns
    -------
    model : keras.Model
    labeled_indices : ndarray of int64 (absolute dataset indices)
    metadata : dict
    """
    keras = _keras()
    path = resolve_model_path(model_path)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise ValueError(f"model_path {str(path)!r} is not a readable Keras model ({type(exc).__name__}): retrain it with `python train.py`") from None
    try:
        model.get_layer("embedding")
    except ValueError:
        raise ValueError(f"model {str(path)!r} has no layer named 'embedding': build it with train.build_model") from None
    run = path.parent
    labeled_file, meta_file = run / "labeled_indices.npy", run / "metadata.json"
    if not labeled_file.exists() or not meta_file.exists():
        raise FileNotFoundError(f"{run} must hold labeled_indices.npy and metadata.json beside {path.name}: train with `python train.py`")
    return model, np.load(labeled_file).astype(np.int64), load_json(meta_file)


def train_base_model(dataset="digits", data_dir=None, *, labeled_size=500, seed=0, stratified=True, out_dir=DEFAULT_RUN,
                     arch="mobilenetv3", weights=None, steps=800, image_size=32, validation_split=0.1, patience=15,
                     labeled_indices=None, verbose=2, data=None):
    """Draw (or take) the labeled seed set, train, evaluate on the test split and save the run.

    Returns
    -------
    out_dir : Path
    metadata : dict
    """
    from datasets import load_dataset

    ds = data if data is not None else load_dataset(dataset, data_dir=data_dir, image_size=image_size)
    known = np.flatnonzero(ds.y_train >= 0)
    if labeled_indices is None:
        labeled_indices = known[draw_labeled_set(ds.y_train[known], labeled_size, seed=seed, stratified=stratified)]
    labeled_indices = np.asarray(labeled_indices, dtype=np.int64)
    if (ds.y_train[labeled_indices] < 0).any():
        raise ValueError("labeled_indices include items with unknown labels")
    model, info = train_classifier(ds.x_train[labeled_indices], ds.y_train[labeled_indices], ds.n_classes, arch=arch,
                                   weights=weights, seed=seed, steps=steps, validation_split=validation_split,
                                   patience=patience, verbose=verbose)
    test = evaluate(model, ds.x_test, ds.y_test) if ds.x_test is not None and ds.y_test is not None else {}
    metadata = {
        "dataset": ds.name,
        "dataset_source": ds.source,
        "seed": int(seed),
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
    save_run(model, out_dir, labeled_indices, metadata)
    return Path(out_dir), metadata


def build_parser():
    p = argparse.ArgumentParser(
        description="Train the MobileNetV3Small base model on a seeded labeled seed set and save "
        "models/<run>/{best_model.keras, labeled_indices.npy, metadata.json}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dataset", default="digits", help="'digits' (embedded, offline), 'cifar10', or a path: CIFAR-10 pickle folder, image-folder tree ROOT/{train,test}/<class>/, .npz (x_train, y_train, x_test, y_test) or a .tar.gz of a tree")
    p.add_argument("--data-dir", default=None, help="where the 'cifar10' data lies, if not in ~/.keras/datasets")
    p.add_argument("--labeled-size", type=int, default=500, help="size of the initial labeled set")
    p.add_argument("--seed", type=int, default=0, help="seed for the labeled draw, weights and training")
    p.add_argument("--no-stratify", action="store_true", help="draw the labeled set uniformly instead of per class")
    p.add_argument("--out", default=None, help="run folder (default models/<labeled-size>_train)")
    p.add_argument("--arch", default="mobilenetv3", choices=ARCHS, help="model architecture")
    p.add_argument("--weights", default="none", choices=("none", "imagenet"), help="initial weights; imagenet needs network once")
    p.add_argument("--steps", type=int, default=800, help="optimiser steps budget (epochs = steps / batches per epoch)")
    p.add_argument("--patience", type=int, default=15, help="early-stopping patience in epochs on the validation split")
    p.add_argument("--image-size", type=int, default=32, help="model input height and width")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    out = Path(args.out) if args.out else REPO / "models" / f"{args.labeled_size}_train"
    print(f"training {args.arch} on {args.dataset} with {args.labeled_size} labels -> {out}", file=sys.stderr)
    out, meta = train_base_model(
        args.dataset, args.data_dir, labeled_size=args.labeled_size, seed=args.seed, stratified=not args.no_stratify,
        out_dir=out, arch=args.arch, weights=None if args.weights == "none" else args.weights, steps=args.steps,
        image_size=args.image_size, patience=args.patience, verbose=0 if args.quiet else 2,
    )
    print(f"saved {out / MODEL_FILE}: {meta['epochs']} epochs, validation accuracy {meta['validation_accuracy']}, "
          f"test accuracy {meta['test_accuracy']}, {meta['train_seconds']} s")


if __name__ == "__main__":
    from cli import run_cli

    sys.exit(run_cli(main))
