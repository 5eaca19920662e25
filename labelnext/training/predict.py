"""One inference pass of a classifier built by :func:`backbones.build_model`, and its metrics.

A pool's class probabilities and pooled embeddings come out of one pass
(:func:`predict_with_embeddings`, or :func:`two_output_model` built once and
:func:`predict_two_outputs` per block): the trainer, the analyzer, the benchmark and
streamed inference (``scale/inference.py``) all read them this way.
"""
import numpy as np
from sklearn.metrics import f1_score

from labelnext.training.backbones import as_model_input, load_keras

# Batch size of inference passes (probabilities and embeddings of a whole pool).
PREDICT_BATCH = 256


def two_output_model(model):
    """The same model with two outputs: probabilities and the ``embedding`` layer."""
    keras = load_keras()
    return keras.Model(model.inputs, [model.output, model.get_layer("embedding").output])


def predict_two_outputs(both, x, batch_size):
    """Run a :func:`two_output_model`: (probs (n, n_classes), embeddings (n, n_features)), float32."""
    probs, emb = both.predict(as_model_input(x), batch_size=batch_size, verbose=0)
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
    return metrics_from_probs(model.predict(as_model_input(x), batch_size=batch_size, verbose=0), y)
