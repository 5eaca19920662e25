"""The analyzer's door to large pools: streamed inference (`from_inference`, `al analyze`) and
the analyses on a Dask cluster (`find_intersection(client=...)`) select what the in-memory
analyzer selects on the same pool."""
import csv

import numpy as np
import pytest

from benchmarks.synthetic import make_pool
from helpers import photos
from labelnext import cli
from labelnext.analysis import large_pools
from labelnext.analysis.analyzer import ActiveLearningAnalyzer
from labelnext.data.images import list_image_files, read_images
from labelnext.training import backbones, predict, runs
from labelnext.utils.console import run_cli

SIDE, BUDGET = 8, 12
CLASSES = ["blue", "green", "red"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """SOURCE/<class>/ (labeled, 8 per class) and SOURCE/unlabeled/ (the pool, 60 images)."""
    root = photos(tmp_path_factory.mktemp("src") / "photos", per_class=8)
    pool = photos(tmp_path_factory.mktemp("pool") / "p", per_class=20, seed=1)
    (root / "unlabeled").mkdir()
    for i, path in enumerate(sorted(pool.rglob("*.png"))):
        path.rename(root / "unlabeled" / f"u{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A saved run (model + metadata.json with the class names), as train.py and `al` write them."""
    backbones.load_keras().utils.set_random_seed(0)
    model = backbones.build_model((SIDE, SIDE, 3), len(CLASSES), arch="small_cnn")
    folder = tmp_path_factory.mktemp("run") / "model"
    runs.write_run(folder, model, np.arange(3), {"classes": CLASSES})
    return folder


def _in_memory(run_dir, folder, mask, tmp_path):
    """The analyzer on the same items decoded and predicted whole, in memory."""
    model, _ = runs.load_model(run_dir)
    x = read_images([str(folder / p) for p, _ in list_image_files(folder)], SIDE)
    probs, emb = predict.predict_with_embeddings(model, x)
    a = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, results_dir=tmp_path / "mem", verbose=False)
    return a.find_intersection(BUDGET, retrain=False, write=False)[0]


def test_streamed_inference_selects_what_the_in_memory_analyzer_selects(run_dir, folder, tmp_path):
    a = ActiveLearningAnalyzer.from_inference(run_dir, folder, tmp_path / "inf",
                                              results_dir=tmp_path / "res", verbose=False)
    items = (tmp_path / "inf" / "items.txt").read_text().splitlines()
    assert len(items) == 84 and a.labeled_mask_.sum() == 24  # the layout: class folders labeled
    assert all(a.labeled_mask_[i] != p.startswith("unlabeled/") for i, p in enumerate(items))
    assert a.class_names == CLASSES and isinstance(a.embeddings_, np.memmap)
    picked, stats = a.find_intersection(BUDGET, retrain=False)
    np.testing.assert_array_equal(picked, _in_memory(run_dir, folder, a.labeled_mask_, tmp_path))
    sheet = a.export_labeling_csv(tmp_path / "sheet.csv")
    with open(sheet, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == picked.tolist()
    assert [r["image"] for r in rows] == [str(folder / items[i]) for i in picked]


def test_al_analyze_writes_the_selection_and_refuses_bad_input_in_one_line(run_dir, folder, tmp_path, capsys):
    assert cli.main(["analyze", str(folder), "--model", str(run_dir), "--out", str(tmp_path / "out"),
                     "--budget", str(BUDGET)]) == 0
    out = capsys.readouterr().out
    assert f"selected {BUDGET} of 60 pool items" in out and str(tmp_path / "out" / "selection.csv") in out
    with open(tmp_path / "out" / "selection.csv", newline="") as f:
        picked = [int(r["index"]) for r in csv.DictReader(f)]
    mask = large_pools.folder_labeled_mask((tmp_path / "out" / "inference" / "items.txt").read_text().splitlines())
    assert picked == _in_memory(run_dir, folder, mask, tmp_path).tolist()
    # A .npy source says which rows are labeled with --labeled; without it: one line, exit 2.
    np.save(tmp_path / "pool.npy", np.zeros((20, SIDE, SIDE, 3), dtype=np.uint8))
    argv = ["analyze", str(tmp_path / "pool.npy"), "--model", str(run_dir), "--out", str(tmp_path / "o2")]
    assert run_cli(cli.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --labeled is required for SOURCE")
    np.save(tmp_path / "rows.npy", np.arange(25))
    assert run_cli(cli.main, argv + ["--labeled", str(tmp_path / "rows.npy")]) == 2
    assert "row numbers in [0, 19]" in capsys.readouterr().err


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, memory_limit="2GiB") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_the_analyses_on_a_dask_cluster_select_what_they_select_in_memory(client, tmp_path):
    emb, probs, _, mask = make_pool(3000, 16, 5, 150, n_centers=8, random_state=0)
    mem = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, results_dir=tmp_path / "mem", verbose=False)
    want, want_stats = mem.find_intersection(50, retrain=False, write=False)
    # Arrays in memory: the workers read copies written to results_dir/cluster/.
    a = ActiveLearningAnalyzer.from_arrays(probs, emb, mask, results_dir=tmp_path / "a", verbose=False)
    got, stats = a.find_intersection(50, retrain=False, write=False, client=client)
    np.testing.assert_array_equal(got, want)
    assert stats["n_intersection"] == want_stats["n_intersection"]
    assert (tmp_path / "a" / "cluster" / "embeddings.npy").exists()
    for name in ("uncertainty", "diversity", "novelty"):
        np.testing.assert_array_equal(a.results_[name]["mask"], mem.results_[name]["mask"])
    # Paths given: the workers read those files; the reports are written as in memory.
    np.save(tmp_path / "emb.npy", emb)
    np.save(tmp_path / "probs.npy", probs)
    b = ActiveLearningAnalyzer.from_arrays(tmp_path / "probs.npy", tmp_path / "emb.npy", mask,
                                           results_dir=tmp_path / "b", verbose=False)
    got, _ = b.find_intersection(50, retrain=False, client=client)
    np.testing.assert_array_equal(got, want)
    assert not (tmp_path / "b" / "cluster").exists()
    assert (tmp_path / "b" / "intersection").is_dir() and (tmp_path / "b" / "diversity").is_dir()
