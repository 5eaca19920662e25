"""Keras classifiers by architecture, one inference pass, and their metrics.

:func:`build_model` puts an ``embedding`` layer, dropout and a softmax head on a
backbone from :data:`BACKBONES`: a new architecture is one function there.
:class:`train.Trainer` trains these models; the analyzer and the benchmark read
probabilities and embeddings through :func:`predict_with_embeddings` (or the trainer).
"""
import os
import sys
from pathlib import Path

# Keep Keras' cache inside the project's ignored folders and TensorFlow's C++ logs quiet;
# both must be set before TensorFlow is imported (datasets.py also reads KERAS_HOME).
os.environ.setdefault("KERAS_HOME", str(Path(__file__).resolve().parent / ".keras"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402

from checks import check_choice, check_int  # noqa: E402

# Batch size of inference passes (probabilities and embeddings of a whole pool).
PREDICT_BATCH = 256


def load_keras():
    """Keras on TensorFlow, imported lazily (seconds) so that importing this module stays cheap."""
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


# --------------------------------------------------------------------------- architectures
def _mobilenetv3(keras, input_shape, weights):
    """MobileNetV3Small without its top, average-pooled (576-d); inputs in [0, 255]."""
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
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return base.input, base.output


def _small_cnn(keras, input_shape, weights):
    """A ~60k-parameter 3-block CNN (about 4x faster per step than MobileNetV3); inputs in [0, 255].

    ``weights`` is ignored: there are no pretrained weights for it.
    """
    layers = keras.layers
    inputs = keras.Input(shape=tuple(input_shape))
    x = layers.Rescaling(1.0 / 255)(inputs)
    for filters in (32, 64, 96):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    return inputs, layers.GlobalAveragePooling2D()(x)


# arch name -> fn(keras, input_shape, weights) -> (inputs, pooled features). build_model puts
# the ``embedding`` layer, dropout and the softmax head on top: a new architecture is one entry.
BACKBONES = {"mobilenetv3": _mobilenetv3, "small_cnn": _small_cnn}
# The built-in names (command-line choices); build_model accepts every key of BACKBONES.
ARCHS = tuple(BACKBONES)


def build_model(input_shape=(32, 32, 3), n_classes=10, arch="mobilenetv3", weights=None, dropout=0.2):
    """A softmax classifier whose pooled penultimate layer is named ``embedding``.

    Parameters
    ----------
    input_shape : tuple of int
        One item's shape, e.g. (height, width, 3) for images with values in [0, 255].
    n_classes : int
    arch : str, one of :data:`ARCHS`
        ``small_cnn`` is a ~60k-parameter 3-block CNN, about 4x faster per step,
        for benchmarks and tests.
    weights : None or 'imagenet'
        ImageNet weights need network access once (cached under ``.keras/``).
    dropout : float
        Dropout rate between the embedding and the softmax layer.

    Returns
    -------
    model : keras.Model
        Outputs probabilities of shape (n_samples, n_classes).
    """
    keras = load_keras()
    check_choice(arch, "arch", tuple(BACKBONES))
    check_choice(weights, "weights", (None, "imagenet"))
    check_int(n_classes, "n_classes", low=2)
    inputs, features = BACKBONES[arch](keras, input_shape, weights)
    embedding = keras.layers.Identity(name="embedding")(features)
    x = keras.layers.Dropout(dropout)(embedding)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"{arch}_classifier")


def compile_model(model, lr=1e-3):
    """Adam with sparse categorical cross-entropy; ``lr`` is a float or a Keras schedule."""
    keras = load_keras()
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# --------------------------------------------------------------------------- inference
def two_output_model(model):
    """The same model with two outputs: probabilities and the ``embedding`` layer."""
    keras = load_keras()
    return keras.Model(model.inputs, [model.output, model.get_layer("embedding").output])


def predict_two_outputs(both, x, batch_size):
    """Run a :func:`two_output_model`: (probs (n, n_classes), embeddings (n, n_features)), float32."""
    probs, emb = both.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size, verbose=0)
    probs = probs.astype(np.float32)
    # Softmax in float32 can miss 1 by ~1e-6; renormalise so downstream checks are exact.
    probs /= probs.sum(axis=1, keepdims=True)
    return probs, emb.astype(np.float32)


def predict_with_embeddings(model, x, batch_size=PREDICT_BATCH):
    """One inference pass: class probabilities and pooled embeddings.

    Returns
    -------
    probs : ndarray of shape (n_samples, n_classes), float32
    embeddings : ndarray of shape (n_samples, n_features), float32
    """
    return predict_two_outputs(two_output_model(model), x, batch_size)


def metrics_from_probs(probs, y):
    """Accuracy and macro-F1 of the arg-max predictions.

    Parameters
    ----------
    probs : ndarray of shape (n_samples, n_classes)
    y : ndarray of shape (n_samples,), int

    Returns
    -------
    dict with ``accuracy`` and ``macro_f1`` (floats)
    """
    pred = np.asarray(probs).argmax(axis=1)
    return {"accuracy": float((pred == y).mean()), "macro_f1": float(f1_score(y, pred, average="macro"))}


def evaluate(model, x, y, batch_size=PREDICT_BATCH):
    """Accuracy and macro-F1 of ``model`` on labeled data (see :func:`metrics_from_probs`)."""
    return metrics_from_probs(model.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size, verbose=0), y)
