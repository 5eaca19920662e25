"""The closed-form logistic learner and the learner chosen by cross-validation (``--arch auto``)."""
import json

import numpy as np
import pytest
from sklearn.datasets import make_circles
from sklearn.linear_model import LogisticRegression

from helpers import arcs
from labelnext.loop.learner import LearnerChoice, candidates_for
from labelnext.loop.project import LabelingProject
from labelnext.loop.round import RoundTrainer, round_trainer
from labelnext.data import kinds
from labelnext.training.trainer import LOGREG_C, make_trainer


def _blobs(n=150, d=12, c=3, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % c
    return (rng.normal(size=(n, d)) + 2.5 * np.eye(c, d)[y] * 3).astype(np.float32), y


def test_logreg_is_scikit_learns_fit_written_into_a_keras_model():
    x, y = _blobs()
    trainer = make_trainer(x.shape[1:], 3, arch="logreg").start(0, adapt=x)
    rows = np.arange(0, 150, 2)
    probs, emb = trainer.fit(x[rows], y[rows]).predict(x)
    z = (x - x.mean(0)) / x.std(0)
    ref = LogisticRegression(C=LOGREG_C, max_iter=1000).fit(z[rows], y[rows]).predict_proba(z)
    np.testing.assert_allclose(probs, ref, atol=1e-4)
    np.testing.assert_allclose(emb, z, atol=1e-4)  # the embeddings are the standardised inputs
    np.testing.assert_allclose(trainer.model_.predict(x, verbose=0), probs, atol=1e-6)  # what is saved predicts it
    assert trainer.dropout_rate() == 0.0 and not trainer.uses_steps


def test_logreg_gives_classes_without_labels_no_probability():
    x, y = _blobs(c=4)
    trainer = make_trainer(x.shape[1:], 4, arch="logreg").start(0, adapt=x)
    for present in ([0, 1], [2]):
        rows = np.flatnonzero(np.isin(y, present))
        probs = trainer.fit(x[rows], y[rows]).predict(x)[0]
        assert probs[:, [c for c in range(4) if c not in present]].max() < 1e-6
        assert np.isin(probs.argmax(1)[rows], present).all()


def _choice(x, candidates=("logreg", "mlp")):
    make = lambda arch: RoundTrainer(x.shape[1:], 2, arch=arch, steps=150, epochs_per_fit=0)  # noqa: E731
    return LearnerChoice(make, candidates).start(0, adapt=x)


def test_cross_validation_picks_the_learner_that_fits_the_data():
    """Two rings: no line separates them, a hidden layer does."""
    x, y = make_circles(200, factor=0.4, noise=0.05, random_state=0)
    x = x.astype(np.float32)
    rows = np.arange(0, 200, 2)
    choice = _choice(x).fit(x[rows], y[rows], 0)
    learner = choice.info_["learner"]
    assert choice.arch_ == learner["arch"] == "mlp"
    assert learner["cv_accuracy"]["mlp"] > learner["cv_accuracy"]["logreg"] + 0.2
    assert learner["folds"] == 3 and "3-fold accuracy on 100 labels" in learner["reason"]
    assert learner["reason"].endswith("mlp, the best")
    probs = choice.predict(x)[0]
    assert (probs.argmax(1) == y).mean() > 0.9


def test_against_a_learner_trained_by_steps_the_simpler_stays_unless_the_other_wins_by_more_than_chance():
    from labelnext.loop.learner import pick

    # At 50 labels an accuracy of 0.5 has a standard error of 0.071.
    assert pick(("logreg", "mlp"), {"logreg": 0.44, "mlp": 0.50}, 50, True) == ("logreg", 0.5 / 50 ** 0.5)
    assert pick(("logreg", "mlp"), {"logreg": 0.42, "mlp": 0.50}, 50, True)[0] == "mlp"
    assert pick(("logreg", "mlp"), {"logreg": 0.60, "mlp": 0.50}, 50, True)[0] == "logreg"
    # Learners fitted to convergence: the best of the folds, the first of a tie.
    assert pick(("spread", "blend"), {"spread": 0.70, "blend": 0.72}, 500, False) == ("blend", None)
    assert pick(("spread", "blend"), {"spread": 0.70, "blend": 0.70}, 500, False) == ("spread", None)


def test_cross_validation_keeps_label_spreading_where_the_classes_follow_the_pool():
    """Two arcs on a sphere with a few labels at one end of each: spreading follows them, a line cannot."""
    x, y = arcs(120)
    rows = np.r_[0:8, 120:128]
    choice = _choice(x, ("spread", "logreg")).fit(x[rows], y[rows], 0)
    learner = choice.info_["learner"]
    assert choice.arch_ == "spread" and learner["cv_accuracy"]["spread"] >= learner["cv_accuracy"]["logreg"]
    assert learner["reason"].endswith("spread, the best") and "standard error" not in learner["reason"]
    assert (choice.predict(x)[0].argmax(1) == y).mean() > 0.95


def test_too_few_labels_to_cross_validate_take_the_first_candidate():
    x, y = _blobs(c=2)
    rows = np.array([0, 1, 2])  # classes 0, 1, 0: one label of class 1
    choice = _choice(x).fit(x[rows], y[rows], 0)
    assert choice.arch_ == "logreg" and "too few to cross-validate" in choice.info_["learner"]["reason"]


def test_candidates_by_inputs():
    assert candidates_for(kinds.get("tabular"), "raw") == ("logreg", "mlp")
    assert candidates_for(kinds.get("image"), "pretrained") == ("spread", "blend")
    assert candidates_for(kinds.get("tabular"), "embeddings") == ("spread", "logreg", "mlp")
    assert candidates_for(kinds.get("image"), "raw") == (kinds.get("image").default_model,)
    assert isinstance(round_trainer((4,), 2, arch="logreg"), RoundTrainer)
    from labelnext.cli import _model_note

    note = lambda kind, features: _model_note({"arch": "auto", "features": features, "dataset": {"kind": kind}})  # noqa: E731
    assert note("image", "pretrained").startswith("auto (each round, the better of spread and blend by cross-valid")
    assert note("tabular", "embeddings").startswith("auto (each round, the best of spread, logreg and mlp by")
    assert note("image", "raw") == "auto (small_cnn, the only learner for these inputs) on the data as loaded"


@pytest.mark.parametrize("arch", ["auto", "logreg"])
def test_a_project_round_records_its_learner(tmp_path, arch):
    x, y = _blobs(n=90)
    table = tmp_path / "t.csv"
    with open(table, "w") as f:
        f.write(",".join(f"f{i}" for i in range(x.shape[1])) + ",label\n")
        for row, label in zip(x, y):
            f.write(",".join(f"{v:.4f}" for v in row) + f",c{label}\n")
    with LabelingProject.create(tmp_path / "p", table, initial=30, arch=arch, steps=20, random_state=0) as proj:
        record = proj.run_round(5, "random")
    saved = json.loads((tmp_path / "p" / "round-000" / "round.json").read_text())
    assert saved["arch"] == record["arch"] in ("logreg", "mlp")
    if arch == "auto":
        assert saved["train"]["learner"]["arch"] == saved["arch"]
        assert set(saved["train"]["learner"]["cv_accuracy"]) == {"logreg", "mlp"}
    else:
        assert "learner" not in saved["train"]


def test_features_auto_is_pretrained_for_images_when_the_extra_is_installed(monkeypatch):
    from labelnext.features import inputs, pretrained

    image, table = kinds.get("image"), kinds.get("tabular")
    monkeypatch.setattr(pretrained, "available", lambda: True)
    assert inputs.resolve_features("auto", image) == "pretrained"
    assert inputs.resolve_features("auto", image, "auto") == "pretrained"
    assert inputs.resolve_features("auto", image, "small_cnn") == "raw"  # a network that reads pixels
    assert inputs.resolve_features("auto", table) == "raw"
    assert inputs.resolve_features("patches", image) == "patches"
    monkeypatch.setattr(pretrained, "available", lambda: False)
    assert inputs.resolve_features("auto", image) == "raw"


def test_auto_runs_probcover_below_the_switch_on_pretrained_features_only():
    from labelnext.strategies.auto import PROBE_SWITCH_LABELS_PER_CLASS, SWITCH_LABELS_PER_CLASS, auto_params

    assert auto_params("logreg", "pretrained") == {"switch_labels_per_class": PROBE_SWITCH_LABELS_PER_CLASS,
                                                   "low": "probcover"}
    assert auto_params("linear", "patches")["low"] == auto_params("mlp")["low"] == "typiclust"
    assert auto_params("mlp")["switch_labels_per_class"] == SWITCH_LABELS_PER_CLASS
