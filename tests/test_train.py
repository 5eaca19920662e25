"""The one Keras trainer: controlled (reset, re-seeded) fits, step budgets, and adding an architecture."""
import numpy as np
import pytest

import architectures
import train
from datasets import load_dataset


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits", image_size=8)
    return ds.x_train[:60], ds.y_train[:60], ds.n_classes


def test_a_fit_does_not_depend_on_the_fits_before_it(digits):
    x, y, n_classes = digits
    trainer = train.Trainer(x.shape[1:], n_classes, steps=8, batch_size=16).start(0)
    first = trainer.fit(x[:40], y[:40], 3).predict(x)[0]
    trainer.fit(x[20:], y[20:], 5)  # another fit in between moves weights, optimizer and dropout state
    again = trainer.fit(x[:40], y[:40], 3).predict(x)[0]
    np.testing.assert_array_equal(again, first)
    assert trainer.info_["steps"] == 8 and trainer.info_["n_train"] == 40


def test_train_classifier_rounds_the_step_budget_up_to_whole_epochs(digits):
    x, y, n_classes = digits
    # 40 items in batches of 16: 3 batches an epoch; 7 steps -> 3 epochs = 9 steps.
    model, info = train.train_classifier(x[:40], y[:40], n_classes, arch="small_cnn", steps=7, batch_size=16,
                                         validation_split=0.0, random_state=0)
    assert (info["epochs"], info["steps"], info["n_train"], info["n_val"]) == (3, 9, 40, 0)
    assert info["best_val_accuracy"] is None
    assert model.get_layer("embedding").output.shape[-1] == 96


def test_a_new_architecture_is_one_function(monkeypatch, digits):
    x, y, n_classes = digits

    def tiny(keras, input_shape, weights, adapt=None):
        inputs = keras.Input(shape=tuple(input_shape))
        return inputs, keras.layers.Dense(5)(keras.layers.Flatten()(inputs))

    monkeypatch.setitem(architectures.BACKBONES, "tiny", tiny)
    probs, emb = train.Trainer(x.shape[1:], n_classes, arch="tiny", steps=2).start(0).fit(x, y, 0).predict(x[:4])
    assert probs.shape == (4, n_classes) and emb.shape == (4, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_early_stopping_needs_whole_epochs():
    with pytest.raises(ValueError, match="validation_split must be 0 with exact_steps=True"):
        train.Trainer((8, 8, 3), 10, validation_split=0.1, exact_steps=True)


def test_fit_before_start_is_refused(digits):
    x, y, n_classes = digits
    trainer = train.Trainer(x.shape[1:], n_classes)
    with pytest.raises(RuntimeError, match="call Trainer.start"):
        trainer.fit(x, y)


def test_labels_outside_the_classes_are_refused(digits):
    x, y, n_classes = digits
    trainer = train.Trainer(x.shape[1:], n_classes, steps=1).start(0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 9\]"):
        trainer.fit(x[:3], np.array([0, 1, 10]))
