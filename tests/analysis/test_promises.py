"""The promises the docs make: bad input and OS errors are one line and exit 2 with nothing
touched, folders land as a unit, modes follow the umask, messages name flags, figures tell the truth,
and tables and text go through the analyzer like images."""
import errno
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from labelnext.analysis import main as AL_cycle
from labelnext.analysis import analyzer
from labelnext.utils import console as cli
from labelnext.analysis import model_run as keras_run
from labelnext.io import plots
from labelnext.io import reports
from labelnext.io import files as results_io
from labelnext.training import cli as train_cli
from labelnext.training.backbones import build_model, load_keras
from labelnext.training.runs import check_run_target
from labelnext.utils.defaults import MODEL_FILE
from labelnext.analysis.analyzer import ActiveLearningAnalyzer

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def tree_digest(folder):
    h = hashlib.sha1()
    for p in sorted(Path(folder).rglob("*")):
        if p.name.endswith(".lock"):  # a writer's lock file beside a folder is not content
            continue
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def toy(tmp_path, n=40, kind="image", **kw):
    """A from_arrays analyzer over a known toy pool: item i is sure of class i % 2, less so as i grows."""
    rng = np.random.RandomState(0)
    p0 = np.linspace(0.99, 0.5, n)
    probs = np.where((np.arange(n) % 2 == 0)[:, None], np.c_[p0, 1 - p0], np.c_[1 - p0, p0]).astype(np.float32)
    mask = np.zeros(n, bool)
    mask[:10] = True
    items = {"image": rng.randint(0, 255, (n, 4, 4, 3)).astype(np.uint8),
             "tabular": rng.rand(n, 3).astype(np.float32),
             "text": np.array([f"document number {i} " * 30 for i in range(n)], dtype=object)}[kind]
    kw.setdefault("verbose", False)
    return ActiveLearningAnalyzer.from_arrays(probs, rng.rand(n, 4), mask, labels=np.arange(n) % 2, images=items,
                                              class_names=["cat", "dog"], results_dir=tmp_path / "results", **kw)


def one_line_exit_2(capsys, main, argv, flags=None):
    code = cli.run_cli(main, argv, flags)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------- item 2: train.py --out
def test_train_out_never_replaces_a_foreign_folder_or_a_file(tmp_path, capsys):
    foreign = tmp_path / "precious"
    (foreign / "sub").mkdir(parents=True)
    (foreign / "precious.txt").write_text("keep me")
    (foreign / "sub" / "data.csv").write_text("a,b\n")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me too")
    before = tree_digest(tmp_path)
    for target, match in ((foreign, "is a folder that is not one of our runs"), (a_file, "exists and is not a run folder")):
        err = one_line_exit_2(capsys, train_cli.main, ["--out", str(target), "--overwrite", "--steps", "1"], train_cli.FLAGS)
        assert match in err and err.startswith(f"error: --out '{target}'")
    assert tree_digest(tmp_path) == before


def test_train_out_replaces_one_of_our_runs_only_with_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / MODEL_FILE).write_bytes(b"model")
    (run / "metadata.json").write_text("{}")
    before = tree_digest(tmp_path)
    err = one_line_exit_2(capsys, train_cli.main, ["--out", str(run), "--steps", "1"], train_cli.FLAGS)
    assert "already holds a run: pass --overwrite" in err
    assert tree_digest(tmp_path) == before
    assert check_run_target(run, overwrite=True) == run


# ----------------------------------------------------------------------------- item 3: validate before writing
@pytest.mark.parametrize("argv, match", [
    (["--budget", "0"], "--budget must be an integer >= 1, got 0"),
    (["--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["--seed", "-1"], "--seed must be an integer >= 0, got -1"),
    (["--compare-seeds", "0"], "--compare-seeds must be"),
    (["--patience", "0"], "--patience must be an integer >= 1, got 0"),
    (["--k-neighbors", "0"], "--k-neighbors must be an integer >= 1"),
    (["--threshold-percentile", "120"], "--threshold-percentile must be a number between 0 and 100"),
])
def test_main_job_checks_arguments_before_anything(tmp_path, capsys, argv, match):
    results = tmp_path / "results"
    err = one_line_exit_2(capsys, AL_cycle.main, argv + ["--model", str(tmp_path / "nope"), "--results-dir", str(results)],
                          AL_cycle.FLAGS)
    assert match in err
    assert not results.exists()


def test_intersection_script_refuses_budget_0(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "Evaluation" / "Image_selec"))
    import image_selection

    err = one_line_exit_2(capsys, image_selection.main, ["--budget", "0", "--model", str(tmp_path / "m"),
                                                         "--results-dir", str(tmp_path / "r")], AL_cycle.FLAGS)
    assert "--budget must be an integer >= 1, got 0" in err and not (tmp_path / "r").exists()


def test_select_with_bad_options_writes_nothing(tmp_path):
    an = toy(tmp_path)
    with pytest.raises(ValueError, match="no option 'bogus'"):
        an.select("anchoral_entropy", 5, params={"anchoral": {"bogus": 1}})
    assert not (tmp_path / "results").exists()


# ----------------------------------------------------------------------------- item 4: OS errors
def test_full_disk_is_one_line_and_the_old_folder_stays(tmp_path, capsys, monkeypatch):
    an = toy(tmp_path)
    an.run_uncertainty()
    before = tree_digest(tmp_path / "results")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results_io.np, "save", full)
    err = one_line_exit_2(capsys, lambda argv: an.run_novelty(), None)
    assert "No space left on device" in err and "uncertainty" not in err and "novelty" in err
    err = one_line_exit_2(capsys, lambda argv: an.run_uncertainty(), None)
    assert "uncertainty_indices.npy: No space left on device" in err
    assert tree_digest(tmp_path / "results") == before


def test_results_subpath_that_is_a_file(tmp_path, capsys):
    an = toy(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "uncertainty").write_text("a file")
    err = one_line_exit_2(capsys, lambda argv: an.run_uncertainty(), None)
    assert err == f"error: {tmp_path / 'results' / 'uncertainty'}: exists and is not a folder"
    assert (tmp_path / "results" / "uncertainty").read_text() == "a file"


def test_read_only_results_folder(tmp_path, capsys, monkeypatch):
    # Tests may run as root, whom chmod does not stop: simulate what the OS says.
    monkeypatch.setattr(results_io.os, "access", lambda path, mode: False)
    err = one_line_exit_2(capsys, AL_cycle.main, ["--model", str(tmp_path / "m"), "--results-dir", str(tmp_path)])
    assert err == f"error: {tmp_path}: folder is not writable"


# ----------------------------------------------------------------------------- items 5, 6: the inference cache
class FakeModel:
    """The KerasModel contract, counting predictions."""

    def __init__(self, path, probs):
        self.path, self.probs, self.calls = Path(path), probs, 0

    def fingerprint(self):
        return hashlib.blake2b(self.probs.tobytes()).hexdigest()

    def predict(self, x, batch_size=256):
        self.calls += 1
        return self.probs, np.asarray(x, dtype=np.float32).reshape(len(x), -1)


def test_damaged_cache_is_said_and_recomputed(tmp_path, capsys, monkeypatch):
    model_file = tmp_path / "m.keras"
    model_file.write_bytes(b"weights")
    an = toy(tmp_path, verbose=True)
    capsys.readouterr()
    an.model, an.model_path = FakeModel(model_file, an.probs_), model_file
    # A stand-in data set (a from_arrays analyzer has none) and its fingerprint.
    an.data = type("D", (), {"x_train": np.random.RandomState(0).rand(40, 4).astype(np.float32), "kind": "tabular"})()
    monkeypatch.setattr(keras_run, "dataset_fingerprint", lambda ds: "toy")
    an._probs = None
    probs = an.probs_
    cache = next((tmp_path / "results" / "cache").glob("inference-*.npz"))
    for damage in (b"", cache.read_bytes()[:100]):
        cache.write_bytes(damage)
        an._probs = None
        np.testing.assert_array_equal(an.probs_, probs)
        err = capsys.readouterr().err
        assert f"cache {cache} is damaged" in err and "recomputing" in err
    assert an.model.calls == 3


def test_cache_key_follows_the_model_not_its_file(tmp_path, monkeypatch):
    keras = load_keras()
    model = build_model((6,), 3, arch="linear", adapt=np.random.RandomState(0).rand(20, 6))
    monkeypatch.setattr(keras_run, "dataset_fingerprint", lambda ds: "toy")
    data, indices = None, np.arange(4)
    keys = []
    for name in ("a.keras", "b.keras"):  # the same model saved to two files (Keras writes the save date in each)
        model.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name, compile=False)
        keys.append(keras_run.cache_key(keras_run.KerasModel(loaded, tmp_path / name), data, indices))
    assert keys[0] == keys[1]
    weights = model.get_weights()
    weights[-1] = weights[-1] + 1e-3  # one bias moved: another model under the same path
    model.set_weights(weights)
    assert keras_run.cache_key(keras_run.KerasModel(model, tmp_path / "a.keras"), data, indices) != keys[0]


# ----------------------------------------------------------------------------- item 7: folders as a unit
def test_a_failed_write_leaves_the_whole_old_folder(tmp_path, monkeypatch):
    an = toy(tmp_path)
    an.run_uncertainty()
    before = tree_digest(tmp_path / "results")
    monkeypatch.setattr(reports, "save_figure", lambda *a: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError, match="killed"):
        an.run_uncertainty(threshold_percentile=10)
    assert tree_digest(tmp_path / "results") == before
    assert [p.name for p in (tmp_path / "results").iterdir() if p.name.startswith(".tmp-")] == []


def test_stale_temporaries_are_removed_on_start(tmp_path):
    stale = tmp_path / "results" / ".tmp-uncertainty-dead"
    stale.mkdir(parents=True)
    (stale / "top_images.png").write_bytes(b"")
    (tmp_path / "results" / ".old-uncertainty-123").mkdir()
    toy(tmp_path).run_uncertainty()
    assert sorted(p.name for p in (tmp_path / "results").iterdir() if not p.name.endswith(".lock")) == ["uncertainty"]


def test_a_second_writer_of_one_folder_waits(tmp_path):
    an = toy(tmp_path)
    done = threading.Event()
    with results_io.folder_lock(tmp_path / "results" / "uncertainty"):
        t = threading.Thread(target=lambda: (an.run_uncertainty(), done.set()))
        t.start()
        time.sleep(1.0)
        assert not done.is_set() and not (tmp_path / "results" / "uncertainty").exists()
    t.join(30)
    assert done.is_set() and (tmp_path / "results" / "uncertainty" / "summary.json").exists()


def test_thumbnails_land_as_a_unit(tmp_path, monkeypatch):
    sheet = tmp_path / "to_label.csv"
    reports.write_labeling_csv(sheet, [1, 2], ["a", "b"], [0.5, 0.5], images=np.zeros((2, 3, 3, 3), np.uint8))
    before = tree_digest(tmp_path)
    calls, real = [], reports.save_png

    def dies_on_second(path, image):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, image)

    monkeypatch.setattr(reports, "save_png", dies_on_second)
    with pytest.raises(OSError):
        reports.write_labeling_csv(sheet, [3, 4], ["a", "b"], [0.5, 0.5], images=np.ones((2, 3, 3, 3), np.uint8))
    assert tree_digest(tmp_path) == before


# ----------------------------------------------------------------------------- item 8: umask
def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        toy(tmp_path).run_uncertainty()
        results_io.save_json(tmp_path / "x.json", {})
    finally:
        os.umask(old)
    out = tmp_path / "results" / "uncertainty"
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)
    assert oct((out / "summary.json").stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "x.json").stat().st_mode & 0o777) == oct(0o644)


# ----------------------------------------------------------------------------- item 10: API input
@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"retrain_steps": -5}, "retrain_steps must be an integer >= 1, got -5"),
    ({"auto_retrain": "no"}, "auto_retrain must be True or False, got 'no'"),
    ({}, "model_path '.*nope' does not exist"),
])
def test_api_input_is_refused_with_value_error(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ActiveLearningAnalyzer(tmp_path / "nope", results_dir=tmp_path, **kwargs)


def test_complex_probabilities_are_refused():
    probs = np.full((4, 2), 0.5, dtype=np.complex64)
    with pytest.raises(ValueError, match="must be real numbers, got dtype complex"):
        ActiveLearningAnalyzer.from_arrays(probs, np.ones((4, 2)), np.array([1, 0, 0, 0], bool))


# ----------------------------------------------------------------------------- item 11: flags and short usage
def test_messages_name_flags_not_parameters():
    assert cli.flag_message("name='/x' does not exist: pass", AL_cycle.FLAGS) == "--dataset '/x' does not exist: pass"
    assert cli.flag_message("random_state must be an integer >= 0, got -1", AL_cycle.FLAGS).startswith("--seed must")
    assert cli.flag_message("n_clusters must be an integer between 1 and 30", AL_cycle.FLAGS).startswith("--n-clusters")


def test_argparse_errors_are_two_lines(tmp_path):
    for script in ("AL_cycle.py", "train.py", "Evaluation/Novelty/novelty.py"):
        res = subprocess.run([PY, script, "--budget" if script == "AL_cycle.py" else "--seed", "abc"], cwd=REPO,
                             capture_output=True, text=True)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 2, res.stderr
        assert "invalid int value: 'abc'" in res.stderr


# ----------------------------------------------------------------------------- item 13: figures tell the truth
def test_select_grid_says_rank_and_scores_file_holds_ranks(tmp_path):
    an = toy(tmp_path)
    an.select("entropy", 5)
    out = tmp_path / "results" / "select_entropy"
    assert np.load(out / "select_entropy_scores.npy").tolist() == [1, 2, 3, 4, 5]
    assert json.loads((out / "summary.json").read_text())["scores"] == "strategy's order (rank), not a score"


def test_histogram_draws_no_threshold_line_the_kept_set_does_not_follow():
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    kept = np.array([False, True, False, True])  # an OR of two rules: no line on this axis separates it
    legend = [t.get_text() for t in plots.score_histogram(scores, 0.2, kept=kept, title="t", xlabel="x").axes[0].get_legend().get_texts()]
    assert legend == ["not kept (2)", "kept (2)"]
    legend = [t.get_text() for t in plots.score_histogram(scores, 0.3, kept=scores >= 0.3, title="t", xlabel="x").axes[0].get_legend().get_texts()]
    assert legend == ["not kept (2)", "kept (2)", "threshold 0.3"]


def test_grids_show_the_predicted_class_the_truth_only_as_simulation_and_mark_fill():
    grid = {"predicted": ["dog", "cat"], "true": ["cat", "cat"], "scores": [0.9, 0.5], "fill": [False, True]}
    assert reports.grid_captions(grid) == ["dog 0.9\ntrue cat", "fill: cat 0.5\ntrue cat"]
    assert "true class (simulation" in reports._grid_title(grid, "x") and "fill" in reports._grid_title(grid, "x")
    assert reports.grid_captions(dict(grid, true=None, fill=None, score_label="rank")) == ["dog #1", "cat #2"]


# ----------------------------------------------------------------------------- tables and text downstream
def test_tabular_items_give_a_table_of_top_rows(tmp_path):
    an = toy(tmp_path, kind="tabular")
    ranked = an.run_uncertainty()
    import csv

    rows = list(csv.reader(open(tmp_path / "results" / "uncertainty" / "top_rows.csv")))
    assert rows[0][:6] == ["rank", "index", "predicted_class", "true_class (simulation)", "score", "fill"]
    assert [int(r[1]) for r in rows[1:]] == ranked[:reports.TOP_GRID].tolist()
    assert [r[2] for r in rows[1:]] == [["cat", "dog"][int(an.probs_[i].argmax())] for i in ranked[:reports.TOP_GRID]]


def test_text_items_give_snippets(tmp_path):
    an = toy(tmp_path, kind="text")
    an.find_intersection(budget=20, retrain=False)
    text = (tmp_path / "results" / "intersection" / "top_texts.txt").read_text()
    assert "document number" in text and " ..." in text and "fill: " in text


# ----------------------------------------------------------------------------- item 14: seeds, stderr, --help
def test_one_seed_decides_nothing_and_several_give_mean_and_spread():
    one = {"seeds": [0], "difference": [0.02], "mean_difference": 0.02, "std_difference": None}
    assert "one seed decides nothing" in reports.comparison_line(one)
    three = {"seeds": [0, 1, 2], "difference": [0.03, 0.0, 0.03], "mean_difference": 0.02, "std_difference": 0.01732}
    assert reports.comparison_line(three) == ("    AL vs random over 3 seeds: +0.020 +/- 0.017 test accuracy "
                                              "(mean +/- sd of the difference; per seed +0.030, +0.000, +0.030)")


@pytest.mark.parametrize("script", ["AL_cycle.py", "train.py", "Evaluation/Uncertainty/uncertainty.py",
                                    "Evaluation/Image_selec/image_selection.py"])
def test_help_imports_no_framework(script):
    code = (f"import runpy, sys; sys.argv = [{script!r}, '--help']\ntry:\n runpy.run_path({script!r}, run_name='__main__')\n"
            "except SystemExit: pass\nprint([m for m in ('tensorflow', 'torch', 'keras', 'matplotlib', 'analyzer') if m in sys.modules])")
    res = subprocess.run([PY, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.stdout.strip().splitlines()[-1] == "[]", res.stdout[-500:]


def test_al_cycle_mirrors_agree():
    assert AL_cycle.DEFAULT_MODEL == analyzer.DEFAULT_MODEL
    assert AL_cycle.TARGET_PER_CLASS == analyzer.TARGET_PER_CLASS and AL_cycle.COMPARE_SEEDS == keras_run.COMPARE_SEEDS


def test_training_progress_goes_to_stderr_and_tf_is_deterministic(tmp_path, capsys):
    code = cli.run_cli(train_cli.main, ["--dataset", "digits", "--image-size", "16", "--arch", "small_cnn", "--steps", "4",
                                    "--labeled-size", "60", "--patience", "1", "--out", str(tmp_path / "run")])
    out = capsys.readouterr()
    assert code == 0 and out.out.startswith("saved ") and len(out.out.strip().splitlines()) == 1
    assert "Epoch" in out.err or "step" in out.err
    from tensorflow.python.framework import config

    assert config.is_op_determinism_enabled()
