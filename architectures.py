"""Keras classifiers for tables and text, built the way the trainer expects every model:
a softmax layer named ``predictions`` on top of a layer named ``embedding`` (the
representation the analyses measure distances in).

- ``mlp`` (tables): standardisation with statistics of the rows it trains on (a
  ``Normalization`` layer, saved with the model), then Dense + BatchNorm + Dropout blocks,
  as the "BeanNet" of the GNN active-learning study on tabular data.
- ``textmlp`` (text, default): ``TextVectorization`` to TF-IDF over word uni- and bigrams,
  then a small MLP; fast on a CPU.
- ``lstm`` (text): ``TextVectorization`` to token ids, an embedding and a bidirectional
  LSTM, as the study's text model; several times slower per step.

The text vocabulary is fitted on the pool's text (all items, no labels needed) and saved
with the model. Builders take the ``keras`` module so this file never imports TensorFlow
itself (``train._keras()`` does, once, quietly).
"""
import numpy as np

from checks import check_int

TABLE_ARCHS = ("mlp",)
TEXT_ARCHS = ("textmlp", "lstm")
# Vocabulary and sequence sizes: IMDB-scale reviews on a CPU.
MAX_TOKENS = 20_000
SEQUENCE_LENGTH = 200


def build_table_model(keras, n_features, n_classes, *, adapt_rows, hidden=(128, 64), embedding_dim=32, dropout=0.2):
    """MLP over standardised features.

    Parameters
    ----------
    keras : module
    n_features, n_classes : int
    adapt_rows : ndarray of shape (n_rows, n_features)
        The training rows: their mean and variance standardise every input.
    """
    layers = keras.layers
    check_int(n_features, "n_features", low=1)
    inputs = keras.Input(shape=(n_features,), name="features")
    norm = layers.Normalization(name="standardize")
    norm.adapt(np.asarray(adapt_rows, dtype=np.float32))
    x = norm(inputs)
    for units in hidden:
        x = layers.Dense(units, use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(embedding_dim, activation="relu")(x)
    embedding = layers.Identity(name="embedding")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="predictions")(embedding)
    return keras.Model(inputs, outputs, name="mlp_classifier")


def build_text_model(keras, n_classes, *, arch="textmlp", vocabulary_texts, dropout=0.3):
    """Text classifier from raw strings.

    Parameters
    ----------
    keras : module
    n_classes : int
    arch : {'textmlp', 'lstm'}
    vocabulary_texts : array-like of str
        The pool's text; the vocabulary (and TF-IDF weights) are fitted on it.
    """
    layers = keras.layers
    texts = np.asarray(vocabulary_texts, dtype=object).astype(str)
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    if arch == "textmlp":
        vectorize = layers.TextVectorization(max_tokens=MAX_TOKENS, ngrams=2, output_mode="tf_idf",
                                             name="vectorize")
        vectorize.adapt(texts)
        x = vectorize(inputs)
        x = layers.Dropout(dropout)(x)
        x = layers.Dense(64, activation="relu")(x)
    elif arch == "lstm":
        fitted = layers.TextVectorization(max_tokens=MAX_TOKENS, output_mode="int")
        fitted.adapt(texts)
        # A layer given its vocabulary saves and loads it with the model; an adapted one in
        # 'int' mode fails to reload in Keras 3.15 (its lookup table has no asset path).
        vectorize = layers.TextVectorization(max_tokens=MAX_TOKENS, output_mode="int", vocabulary=fitted.get_vocabulary(),
                                             output_sequence_length=SEQUENCE_LENGTH, name="vectorize")
        x = vectorize(inputs)
        # Not named 'embedding': that name is the representation the analyses read.
        x = layers.Embedding(MAX_TOKENS, 64, mask_zero=True, name="token_embedding")(x)
        x = layers.Bidirectional(layers.LSTM(32))(x)
    else:
        raise ValueError(f"arch must be one of {list(TEXT_ARCHS)} for text, got {arch!r}")
    x = layers.Dropout(dropout)(x)
    embedding = layers.Identity(name="embedding")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="predictions")(embedding)
    return keras.Model(inputs, outputs, name=f"{arch}_classifier")


def as_model_input(keras, x):
    """What a model of either kind is fed: float32 for images and tables; for text a (n, 1)
    string tensor (Keras 3 refuses NumPy string and object arrays)."""
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if x.dtype == object or x.dtype.kind in "US":
        return keras.ops.convert_to_tensor([[str(t)] for t in x.ravel()], dtype="string")
    return x.astype(np.float32, copy=False)
