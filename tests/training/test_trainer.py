"""The one Keras trainer: controlled (reset, re-seeded) fits, step budgets, and adding an architecture."""
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from labelnext.training import backbones
from labelnext.training import trainer as train
from labelnext.data import load_dataset

REPO = Path(__file__).resolve().parents[2]


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

    monkeypatch.setitem(backbones.BACKBONES, "tiny", tiny)
    probs, emb = train.Trainer(x.shape[1:], n_classes, arch="tiny", steps=2).start(0).fit(x, y, 0).predict(x[:4])
    assert probs.shape == (4, n_classes) and emb.shape == (4, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_the_learning_rate_defaults_by_architecture():
    # The table MLP trains at 10x the rate of the others (backbones.ARCH_LR, measured on letter).
    assert train.Trainer((16,), 3, arch="mlp").lr == 1e-2
    assert train.Trainer((8, 8, 3), 3, arch="small_cnn").lr == 1e-3
    assert train.Trainer((16,), 3, arch="mlp", lr=5e-4).lr == 5e-4
    with pytest.raises(ValueError, match="lr must be > 0"):
        train.Trainer((16,), 3, arch="mlp", lr=0.0)


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


def test_mc_dropout_from_the_head_matches_the_models_dropout_passes(digits):
    from labelnext.strategies.bald import bald_scores, mc_dropout_probs

    x, y, n_classes = digits
    trainer = train.Trainer(x.shape[1:], n_classes, steps=8, batch_size=16, dropout=0.35).start(0).fit(x, y, 0)
    assert trainer.dropout_rate() == pytest.approx(0.35)
    emb = trainer.predict(x)[1]
    model, passes = trainer.model_, 400
    dropout = next(layer for layer in model.layers if isinstance(layer, backbones.load_keras().layers.Dropout)
                   and layer.input is model.get_layer("embedding").output)
    # The model's own dropout-on passes over the embeddings: every row repeated, one call.
    keras_mc = np.asarray(model.get_layer("predictions")(dropout(np.tile(emb, (passes, 1)), training=True)))
    keras_mc = keras_mc.reshape(passes, len(x), n_classes)
    ours = mc_dropout_probs(emb, trainer.head(), trainer.dropout_rate(), passes, random_state=0)
    # Same distribution: per-entry mean and spread over 400 passes agree (measured: 0.007 apart at
    # most), and so does the mean BALD score (0.0387 both; rates 0.2 / 0.5 give 0.018 / 0.071).
    np.testing.assert_allclose(ours.mean(axis=0), keras_mc.mean(axis=0), atol=0.02)
    np.testing.assert_allclose(ours.std(axis=0), keras_mc.std(axis=0), atol=0.012)
    np.testing.assert_allclose(bald_scores(ours).mean(), bald_scores(keras_mc).mean(), rtol=0.1)
    assert bald_scores(ours).mean() > 0.01


def test_a_model_of_another_data_kind_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"arch must be one of \['mobilenetv3', 'small_cnn'\], got 'linear'"):
        train.train_base_model("digits", arch="linear", out_dir=tmp_path / "run", image_size=8)
    assert not (tmp_path / "run").exists()


def test_train_py_names_a_leaking_column_and_drops_it_on_request(tmp_path, monkeypatch, capsys):
    rows = ["row_id,x1,x2,label"] + [f"{1000 + i},{(i * 7) % 11},{(i * 5) % 13},{'abc'[i * 3 // 60]}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    base = ["train.py", "--dataset", "t.csv", "--labeled-size", "12", "--steps", "2", "--quiet"]
    monkeypatch.chdir(tmp_path)

    def train_py(*more):
        # train.py's __main__ block in this process: a process paid TensorFlow's import (test_scripts_help
        # and test_argparse_errors_are_two_lines start train.py as a process).
        monkeypatch.setattr(sys, "argv", base + list(more))
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(REPO / "train.py"), run_name="__main__")
        return exit_.value.code, capsys.readouterr().err

    code, err = train_py("--out", "a")
    assert code == 0, err
    assert "warning: column 'row_id': unique integers in every row (an ID?)" in err
    code, err = train_py("--out", "b", "--drop-columns", "row_id")
    assert code == 0 and "warning" not in err, err
