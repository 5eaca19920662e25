"""The selection space: label-free LSA features of text, which strategies measure distances in
them, and the benchmark and the loop that use it."""
import json

import numpy as np
import pytest

from labelnext import strategies as st
from labelnext.benchmark import simulate as le
from labelnext.loop.project import LabelingProject
from labelnext.loop.round import select_round
from labelnext.strategies.space import check_space, lsa_features, may_use_space, pool_space, uses_space

TOPICS = {"sport": "goal match team score league coach player season",
          "cooking": "oven recipe flour butter sugar bake dough kitchen",
          "space": "orbit rocket planet moon launch star galaxy telescope"}


def documents(n_per_topic=20, seed=0):
    """Short documents, each made of one topic's words in a random order: (texts, topic ids)."""
    rng = np.random.RandomState(seed)
    texts, topics = [], []
    for t, words in enumerate(TOPICS.values()):
        words = words.split()
        for _ in range(n_per_topic):
            texts.append(" ".join(rng.choice(words, 12)))
            topics.append(t)
    return np.array(texts, dtype=object), np.array(topics)


def test_lsa_rows_are_unit_length_seeded_and_group_documents_by_topic():
    texts, topics = documents()
    z = lsa_features(texts, n_components=5, random_state=0)
    assert z.shape == (60, 5) and z.dtype == np.float32
    assert np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(z, lsa_features(texts, n_components=5, random_state=0))
    # Nearest neighbour (cosine) of every document is a document of its own topic.
    sim = z @ z.T
    np.fill_diagonal(sim, -np.inf)
    assert (topics[sim.argmax(axis=1)] == topics).all()


def test_model_space_is_none_and_lsa_needs_text():
    assert pool_space("model", np.zeros((4, 2)), random_state=0) == (None, 0.0)
    check_space("lsa", "text")
    with pytest.raises(ValueError, match="selection_space 'lsa' needs text, got tabular data"):
        check_space("lsa", "tabular")


def test_only_distance_based_strategies_get_the_space():
    for name in ("dbal", "typiclust", "coreset", "probcover", "cluster_margin", "uncertainty_clustering"):
        assert uses_space(name)
    for name in ("margin", "badge", "random", "intersection", "anchoral_dbal", "auto"):
        assert not uses_space(name)  # auto is resolved to its pick first (loop.round.decide)
    rng = np.random.RandomState(0)
    probs = rng.dirichlet([1, 1], 30).astype(np.float32)
    mask = np.zeros(30, bool)
    mask[:10] = True
    ctx = st.SelectionContext(probs, rng.rand(30, 4).astype(np.float32), mask, labels=np.where(mask, np.arange(30) % 2, -1))
    space = rng.rand(30, 3).astype(np.float32)
    # auto by the method it picks: 5 labels per class -> DBAL, which measures distances.
    sel = select_round("auto", ctx, 5, random_state=0, space=space)
    assert sel.method == "dbal" and sel.in_space
    assert not select_round("auto", ctx, 5, random_state=0).in_space


def _text_csv(path, n_per_topic=20):
    texts, topics = documents(n_per_topic)
    names = list(TOPICS)
    path.write_text("text,label\n" + "".join(f"{t},{names[c]}\n" for t, c in zip(texts, topics)))
    return path


def test_benchmark_runs_auto_in_the_lsa_space_and_refuses_it_on_images(tmp_path):
    data = _text_csv(tmp_path / "docs.csv", n_per_topic=30)
    out = tmp_path / "bench"
    le.main(["--dataset", str(data), "--strategies", "random,auto", "--initial", "6", "--budget", "6", "--rounds", "2",
             "--seeds", "1", "--steps", "10", "--selection-space", "lsa", "--quiet", "--out", str(out)])
    assert json.loads((out / "run.json").read_text())["selection_space"] == "lsa"
    rows = le.read_curves(out / "curves.csv")
    assert [r["n_labeled"] for r in rows if r["strategy"] == "auto"] == [6, 12, 18]
    with pytest.raises(ValueError, match="needs text, got image data"):
        le.main(["--dataset", "digits", "--selection-space", "lsa", "--quiet", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()


def test_a_text_project_selects_in_the_lsa_space(tmp_path):
    data = _text_csv(tmp_path / "docs.csv")
    with LabelingProject.create(tmp_path / "proj", data, initial=6, steps=10, selection_space="lsa") as proj:
        assert proj.config["selection_space"] == "lsa"
        result = proj.run_round(5, strategy="auto")
        assert result["selection_space"] == "lsa" and result["method"] == "dbal" and result["selected"] == 5
        # Computed once and kept: the next round reads the same features from the folder.
        kept = np.load(tmp_path / "proj" / "selection_space_lsa.npy")
        assert np.array_equal(kept, pool_space("lsa", proj.data.x_train, random_state=proj.config["seed"])[0])
    with pytest.raises(ValueError, match="needs text"):
        LabelingProject.create(tmp_path / "img", "digits", initial=20, selection_space="lsa", image_size=8)
    assert not (tmp_path / "img").exists()


def test_the_space_is_wanted_only_where_a_strategy_can_read_it():
    assert may_use_space(["random", "typiclust"]) and may_use_space(["auto"])
    assert not may_use_space(["random", "margin", "badge", "anchoral_dbal"])
