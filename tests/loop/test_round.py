"""The one round: ``al round`` and the benchmark's simulated rounds are the same code, the context
hides pool labels, ``auto`` is decided once per round, and the step budget of the recipe."""
import csv
import json

import numpy as np
import pytest

from labelnext import strategies as st
from labelnext.analysis.analyzer import ActiveLearningAnalyzer
from labelnext.benchmark import simulate
from labelnext.loop import round as lr
from labelnext.loop.project import LabelingProject
from labelnext.strategies import auto


def blobs(n=120, c=4, d=6, n_labeled=8, random_state=0):
    """Gaussian blobs with softmax probabilities; the first ``n_labeled`` rows are labeled: (probs, emb, y, mask)."""
    rng = np.random.RandomState(random_state)
    y = np.arange(n) % c
    emb = (rng.randn(n, d) + 3 * np.eye(c, d)[y]).astype(np.float32)
    z = emb @ np.eye(d, c)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    mask = np.zeros(n, dtype=bool)
    mask[:n_labeled] = True
    return p.astype(np.float32), emb, y, mask


@pytest.fixture
def count_auto(monkeypatch):
    """How many times ``auto_choice`` runs (every caller reaches it through the module)."""
    calls = []
    real = auto.auto_choice

    def counted(ctx, budget):
        calls.append(int(ctx.labeled_mask.sum()))
        return real(ctx, budget)

    monkeypatch.setattr(auto, "auto_choice", counted)
    return calls


def test_fit_steps_grow_with_the_labeled_set_in_multiples_of_the_base():
    assert lr.fit_steps(100, 200, 20, 32) == 200   # 63 steps of epochs: the base covers them
    assert lr.fit_steps(320, 200, 20, 32) == 200   # exactly 200
    assert lr.fit_steps(321, 200, 20, 32) == 400
    assert lr.fit_steps(1000, 200, 20, 32) == 800  # 625 -> 800
    assert lr.fit_steps(10**6, 400, 0, 32) == 400  # 0: the same budget for every fit


def test_the_recipe_is_checked_before_anything_trains():
    with pytest.raises(ValueError, match="epochs_per_fit must be a number in"):
        lr.RoundTrainer((8,), 3, arch="mlp", epochs_per_fit=-1)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        lr.RoundTrainer((8,), 3, arch="mlp", steps=0)


def test_the_context_hides_every_pool_label():
    probs, emb, y, mask = blobs()
    ctx = lr.selection_context(probs, emb, mask, y)  # the true labels of every row are given
    assert (ctx.labels[~mask] == -1).all() and (ctx.labels[mask] == y[mask]).all()
    assert (lr.selection_context(probs, emb, mask).labels == -1).all()


def test_decide_resolves_auto_and_leaves_other_names():
    probs, emb, y, mask = blobs(n_labeled=4)  # 1 label per class: the low-budget regime
    ctx = lr.selection_context(probs, emb, mask, y)
    method, reason = lr.decide("auto", ctx, 10)
    assert method == auto.LOW_DEFAULT and reason.startswith("1.0 labels per class (4 labeled / 4 classes)")
    assert lr.decide("anchoral_auto", ctx, 10) == (f"anchoral_{auto.LOW_DEFAULT}", reason)
    assert lr.decide("margin", ctx, 10) == ("margin", None)
    assert lr.decide("modal_entropy", ctx, 10) == ("modal_entropy", None)
    with pytest.raises(ValueError, match="strategy must be one of"):
        lr.decide("nonsense", ctx, 10)


@pytest.mark.parametrize("n_labeled", [4, 40])
def test_auto_is_decided_once_and_selects_what_the_registry_selects(n_labeled, count_auto):
    probs, emb, y, mask = blobs(n_labeled=n_labeled)
    ctx = lr.selection_context(probs, emb, mask, y)
    sel = lr.select_round("auto", ctx, 10, random_state=7)
    assert count_auto == [n_labeled]
    assert sel.method == (auto.LOW_DEFAULT if n_labeled == 4 else auto.HIGH_DEFAULT) and not sel.in_space
    np.testing.assert_array_equal(sel.rows, st.select("auto", ctx, 10, random_state=7))


def test_the_space_replaces_the_embeddings_only_for_the_method_that_measures_distances():
    probs, emb, y, mask = blobs(n_labeled=40)
    ctx = lr.selection_context(probs, emb, mask, y)
    space = np.random.RandomState(1).rand(len(y), 3).astype(np.float32)
    seen = []
    real = st.select

    def spy(name, c, budget, random_state=None):
        seen.append(c.embeddings)
        return real(name, c, budget, random_state)

    st.select, saved = spy, st.select
    try:
        assert lr.select_round("auto", ctx, 5, random_state=0, space=space).in_space  # auto -> dbal
        assert not lr.select_round("margin", ctx, 5, random_state=0, space=space).in_space
    finally:
        st.select = saved
    assert seen[0] is space and seen[1] is ctx.embeddings


def _selection_csv(folder):
    with open(folder / "selection.csv", newline="", encoding="utf-8") as f:
        return [int(r["index"]) for r in csv.DictReader(f)]


def test_al_round_and_the_benchmark_round_select_the_same_items(tmp_path, monkeypatch, count_auto):
    """Same data, seed labels and seed: the project's rounds (labels revealed by --oracle) and the
    benchmark's simulated rounds, each with its default recipe, train the same model, reach the
    same accuracy and select the same items."""
    steps, budget = 20, 10
    with LabelingProject.create(tmp_path / "proj", "digits", initial=20, arch="small_cnn", image_size=8,
                                steps=steps, random_state=0) as proj:
        seed_rows = np.flatnonzero(proj.store.label_array() >= 0)
        # The project's seed labels are the benchmark's initial set (the same draw).
        np.testing.assert_array_equal(seed_rows, simulate.initial_rows(proj.data.y_train, 20, 0))
        first = proj.run_round(budget, "auto")
        proj.import_labels(oracle=True)
        second = proj.run_round(budget, "auto")
        loop_sel = [_selection_csv(tmp_path / "proj" / "round-000"), _selection_csv(tmp_path / "proj" / "round-001")]
        recipe = proj.config["epochs_per_fit"]
    assert count_auto == [20, 30]  # one auto decision per `al round`
    assert len(set(loop_sel[0] + loop_sel[1])) == 2 * budget

    picked = []
    real = st.select

    def spy(name, ctx, k, random_state=None):
        rows = real(name, ctx, k, random_state)
        picked.append(rows.tolist())
        return rows

    monkeypatch.setattr(st, "select", spy)
    out = tmp_path / "bench"
    simulate.main(["--dataset", "digits", "--strategies", "auto", "--seeds", "1", "--rounds", "2", "--initial", "20",
                   "--budget", str(budget), "--steps", str(steps), "--quiet",
                   "--out", str(out)])
    assert picked == loop_sel
    curve = simulate.read_curves(out / "curves.csv")
    assert [r["n_labeled"] for r in curve] == [20, 30, 40]
    for record, row in zip((first, second), curve):
        assert record["metrics"]["accuracy"] == pytest.approx(row["accuracy"], abs=1e-6)  # curves.csv keeps 6 digits
        assert record["method"] == auto.HIGH_DEFAULT and record["train"]["steps"] == row["steps"] == steps
    assert recipe == json.loads((out / "run.json").read_text())["epochs_per_fit"] == lr.EPOCHS_PER_FIT


def test_the_analyzer_selects_through_the_round(tmp_path, count_auto):
    probs, emb, y, mask = blobs(n_labeled=40)
    an = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, np.where(mask, y, -1), results_dir=tmp_path,
                                            random_state=3, verbose=False)
    got = an.select("auto", 10)
    assert count_auto == [40]  # one auto decision, its reason in the written summary
    ctx = lr.selection_context(probs, emb, mask, y)
    np.testing.assert_array_equal(got, lr.select_round("auto", ctx, 10, random_state=3).rows)
    written = " ".join(p.read_text(errors="ignore") for p in (tmp_path / "select_auto").rglob("*")
                       if p.suffix in (".json", ".txt"))
    assert "auto: 10.0 labels per class" in written
