"""``spread`` (label spreading over the pool's nearest-neighbour graph) and ``blend`` (its vote averaged with a
logistic regression), as Keras models that save and load."""
import json

import numpy as np
import pytest
from scipy import sparse

from helpers import arcs
from labelnext.cli import main
from labelnext.training.runs import load_model
from labelnext.training.spread import spread_labels
from labelnext.training.trainer import make_trainer
from labelnext.utils.console import run_cli


def test_one_label_per_arc_spreads_along_the_arcs_where_a_linear_model_cannot():
    x, y = arcs()
    one_each = np.array([0, 150])  # the +e1 and +e2 ends
    acc = {}
    for arch in ("spread", "logreg"):
        trainer = make_trainer(x.shape[1:], 2, arch=arch, k=10) if arch == "spread" else \
            make_trainer(x.shape[1:], 2, arch=arch)
        probs = trainer.start(0, adapt=x).fit(x[one_each], y[one_each]).predict(x)[0]
        acc[arch] = (probs.argmax(axis=1) == y).mean()
    assert acc["spread"] > 0.97 and acc["spread"] > acc["logreg"] + 0.1, acc


def test_the_model_saves_loads_and_predicts_the_same_with_no_softmax_head(tmp_path):
    x, y = arcs()
    rows = np.arange(0, 300, 15)
    trainer = make_trainer(x.shape[1:], 2, arch="spread", k=10).start(0, adapt=x).fit(x[rows], y[rows])
    probs, emb = trainer.predict(x)
    again = make_trainer(x.shape[1:], 2, arch="spread", k=10).start(0, adapt=x).fit(x[rows], y[rows]).predict(x)[0]
    assert np.array_equal(probs, again)  # deterministic
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5) and emb.shape == (300, 4)
    assert trainer.head() is None and trainer.dropout_rate() is None  # bald/modal fall back or refuse
    trainer.save_run(tmp_path / "run", rows, {"arch": "spread"})
    model, _ = load_model(tmp_path / "run")
    assert np.allclose(model.predict(x, verbose=0), probs, atol=1e-6)


def test_blend_averages_the_spread_vote_and_logregs_probabilities(tmp_path):
    x, y = arcs()
    rows = np.arange(0, 300, 15)
    fitted = {arch: make_trainer(x.shape[1:], 2, arch=arch, k=10).start(0, adapt=x).fit(x[rows], y[rows])
              for arch in ("spread", "blend")}
    logreg = make_trainer(x.shape[1:], 2, arch="logreg").start(0, adapt=x).fit(x[rows], y[rows])
    probs = fitted["blend"].predict(x)[0]
    np.testing.assert_allclose(probs, (fitted["spread"].predict(x)[0] + logreg.predict(x)[0]) / 2, atol=1e-5)
    assert fitted["blend"].arch == "blend" and fitted["blend"].head() is None
    fitted["blend"].save_run(tmp_path / "run", rows, {"arch": "blend"})
    model, _ = load_model(tmp_path / "run")
    assert np.allclose(model.predict(x, verbose=0), probs, atol=1e-6)


def test_held_out_pool_items_leave_the_graph_and_the_rest_votes():
    x, y = arcs()
    rows, held = np.arange(0, 300, 30), np.arange(5, 300, 10)
    for arch in ("spread", "blend"):
        trainer = make_trainer(x.shape[1:], 2, arch=arch, k=5).start(0, adapt=x).fit(x[rows], y[rows])
        new = x[:40] + 0.01  # not in the pool: held out or not, the same
        np.testing.assert_allclose(trainer.predict_held_out(new), trainer.predict(new)[0], atol=1e-5)
        # Pool items: their nodes leave the graph, the fit's labels spread over the others, which vote.
        keep = np.ones(len(x), bool)
        keep[held] = False
        dist, _ = trainer._spread(keep)
        units = trainer._units
        nearest = np.argsort(-(units[held] @ units[keep].T), axis=1)[:, :5]
        vote = dist[nearest].sum(axis=1) + 1e-6
        vote /= vote.sum(axis=1, keepdims=True)
        probs = trainer.predict_held_out(x[held])
        if arch == "blend":  # the logistic half is predict's
            probs = 2 * probs - logistic_half(trainer, x[held])
        np.testing.assert_allclose(probs, vote, atol=1e-4)


def logistic_half(trainer, x):
    return trainer.model_.get_layer("logistic")(trainer.model_.get_layer("standardize")(x)).numpy()


def test_a_large_pool_keeps_a_seeded_sample_of_anchors():
    x, y = arcs()
    trainer = make_trainer(x.shape[1:], 2, arch="spread", k=5, max_anchors=60).start(3, adapt=x)
    assert trainer.model_.get_layer("anchors").units == 60
    rows = np.arange(0, 300, 10)
    acc = (trainer.fit(x[rows], y[rows]).predict(x)[0].argmax(axis=1) == y).mean()
    assert acc > 0.9


def test_items_no_label_reaches_get_no_distribution():
    # Two components: 0-1-2 holds the label, 3-4 none.
    edges = [(0, 1), (1, 2), (3, 4)]
    graph = sparse.csr_matrix((np.ones(4), ([a for a, _ in edges] + [3], [b for _, b in edges] + [3])), shape=(5, 5))
    graph = graph.maximum(graph.T)
    dist, iterations = spread_labels(graph, np.array([1, -1, -1, -1, -1]), 3, alpha=0.9)
    assert np.allclose(dist[:3], [[0, 1, 0]] * 3) and np.allclose(dist[3:], 0) and iterations >= 2


def test_spread_needs_the_pool_and_a_valid_alpha():
    with pytest.raises(ValueError, match="alpha must be in"):
        make_trainer((2,), 2, arch="spread", alpha=1.0)
    with pytest.raises(ValueError, match="needs the pool's rows"):
        make_trainer((2,), 2, arch="spread").start(0)


def test_a_project_on_embeddings_rounds_with_spread(tmp_path, capsys):
    x, y = arcs(60)
    (tmp_path / "items.csv").write_text("n,label\n" + "".join(f"{i},{'up' if c else 'down'}\n" for i, c in enumerate(y)))
    np.save(tmp_path / "emb.npy", x)
    code = run_cli(main, ["init", str(tmp_path / "items.csv"), "--project", str(tmp_path / "p"), "--initial", "4",
                          "--embeddings", str(tmp_path / "emb.npy"), "--arch", "spread"])
    assert code == 0, capsys.readouterr().err
    code = run_cli(main, ["round", "--project", str(tmp_path / "p"), "--budget", "4"])
    out = capsys.readouterr().out
    assert code == 0 and "trained spread" in out, out
    record = json.loads((tmp_path / "p" / "round-000" / "round.json").read_text())
    assert record["arch"] == "spread" and record["metrics"]["accuracy"] > 0.8, record["metrics"]
