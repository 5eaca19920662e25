"""Keras classifiers by data kind: backbones, the classifier built on them, its preprocessing.

:func:`build_model` puts an ``embedding`` layer, dropout and a softmax head on a
backbone from :data:`BACKBONES`: a new architecture is one function there.

Images: ``mobilenetv3`` (MobileNetV3Small, the default), ``small_cnn``. Tables: ``mlp``,
standardisation with statistics of the rows it trains on (a ``Normalization`` layer,
saved with the model), then Dense + BatchNorm + Dropout blocks, as the "BeanNet" of the
GNN active-learning study; ``linear``, a softmax regression on standardised features (the
linear probe on label-free image features, ``features/patches.py``), trained by Adam, and
``logreg``, the same model fitted by scikit-learn's L2-regularised logistic regression. Text: ``textmlp`` (sublinear, L2-normalised term frequencies of
word uni- and bigrams, then a small MLP; the default, fast on a CPU) and ``lstm`` (token ids, an embedding and a
bidirectional LSTM, as the study's text model; several times slower). A text vocabulary
is fitted on the pool's text (no labels needed) and saved with the model.
:class:`trainer.Trainer` trains these models; :mod:`predict` runs them (probabilities and
embeddings in one pass); :func:`fingerprint.model_fingerprint` names them.
"""
import os
import sys
from pathlib import Path
from typing import NamedTuple

# Quiet TensorFlow's C++ logs; must be set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from labelnext.data import kinds  # noqa: E402
from labelnext.utils.checks import check_choice, check_int  # noqa: E402

# Vocabulary and sequence sizes: IMDB-scale reviews on a CPU.
MAX_TOKENS = 20_000
SEQUENCE_LENGTH = 200
# Unit-length text rows have entries ~0.05: scaled by 10, Adam at the default 1e-3 trains the
# first layer as far in a fit as 1e-2 does unscaled (measured: 0.819 vs 0.820 at 600 reviews;
# 30 gave 0.809).
TEXT_INPUT_SCALE = 10.0
# Adam's learning rate when none is given. The table MLP needs 10x the others': on random sets of
# 100 / 300 / 600 letter-recognition rows (3 seeds, the benchmark's recipe) it reaches 0.288 / 0.360 /
# 0.522 test accuracy at 1e-3 and 0.462 / 0.646 / 0.735 at 1e-2 (0.427 / 0.546 / 0.682 at 3e-3).
DEFAULT_LR = 1e-3
ARCH_LR = {"mlp": 1e-2}


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
    if "SublinearTF" not in _LAYERS:
        _define_layers(keras)
    return keras


# Layers of our own, defined (and registered for loading saved models) on the first load_keras().
_LAYERS = {}


def layer(name):
    """One of our own Keras layer classes (``SublinearTF``, ``NeighbourVote``)."""
    load_keras()
    return _LAYERS[name]


def _define_layers(keras):
    @keras.saving.register_keras_serializable(package="active_learning")
    class SublinearTF(keras.layers.Layer):
        """Term counts -> log(1 + count), float32: sublinear term frequency (Salton & Buckley 1988)."""

        def call(self, counts):
            return keras.ops.log1p(keras.ops.cast(counts, "float32"))

    @keras.saving.register_keras_serializable(package="active_learning")
    class NeighbourVote(keras.layers.Layer):
        """Similarities to ``n_anchors`` anchors -> the mean of the ``k`` most similar anchors' class
        distributions (the ``distributions`` weight), uniform where none of them carries one: label
        spreading's inductive prediction (:mod:`training.spread`)."""

        def __init__(self, n_anchors, n_classes, k, **kwargs):
            super().__init__(**kwargs)
            self.n_anchors, self.n_classes, self.k = int(n_anchors), int(n_classes), int(k)
            self.distributions = self.add_weight(shape=(self.n_anchors, self.n_classes), initializer="zeros",
                                                 trainable=False, name="distributions")

        def call(self, similarities):
            ops = keras.ops
            _, nearest = ops.top_k(similarities, self.k)
            votes = ops.sum(ops.take(self.distributions, nearest, axis=0), axis=1) + 1e-6
            return votes / ops.sum(votes, axis=-1, keepdims=True)

        def get_config(self):
            return dict(super().get_config(), n_anchors=self.n_anchors, n_classes=self.n_classes, k=self.k)

    _LAYERS["SublinearTF"] = SublinearTF
    _LAYERS["NeighbourVote"] = NeighbourVote


# --------------------------------------------------------------------------- backbones
def _mobilenetv3(keras, input_shape, weights, adapt=None):
    """MobileNetV3Small without its top, average-pooled (576-d); inputs in [0, 255]."""
    try:
        base = keras.applications.MobileNetV3Small(
            input_shape=tuple(input_shape), include_top=False, weights=weights, pooling="avg", include_preprocessing=True
        )
    except Exception as exc:  # urllib / HTTP / OS errors differ by platform
        if weights == "imagenet":
            raise ValueError(
                f"could not fetch ImageNet weights for MobileNetV3Small ({type(exc).__name__}); "
                "this needs network access once, or use --weights none or a local weights file"
            ) from None
        if weights is not None:
            raise ValueError(f"could not load the weights file {weights!r} into MobileNetV3Small without its top "
                             f"(input {tuple(input_shape)}): {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        raise
    # Keras builds BatchNorm with momentum 0.999: after a few thousand steps the moving
    # statistics have barely moved and inference predicts at chance. 0.9 fixes it.
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return base.input, base.output


def _small_cnn(keras, input_shape, weights, adapt=None):
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


class Moments(NamedTuple):
    """Per-feature mean and variance computed elsewhere (a pool on disk, read block by block): given as
    ``adapt=``, the standardisation takes them instead of reading every row again."""

    mean: np.ndarray
    variance: np.ndarray


def standardized_input(keras, input_shape, adapt, arch):
    """A features input and its standardisation with ``adapt``'s statistics (saved with the model)."""
    if adapt is None:
        raise ValueError(f"arch={arch!r} needs rows (adapt=) to fit its standardisation")
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    if isinstance(adapt, Moments):
        norm = keras.layers.Normalization(mean=adapt.mean, variance=adapt.variance, name="standardize")
    else:
        norm = keras.layers.Normalization(name="standardize")
        norm.adapt(np.asarray(adapt, dtype=np.float32))
    return inputs, norm(inputs)


def _mlp(keras, input_shape, weights, adapt=None):
    """Dense blocks over features standardised with ``adapt``'s (the training rows') statistics."""
    layers = keras.layers
    inputs, x = standardized_input(keras, input_shape, adapt, "mlp")
    for units in (128, 64):
        x = layers.Dense(units, use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.Dropout(0.2)(x)
    return inputs, layers.Dense(32, activation="relu")(x)


def _linear(keras, input_shape, weights, adapt=None):
    """The features themselves, standardised with ``adapt``'s statistics: with build_model's head, a
    softmax (multinomial logistic) regression, the linear probe on label-free features such as
    :func:`features.patches.patch_features`."""
    return standardized_input(keras, input_shape, adapt, "linear")


def _logreg(keras, input_shape, weights, adapt=None):
    """The ``linear`` model's layers, fitted in closed form instead of by Adam: an L2-regularised
    multinomial logistic regression (scikit-learn, :class:`trainer.LogisticTrainer`) whose weights
    are written into the softmax head, so the model saves, loads and predicts as every other."""
    return standardized_input(keras, input_shape, adapt, "logreg")


def _fitted_vectorizer(keras, texts, **kwargs):
    texts = np.asarray([str(t) for t in np.ravel(texts)], dtype=object)
    if not len(texts):
        raise ValueError("text models need the pool's text (adapt=) to fit their vocabulary")
    layer = keras.layers.TextVectorization(max_tokens=MAX_TOKENS, **kwargs)
    layer.adapt(texts)
    return layer


def _textmlp(keras, input_shape, weights, adapt=None):
    """Sublinear term frequencies of word uni- and bigrams of the pool's vocabulary,
    L2-normalised, then Dense(64).

    log(1 + count) with unit-length rows, scaled by :data:`TEXT_INPUT_SCALE`. Measured on the
    IMDB sample (random labeled sets of 100 / 300 / 600 reviews, 4 seeds, the benchmark's
    recipe): 0.693 / 0.775 / 0.819 test accuracy, against 0.678 / 0.755 / 0.790 for raw TF-IDF
    (the former front end), as good as a logistic regression on sublinear L2-normalised
    TF-IDF (0.781 / 0.823 at 300 / 600).
    """
    layers = keras.layers
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    x = _fitted_vectorizer(keras, adapt, ngrams=2, output_mode="count")(inputs)
    x = layers.UnitNormalization()(_LAYERS["SublinearTF"]()(x))
    x = layers.Rescaling(TEXT_INPUT_SCALE)(x)
    x = layers.Dropout(0.3)(x)
    return inputs, layers.Dense(64, activation="relu")(x)


def _lstm(keras, input_shape, weights, adapt=None):
    """Token ids -> a 64-d token embedding -> a bidirectional LSTM(32)."""
    layers = keras.layers
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    fitted = _fitted_vectorizer(keras, adapt, output_mode="int")
    # A layer given its vocabulary saves and loads it with the model; an adapted one in
    # 'int' mode fails to reload in Keras 3.15 (its lookup table has no asset path).
    x = layers.TextVectorization(max_tokens=MAX_TOKENS, output_mode="int", vocabulary=fitted.get_vocabulary(),
                                 output_sequence_length=SEQUENCE_LENGTH, name="vectorize")(inputs)
    # Not named 'embedding': that name is the representation the analyses read.
    x = layers.Embedding(MAX_TOKENS, 64, mask_zero=True, name="token_embedding")(x)
    return inputs, layers.Bidirectional(layers.LSTM(32))(x)


# arch name -> fn(keras, input_shape, weights, adapt) -> (inputs, pooled features); ``adapt``
# is the data preprocessing layers are fitted on (training rows of a table, the pool's text). build_model puts
# the ``embedding`` layer, dropout and the softmax head on top: a new architecture is one entry.
BACKBONES = {"mobilenetv3": _mobilenetv3, "small_cnn": _small_cnn, "mlp": _mlp, "linear": _linear, "logreg": _logreg,
             "textmlp": _textmlp, "lstm": _lstm}
# The built-in names (command-line choices); build_model accepts every key of BACKBONES.
ARCHS = tuple(BACKBONES)
# The models each data kind allows are the kind's answer (data/kinds.py), not a second table here.
ARCHS_BY_KIND = {name: kinds.get(name).models for name in kinds.names()}
# The learners on the pool's neighbour graph (training/spread.py): they need the whole pool at start.
GRAPH_ARCHS = ("spread", "blend")
# Preprocessing fitted on data: the caller passes adapt= (train_classifier does it for them).
ADAPTED_ARCHS = ("mlp", "linear", "logreg", *GRAPH_ARCHS, "textmlp", "lstm")


def adapts_on_pool(arch, features="raw"):
    """Whether ``arch``'s preprocessing is fitted on the whole pool (label-free: a text vocabulary, a
    linear model's standardisation; ``auto`` fits each candidate's from the pool itself). The MLP's
    standardisation is too on feature vectors (``features`` other than ``raw``): a thousand pretrained
    features measured on 20 labeled rows have near-zero spreads that blow the other rows up (the MLP
    on 4-class photo features stayed near chance, 0.31 at 180 labels)."""
    return arch in ("textmlp", "lstm", "linear", "logreg", *GRAPH_ARCHS, "auto") or (arch == "mlp" and features != "raw")


def adapt_data(arch, x_pool, labeled_rows, features="raw"):
    """What ``arch``'s preprocessing layers are fitted on: the whole pool where :func:`adapts_on_pool`
    says so (no labels needed), the labeled rows for the table MLP's standardisation, nothing (None)
    for image models."""
    if adapts_on_pool(arch, features):
        return x_pool
    return x_pool[labeled_rows] if arch in ADAPTED_ARCHS else None


def default_arch(kind):
    """The first architecture for a data kind ('image', 'tabular', 'text')."""
    return kinds.get(kind).models[0]


def as_model_input(x):
    """What a model is fed: float32 for images and tables; for text a (n, 1) string tensor
    (Keras 3 refuses NumPy string and object arrays)."""
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    if x.dtype == object or x.dtype.kind in "US":
        return load_keras().ops.convert_to_tensor([[str(t)] for t in x.ravel()], dtype="string")
    return x.astype(np.float32, copy=False)


def check_weights(weights, arch):
    """``weights`` checked: None, 'imagenet' (fetched once), or the path of a local weights file of
    MobileNetV3Small without its top (e.g. the ``..._no_top_v2.h5`` file Keras fetches for
    'imagenet'), the way to pretrained features on a machine without network. Returns it (a path as str)."""
    if weights is None or weights == "imagenet":
        return weights
    if not isinstance(weights, (str, os.PathLike)) or not Path(weights).is_file():
        raise ValueError(f"weights must be none, 'imagenet' or an existing weights file, got {weights!r}")
    if arch != "mobilenetv3":
        raise ValueError(f"a weights file is for arch 'mobilenetv3' (MobileNetV3Small without its top), got arch {arch!r}")
    return os.fspath(weights)


def default_lr(arch):
    """Adam's learning rate for ``arch`` when the caller gives none (:data:`ARCH_LR`, else
    :data:`DEFAULT_LR`)."""
    return ARCH_LR.get(arch, DEFAULT_LR)


def build_model(input_shape=(32, 32, 3), n_classes=10, arch="mobilenetv3", weights=None, dropout=0.2, adapt=None):
    """A softmax classifier whose pooled penultimate layer is named ``embedding``.

    Parameters
    ----------
    input_shape : tuple of int
        One item's shape, e.g. (height, width, 3) for images with values in [0, 255].
    n_classes : int
    arch : str, one of :data:`ARCHS`
        ``small_cnn`` is a ~60k-parameter 3-block CNN, about 4x faster per step,
        for benchmarks and tests.
    weights : None, 'imagenet' or a path
        ImageNet weights need network access once (cached under ``.keras/``); a path is a local
        weights file of MobileNetV3Small without its top (:func:`check_weights`).
    dropout : float
        Dropout rate between the embedding and the softmax layer.
    adapt : ndarray, optional
        For ``mlp``: the training rows (standardisation statistics); for ``textmlp`` /
        ``lstm``: the pool's text (vocabulary). Ignored by image models.

    Returns
    -------
    model : keras.Model
        Outputs probabilities of shape (n_samples, n_classes).
    """
    keras = load_keras()
    check_choice(arch, "arch", tuple(BACKBONES))
    weights = check_weights(weights, arch)
    check_int(n_classes, "n_classes", low=2)
    inputs, features = BACKBONES[arch](keras, input_shape, weights, adapt)
    embedding = keras.layers.Identity(name="embedding")(features)
    x = keras.layers.Dropout(dropout)(embedding)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"{arch}_classifier")


def check_embedding_layer(model, name="model"):
    """Refuse a model without the ``embedding`` layer the analyses read; returns ``model``."""
    try:
        model.get_layer("embedding")
    except (ValueError, AttributeError):
        raise ValueError(f"{name} has no layer named 'embedding': build it with labelnext.training.backbones.build_model") from None
    return model


def softmax_head(model):
    """The ``predictions`` layer's (weights (n_features, n_classes), bias (n_classes,)) where it is a
    softmax over the embedding side (a Dense layer); None for other predictions (``spread``'s vote, ``blend``'s average)."""
    head = model.get_layer("predictions")
    return tuple(head.get_weights()) if isinstance(head, load_keras().layers.Dense) else None


def head_dropout_rate(model):
    """The rate of the Dropout between the ``embedding`` layer and the ``predictions`` softmax.

    With the head's weights it makes MC-dropout passes computable from the embeddings
    (``strategies.bald.mc_dropout_probs``), read from the model itself so that a model
    trained or saved with another rate gets its own.

    Returns
    -------
    rate : float in [0, 1), or None
        0.0 when ``predictions`` reads the embedding directly; None when something else
        than one Dropout lies between them (MC-dropout is then not the head's to compute).
    """
    keras = load_keras()
    embedding, head = model.get_layer("embedding"), model.get_layer("predictions")
    if head.input is embedding.output:
        return 0.0
    for layer in model.layers:
        if (isinstance(layer, keras.layers.Dropout) and layer.input is embedding.output
                and head.input is layer.output and layer.noise_shape is None):  # masks drawn entry by entry
            return float(layer.rate)
    return None


def compile_model(model, lr=1e-3):
    """Adam with sparse categorical cross-entropy; ``lr`` is a float or a Keras schedule."""
    keras = load_keras()
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
