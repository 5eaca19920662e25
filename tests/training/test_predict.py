"""One inference pass: probabilities and embeddings together, and the metrics read from them."""
import numpy as np
import pytest

from labelnext.training.backbones import build_model, check_embedding_layer, load_keras
from labelnext.training.predict import metrics_from_probs, predict_with_embeddings


def test_metrics_from_probs_on_a_known_answer():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    # Predictions 0, 1, 0, 1 against labels 0, 1, 1, 1: 3 of 4 right; F1 2/3 for class 0, 4/5 for class 1.
    got = metrics_from_probs(probs, np.array([0, 1, 1, 1]))
    assert got["accuracy"] == 0.75
    assert got["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_one_pass_gives_probabilities_and_the_embedding_layer():
    model = build_model((8, 8, 3), 3, arch="small_cnn")
    probs, emb = predict_with_embeddings(model, np.zeros((5, 8, 8, 3), np.uint8))
    assert probs.shape == (5, 3) and emb.shape == (5, 96)
    assert probs.dtype == emb.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_a_model_without_an_embedding_layer_is_refused():
    keras = load_keras()
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="m has no layer named 'embedding': build it with labelnext.training.backbones"):
        check_embedding_layer(model, "m")
