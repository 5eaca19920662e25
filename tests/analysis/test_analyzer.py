"""The analyzer end to end with a tiny model on tiny data, the scripts (their __main__ blocks; --help as
subprocesses), bad input."""
import csv
import hashlib
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labelnext.analysis.main import ActiveLearningAnalyzer

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = {
    "uncertainty": "Evaluation/Uncertainty/uncertainty.py",
    "diversity": "Evaluation/Diversity/diversity.py",
    "novelty": "Evaluation/Novelty/novelty.py",
    "intersection": "Evaluation/Image_selec/image_selection.py",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A small CNN on 16x16 digits with 150 labels: seconds to train."""
    from labelnext.training.trainer import train_base_model

    out = tmp_path_factory.mktemp("models") / "tiny"
    train_base_model("digits", labeled_size=150, random_state=0, out_dir=out, arch="small_cnn", steps=60, image_size=16, verbose=0)
    return out


def tree_digest(folder):
    """Content hash of every file under ``folder`` (to prove bad input changed nothing)."""
    h = hashlib.sha1()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def make_analyzer(tiny_run, tmp_path, **kw):
    kw.setdefault("target_per_class", 5)
    return ActiveLearningAnalyzer(tiny_run / "best_model.keras", results_dir=tmp_path / "results", verbose=False, **kw)


def test_run_folder_holds_model_labeled_set_and_metadata(tiny_run):
    import json

    meta = json.loads((tiny_run / "metadata.json").read_text())
    labeled = np.load(tiny_run / "labeled_indices.npy")
    assert labeled.dtype == np.int64 and len(np.unique(labeled)) == 150 == meta["labeled_size"]
    assert meta["input_shape"] == [16, 16, 3] and meta["n_classes"] == 10 and meta["seed"] == 0
    # Stratified: every class is in the seed set.
    from labelnext.data import load_dataset

    y = load_dataset("digits", image_size=16).y_train
    assert len(np.unique(y[labeled])) == 10


@pytest.fixture(scope="module")
def analyzed(tiny_run, tmp_path_factory):
    """The three analyses and their intersection on pool rows 0-900, written to disk once: what
    test_end_to_end_writes_every_output checks and bad parameters must leave intact."""
    tmp_path = tmp_path_factory.mktemp("analyzed")
    an = make_analyzer(tiny_run, tmp_path, labeled_size=150, start_idx=0, end_idx=900)
    kept = an.run_all(uncertainty_params={"threshold_percentile": 50}, diversity_params={"n_clusters": 8}, novelty_params={"k_neighbors": 5})
    idx, stats = an.find_intersection(budget=60, retrain=False)
    return an, kept, idx, stats, tmp_path / "results"


def test_end_to_end_writes_every_output(tiny_run, analyzed):
    an, kept, idx, stats, res = analyzed
    assert set(kept) == {"uncertainty", "diversity", "novelty"}
    assert len(idx) == 60 == len(np.unique(idx))
    assert np.isin(idx, an.pool_indices_).all() and (idx < 900).all()
    labeled = np.load(tiny_run / "labeled_indices.npy")
    assert not np.isin(idx, labeled).any()
    for name in ("uncertainty", "diversity", "novelty", "intersection"):
        ind = np.load(res / name / f"{name}_indices.npy")
        sc = np.load(res / name / f"{name}_scores.npy")
        assert ind.dtype == np.int64 and ind.shape == sc.shape
        assert (res / name / "summary.json").exists() and (res / name / "summary.txt").exists()
        assert (res / name / "top_images.png").stat().st_size > 0
    assert (res / "diversity" / "clusters_2d.png").exists() and (res / "intersection" / "overlap.png").exists()
    np.testing.assert_array_equal(np.load(res / "intersection" / "intersection_indices.npy"), idx)
    summary = an.get_summary()
    assert "intersection" in summary and "class balance" in summary
    assert stats["class_balance"]["counts"] and sum(stats["class_balance"]["counts"]) == 60


def test_same_seed_same_indices(tiny_run, tmp_path):
    runs = []
    for i in range(2):
        an = make_analyzer(tiny_run, tmp_path / str(i), random_state=3)
        # write=False: the figures are the end-to-end test's; the selection is the same either way.
        an.run_all(diversity_params={"n_clusters": 10}, write=False)
        runs.append(an.find_intersection(budget=50, retrain=False, write=False)[0])
    np.testing.assert_array_equal(runs[0], runs[1])


def test_inference_is_cached_and_writes_nothing_else(tiny_run, tmp_path):
    an = make_analyzer(tiny_run, tmp_path)
    probs = an.probs_
    # Reading a property runs the one inference pass; the GNN export is an explicit step.
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["cache"]
    assert len(list((tmp_path / "results" / "cache").glob("inference-*.npz"))) == 1
    again = make_analyzer(tiny_run, tmp_path)
    np.testing.assert_array_equal(again.probs_, probs)


def test_export_embeddings_is_what_the_gnn_reads(tiny_run, tmp_path):
    from labelnext import gnn

    an = make_analyzer(tiny_run, tmp_path, start_idx=0, end_idx=900)
    out = an.export_embeddings()
    assert out == tmp_path / "results" / "embeddings"
    export = gnn.load_export(out)
    np.testing.assert_array_equal(export["probs"], an.probs_)
    np.testing.assert_array_equal(export["indices"], an.indices_)
    np.testing.assert_array_equal(export["labeled_mask"], an.labeled_mask_)
    assert export["metadata"]["pool_range"] == [0, 900] and export["metadata"]["n_labeled"] == 150


def test_retrain_adds_balanced_items_and_saves_a_run(tiny_run, tmp_path):
    an = make_analyzer(tiny_run, tmp_path, target_per_class=3, retrain_steps=20)
    # write=False: the analyses' folders and figures are the end-to-end test's; the retraining writes its run.
    an.run_all(diversity_params={"n_clusters": 5}, write=False)
    _, stats = an.find_intersection(budget=200, retrain="auto", write=False)
    assert stats["class_balance"]["met"]
    report = stats["retrain"]
    assert report["added"] == 30 and set(report["added_per_class"].values()) == {3}
    assert report["labeled_after"] == 180 and report["accuracy_after"] is not None and report["accuracy_random"] is not None
    run = Path(report["model_path"]).parent
    assert len(np.load(run / "labeled_indices.npy")) == 180
    assert "random selection of the same size" in an.get_summary()


def test_from_arrays_works_without_a_model(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    logits = rng.normal(size=(n, 4)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    mask = np.zeros(n, bool)
    mask[:40] = True
    an = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, results_dir=tmp_path, verbose=False, target_per_class=5)
    an.run_all(diversity_params={"n_clusters": 6})
    idx, stats = an.find_intersection(budget=30)
    assert len(idx) == 30 and idx.min() >= 40
    assert stats["class_balance"]["source"] == "predictions"
    assert (tmp_path / "intersection" / "intersection_indices.npy").exists()
    with pytest.raises(ValueError, match="retraining is the caller's job"):
        an.retrain()


def test_bald_on_a_keras_run_draws_mc_dropout_passes_from_its_head(tiny_run, tmp_path):
    an = make_analyzer(tiny_run, tmp_path)
    assert an.model.dropout_rate() == pytest.approx(0.2)  # build_model's default, read from the saved model
    picked = an.select("bald", 10, params={"bald": {"n_passes": 5}})
    assert len(set(picked)) == 10 and set(picked) <= set(an.pool_indices_)
    again = make_analyzer(tiny_run, tmp_path).select("bald", 10, params={"bald": {"n_passes": 5}}, write=False)
    np.testing.assert_array_equal(again, picked)


def arrays_with_labels(n=120, c=3, n_labeled=24, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % c
    emb = (rng.randn(n, 5) + 2 * np.eye(c, 5)[y]).astype(np.float32)
    probs = rng.dirichlet(np.ones(c), size=n)
    mask = np.zeros(n, bool)
    mask[:n_labeled] = True
    return probs, emb, mask, np.where(mask, y, -1)


def test_from_arrays_bald_reads_the_mc_probs_it_was_given(tmp_path):
    from labelnext.strategies.bald import bald_select

    probs, emb, mask, labels = arrays_with_labels()
    mc = np.random.RandomState(1).dirichlet(np.ones(3), size=(4, len(probs)))
    an = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, labels, mc_probs=mc, results_dir=tmp_path, verbose=False)
    np.testing.assert_array_equal(an.select("bald", 6), bald_select(mc, mask, 6, random_state=0))
    bare = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, labels, results_dir=tmp_path, verbose=False)
    with pytest.raises(ValueError, match="bald needs MC-dropout samples"):
        bare.select("bald", 6)
    with pytest.raises(ValueError, match="mc_probs covers 10 rows but 120 were expected"):
        ActiveLearningAnalyzer.from_arrays(probs, emb, mask, labels, mc_probs=mc[:, :10], verbose=False)


@pytest.mark.parametrize("strategy", ["modal_entropy", "modal_ranked_batch"])
def test_from_arrays_modal_fits_a_head_on_the_labeled_rows_and_says_so(strategy, tmp_path, capsys):
    import json

    probs, emb, mask, labels = arrays_with_labels()
    an = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, labels, results_dir=tmp_path, verbose=True)
    picked = an.select(strategy, 6)
    assert len(set(picked)) == 6 and picked.min() >= 24
    np.testing.assert_array_equal(an.select(strategy, 6, write=False), picked)
    note = json.loads((tmp_path / f"select_{strategy}" / "summary.json").read_text())["note"]
    assert note.startswith("no softmax head of a model: modAL queries a multinomial logistic regression fitted "
                           "on the 24 labeled embeddings") and "3 of 3 classes labeled" in note
    assert f"{strategy}: {note}" in capsys.readouterr().err


def test_labels_csv_round_trip_and_bad_rows(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=50)
    mask = np.zeros(50, bool)
    mask[:10] = True
    an = ActiveLearningAnalyzer.from_arrays(probs, rng.normal(size=(50, 4)), mask, class_names=["cat", "dog", "eel"],
                                            results_dir=tmp_path, verbose=False, target_per_class=1)
    an.find_intersection(budget=5)
    path = an.export_labeling_csv()
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 5 and rows[0]["label"] == "" and rows[0]["predicted_class"] in {"cat", "dog", "eel"}
    filled = tmp_path / "filled.csv"
    filled.write_text("index,label\n" + "".join(f"{r['index']},{['cat', 'dog', 'eel'][i % 3]}\n" for i, r in enumerate(rows)))
    assert an.load_labels_csv(filled) == 5
    assert (an.labels_[np.array([int(r["index"]) for r in rows])] >= 0).all()
    bad_index = tmp_path / "bad_index.csv"
    bad_index.write_text("index,label\n999,cat\n")
    with pytest.raises(ValueError, match="index 999 is not in the pool"):
        an.load_labels_csv(bad_index)
    bad_class = tmp_path / "bad_class.csv"
    bad_class.write_text(f"index,label\n{rows[0]['index']},horse\n")
    with pytest.raises(ValueError, match="label 'horse' is not a class"):
        an.load_labels_csv(bad_class)


def test_empty_intersection_does_not_break_the_summary(tmp_path):
    # Uncertainty and novelty point at disjoint halves: their intersection is empty.
    n = 60
    probs = np.full((n, 2), 0.5)
    probs[:30] = [0.99, 0.01]
    emb = np.zeros((n, 2), dtype=np.float32)
    emb[:30, 0] = np.linspace(5, 6, 30)
    emb[30:, 0] = np.linspace(0, 0.1, 30)
    mask = np.zeros(n, bool)
    mask[[30, 31]] = True
    an = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, results_dir=tmp_path, verbose=False)
    an.run_uncertainty(threshold_percentile=60, method="entropy")
    an.run_novelty(k_neighbors=1, novelty_percentile=60)
    an.run_diversity(n_clusters=2, distance_percentile=0)
    idx, stats = an.find_intersection()
    assert stats["n_intersection"] == 0 and len(idx) == 0 and "empty" in stats["note"]
    assert "empty" in an.get_summary()


@pytest.mark.parametrize("kwargs, match", [
    ({"start_idx": 10, "end_idx": 5000}, "end_idx must be an integer between 11 and"),
    ({"start_idx": -1}, "start_idx must be"),
    ({"labeled_size": 99}, "labeled_size=99 but the model's labeled set"),
    ({"dataset": "/nonexistent/data"}, "does not exist"),
    ({"dataset": "NPZ"}, "is not the one the model was trained on"),
])
def test_bad_constructor_input(tiny_run, tmp_path, kwargs, match):
    if kwargs.get("dataset") == "NPZ":  # another data set with the same classes and image size
        rng = np.random.default_rng(0)
        kwargs["dataset"] = str(tmp_path / "other.npz")
        np.savez(kwargs["dataset"], x_train=rng.integers(0, 255, (1437, 16, 16, 3), dtype=np.uint8),
                 y_train=rng.integers(0, 10, 1437), x_test=np.zeros((5, 16, 16, 3), np.uint8), y_test=np.arange(5))
    with pytest.raises(ValueError, match=match):
        make_analyzer(tiny_run, tmp_path, **kwargs)


def test_bad_analysis_parameters_leave_results_intact(analyzed):
    # The end-to-end test's written analyses and intersection (one run of them for both tests).
    an, res = analyzed[0], analyzed[-1]
    before = tree_digest(res)
    n_pool, n_labeled = int(an.pool_mask_.sum()), int(an.labeled_mask_.sum())
    for call, match in [
        (lambda: an.run_novelty(k_neighbors=n_labeled + 1), f"k_neighbors must be an integer between 1 and {n_labeled}"),
        (lambda: an.run_diversity(n_clusters=n_pool + 1), f"n_clusters must be an integer between 1 and {n_pool}"),
        (lambda: an.run_uncertainty(threshold_percentile=120), "threshold_percentile must be a number between 0 and 100"),
        (lambda: an.run_novelty(novelty_percentile=-5), "novelty_percentile must be"),
        (lambda: an.find_intersection(budget=n_pool + 1), "budget must be"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()
    assert tree_digest(res) == before


def test_missing_and_corrupt_model(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ActiveLearningAnalyzer(tmp_path / "nope.keras", results_dir=tmp_path)
    bad = tmp_path / "run" / "best_model.keras"
    bad.parent.mkdir()
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not a readable Keras model"):
        ActiveLearningAnalyzer(bad, results_dir=tmp_path)


@pytest.mark.parametrize("probs, mask, match", [
    (np.array([[0.5, np.nan], [0.5, 0.5]]), [True, False], "NaN"),
    (np.array([[0.5, 0.6], [0.5, 0.5]]), [True, False], "sum to 1"),
    (np.array([[0.5, 0.5], [0.5, 0.5]]), [False, False], "labeled set is empty"),
])
def test_from_arrays_bad_input(probs, mask, match):
    with pytest.raises(ValueError, match=match):
        ActiveLearningAnalyzer.from_arrays(probs, np.ones((2, 3)), np.array(mask))


def run_script(path, *args):
    return subprocess.run([sys.executable, str(REPO / path), *args], cwd=REPO, capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_scripts_run_and_write(tiny_run, tmp_path, name, monkeypatch, capsys):
    args = ["--model", str(tiny_run), "--results-dir", str(tmp_path), "--quiet"]
    if name in ("diversity", "intersection"):
        args += ["--n-clusters", "6"]
    # The script's own __main__ block in this process (its exit code is SystemExit's): a process per
    # script paid TensorFlow's import. test_scripts_help starts every script as a process.
    monkeypatch.setattr(sys, "argv", [SCRIPTS[name], *args])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / SCRIPTS[name]), run_name="__main__")
    out, err = capsys.readouterr()
    assert exit_.value.code == 0, err
    assert (tmp_path / name / f"{name}_indices.npy").exists()
    assert "Active-learning analysis" in out


@pytest.mark.parametrize("name, args, match", [
    ("novelty", ["--k-neighbors", "100000"], "--k-neighbors must be an integer"),
    ("uncertainty", ["--threshold-percentile", "150"], "--threshold-percentile must be a number between 0 and 100"),
    ("diversity", ["--n-clusters", "0"], "--n-clusters must be an integer"),
    ("intersection", ["--dataset", "/no/such/folder"], "does not exist"),
    ("uncertainty", ["--end-idx", "999999"], "--end-idx must be"),
])
def test_scripts_bad_input_exit_2_without_traceback(tiny_run, tmp_path, name, args, match, monkeypatch, capsys):
    # The script's own __main__ block, in this process (test_scripts_help starts each as a process):
    # a subprocess would pay TensorFlow's import again before the model is read.
    (tmp_path / "keep.txt").write_text("precious")
    before = tree_digest(tmp_path)
    monkeypatch.setattr(sys, "argv", [SCRIPTS[name], "--model", str(tiny_run), "--results-dir", str(tmp_path),
                                      "--quiet", *args])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / SCRIPTS[name]), run_name="__main__")
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "Traceback" not in err and match in err
    assert tree_digest(tmp_path) == before


def test_scripts_help():
    for path in list(SCRIPTS.values()) + ["AL_cycle.py", "train.py"]:
        res = run_script(path, "--help")
        assert res.returncode == 0 and "--seed" in res.stdout


def test_main_job_reports_before_after_and_random_over_the_seeds_asked_for(tiny_run, tmp_path, monkeypatch, capsys):
    import json

    from labelnext.analysis.main import build_parser

    # AL_cycle.py's __main__ block in this process (test_scripts_help starts it as a process; a process
    # here paid TensorFlow's import again). One run of the job: it was two (one seed, then three), each
    # with the analyses' figures and the fits.
    monkeypatch.setattr(sys, "argv", ["AL_cycle.py", "--model", str(tiny_run), "--results-dir", str(tmp_path),
                                      "--quiet", "--target-per-class", "3", "--steps", "4", "--patience", "1",
                                      "--n-clusters", "5", "--compare-seeds", "2"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / "AL_cycle.py"), run_name="__main__")
    out, err = capsys.readouterr()
    assert exit_.value.code == 0, err
    assert "random selection of the same size" in out and "->" in out
    # Two seeds (each a selection fit and a random fit): the several-seed report.
    assert "AL vs random over 2 seeds" in out
    comparison = json.loads((tmp_path / "retrain" / "summary.json").read_text())["comparison"]
    assert comparison["seeds"] == [0, 1] and len(comparison["difference"]) == 2 and comparison["std_difference"] is not None
    # The default is one seed (what the report says of one seed: test_promises'
    # test_one_seed_decides_nothing_and_several_give_mean_and_spread).
    assert build_parser().parse_args([]).compare_seeds == 1
    # `python -m gnn` after the main job reads the export it wrote.
    assert (tmp_path / "embeddings" / "embeddings.npy").exists()


def test_a_seeds_two_fits_on_one_trainer_equal_two_fresh_models(tiny_run, tmp_path):
    from labelnext.analysis import model_run
    from labelnext.training import trainer as train

    model, data, labeled, meta = model_run.open_run(tiny_run)
    pool = np.setdiff1d(np.arange(len(data.y_train)), labeled)
    added, random_added = pool[:40], pool[40:80]
    report = model_run.retrain_and_compare(model, data, data.y_train, labeled, added, [random_added], meta,
                                           run_dir=tmp_path / "run", steps=30, seed=0, patience=2)
    for extra, key in ((added, "selection"), (random_added, "random")):
        lab = np.union1d(labeled, extra)
        fresh, _ = train.train_classifier(data.x_train[lab], data.y_train[lab], model.n_classes, arch=meta["arch"],
                                          random_state=0, steps=30, patience=2)
        assert train.evaluate(fresh, data.x_test, data.y_test)["accuracy"] == report["comparison"][key][0]


def test_report_says_where_early_stopping_ended_the_fit():
    from labelnext.io import reports

    assert reports.retrain_steps({"steps": 800, "steps_trained": 200}) == "200 of 800 steps, early-stopped"
    assert reports.retrain_steps({"steps": 800, "steps_trained": 810}) == "800 steps"
    assert reports.retrain_steps({"steps": 800}) == "800 steps"


def test_mobilenetv3_embedding_is_576d():
    from labelnext.training.backbones import build_model
    from labelnext.training.predict import predict_with_embeddings

    model = build_model((32, 32, 3), 10, arch="mobilenetv3")
    probs, emb = predict_with_embeddings(model, np.zeros((2, 32, 32, 3), np.uint8))
    assert probs.shape == (2, 10) and emb.shape == (2, 576)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)


def test_select_named_strategies_on_arrays(tmp_path):
    rng = np.random.default_rng(2)
    n = 400
    probs = rng.dirichlet(np.ones(4) * 0.5, size=n)
    emb = rng.normal(size=(n, 6)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    mask = np.zeros(n, bool)
    mask[:40] = True
    an = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, labels=labels, results_dir=tmp_path, verbose=False)
    top = an.select("entropy", 10)
    from labelnext import heuristics as alf

    pool = np.arange(40, n)
    expected = pool[np.argsort(-alf.entropy_scores(probs[pool]), kind="stable")[:10]]
    assert set(top.tolist()) == set(expected.tolist())
    for name in ("anchoral_entropy", "seals_margin", "random"):
        idx = an.select(name, 15, params={"anchoral": {"subpool_size": 100}})
        assert len(np.unique(idx)) == 15 and idx.min() >= 40
    assert np.load(tmp_path / "select_anchoral_entropy" / "select_anchoral_entropy_indices.npy").shape == (15,)
    with pytest.raises(ValueError, match="strategy must be one of"):
        an.select("no_such_strategy", 5)


def small_pool(n=120, n_labeled=20, seed=0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(3), size=n)
    mask = np.zeros(n, bool)
    mask[:n_labeled] = True
    return probs, rng.normal(size=(n, 4)).astype(np.float32), mask


def test_one_default_for_python_and_the_command_line():
    from labelnext import heuristics as alf
    from labelnext.analysis.main import analysis_params_from_args, build_parser

    args = build_parser().parse_args([])
    an = ActiveLearningAnalyzer.from_arrays(*small_pool(), verbose=False)
    assert an.target_per_class == args.target_per_class == 20
    for name in alf.ANALYSES:
        assert analysis_params_from_args(args, name) == alf.ANALYSIS_DEFAULTS[name]


def test_run_without_options_uses_the_shared_defaults(tmp_path):
    from labelnext import heuristics as alf

    an = ActiveLearningAnalyzer.from_arrays(*small_pool(), results_dir=tmp_path, verbose=False)
    an.run_all(write=False)
    assert an.results_["uncertainty"]["params"] == alf.ANALYSIS_DEFAULTS["uncertainty"]
    assert an.results_["novelty"]["params"] == alf.ANALYSIS_DEFAULTS["novelty"]
    assert an.results_["diversity"]["params"] == dict(alf.ANALYSIS_DEFAULTS["diversity"], algorithm="kmeans")


def test_run_all_checks_every_option_before_writing(tmp_path):
    an = ActiveLearningAnalyzer.from_arrays(*small_pool(), results_dir=tmp_path / "results", verbose=False)
    with pytest.raises(ValueError, match="k_neighbors must be an integer between 1 and 20"):
        an.run_all(novelty_params={"k_neighbors": 21})
    assert not (tmp_path / "results").exists() and an.results_ == {}
    with pytest.raises(ValueError, match=r"uncertainty options \['percentile'\] are unknown"):
        an.run_uncertainty(percentile=50)


def test_load_labels_csv_sets_labels_of_pool_rows(tmp_path):
    an = ActiveLearningAnalyzer.from_arrays(*small_pool(), class_names=["a", "b", "c"], results_dir=tmp_path, verbose=False)
    sheet = tmp_path / "filled.csv"
    sheet.write_text("index,label\n25,b\n30,\n40,2\n")
    assert an.load_labels_csv(sheet) == 2
    assert an.labels_[25] == 1 and an.labels_[40] == 2 and an.labels_[30] == -1
    (tmp_path / "labeled.csv").write_text("index,label\n3,a\n")
    with pytest.raises(ValueError, match="index 3 is not in the pool"):
        an.load_labels_csv(tmp_path / "labeled.csv")


def test_importing_the_main_job_loads_no_framework():
    code = "import sys, AL_cycle; print(sorted(m for m in ('tensorflow', 'torch', 'matplotlib.pyplot') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
