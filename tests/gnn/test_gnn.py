"""GraphSAGE sidecar (gnn/): homophily, graph, planted clusters, seeds, in-memory scoring, CLI, bad input."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")

from labelnext import gnn  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

from benchmarks import gnn_speed  # noqa: E402


def make_clusters(n_clusters=5, per_cluster=40, dim=16, labels_per_cluster=3, random_state=0, separation=8.0):
    """Well-separated Gaussian clusters; the first ``labels_per_cluster`` of each are labeled."""
    rng = np.random.default_rng(random_state)
    centres = rng.normal(scale=separation, size=(n_clusters, dim))
    y = np.repeat(np.arange(n_clusters), per_cluster)
    x = (centres[y] + rng.normal(size=(len(y), dim))).astype(np.float32)
    mask = np.zeros(len(y), dtype=bool)
    for c in range(n_clusters):
        mask[np.flatnonzero(y == c)[:labels_per_cluster]] = True
    # A base model that is right only half the time, so GNN and CNN disagree somewhere.
    wrong = rng.random(len(y)) < 0.5
    base = np.where(wrong, (y + 1) % n_clusters, y)
    probs = np.full((len(y), n_clusters), 0.1 / (n_clusters - 1), dtype=np.float32)
    probs[np.arange(len(y)), base] = 0.9
    return {"embeddings": x, "probs": probs, "labels": y.astype(np.int64), "labeled_mask": mask,
            "indices": np.arange(len(y), dtype=np.int64) * 7 + 1000}


def write_export(folder, arrays, metadata=None):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in arrays.items():
        np.save(folder / f"{name}.npy", value)
    n_classes = arrays["probs"].shape[1] if np.ndim(arrays["probs"]) == 2 else 2
    meta = {"dataset": "planted", "n_classes": n_classes, "class_names": [f"c{i}" for i in range(n_classes)],
            "extra_key": "tolerated"} if metadata is None else metadata
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def snapshot(folder):
    """Name -> content hash of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture
def export(tmp_path):
    return write_export(tmp_path / "embeddings", make_clusters())


# ---------------------------------------------------------------------- homophily


def undirected(pairs):
    pairs = np.array(pairs).T
    return np.concatenate([pairs, pairs[::-1]], axis=1)


def test_homophily_on_hand_built_graph():
    # 0-1 same, 1-2 diff, 2-3 same, 0-2 diff; 3-4 touches an unknown label; 5 is isolated.
    edges = undirected([(0, 1), (1, 2), (2, 3), (0, 2), (3, 4)])
    labels = np.array([0, 0, 1, 1, -1, 0])
    assert gnn.edge_homophily(edges, labels) == pytest.approx(2 / 4)
    # Per node: 0 -> 1/2, 1 -> 1/2, 2 -> 1/3, 3 -> 1/1 (node 4 unknown, node 5 degree 0).
    assert gnn.node_homophily(edges, labels) == pytest.approx((1 / 2 + 1 / 2 + 1 / 3 + 1) / 4)


def test_homophily_without_known_edges_is_nan():
    edges = undirected([(0, 1)])
    assert np.isnan(gnn.edge_homophily(edges, np.array([0, -1])))
    assert np.isnan(gnn.node_homophily(edges, np.array([0, -1])))


# -------------------------------------------------------------------------- graph


def test_build_graph_is_symmetric_without_self_loops_or_duplicates():
    x = make_clusters(n_clusters=3, per_cluster=10)["embeddings"]
    x[1] = x[0]  # duplicate rows must not produce a self-loop
    edges = gnn.build_graph(x, k_neighbors=4, random_state=0).numpy()
    pairs = set(map(tuple, edges.T))
    assert len(pairs) == edges.shape[1]
    assert all(a != b for a, b in pairs)
    assert all((b, a) in pairs for a, b in pairs)
    assert np.bincount(edges[0], minlength=len(x)).min() >= 4


def test_build_graph_rejects_k_neighbors_not_below_n():
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"k_neighbors=5 must be smaller than the number of nodes \(5\)"):
        gnn.build_graph(x, k_neighbors=5)


# ------------------------------------------------------------------------- scores


def test_disagreement_is_zero_for_equal_and_one_for_disjoint_predictions():
    p = np.array([[0.7, 0.3], [1.0, 0.0]])
    q = np.array([[0.7, 0.3], [0.0, 1.0]])
    np.testing.assert_allclose(gnn.disagreement_scores(p, q), [0.0, 1.0], atol=1e-6)


def test_mutual_information_is_zero_when_passes_agree():
    agree = np.tile([[0.5, 0.5]], (4, 1, 1))
    split = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(gnn.mutual_information(agree), [0.0], atol=1e-6)
    np.testing.assert_allclose(gnn.mutual_information(split), [1.0], atol=1e-6)


def test_hybrid_weights_uncertainty_and_scaled_distance():
    unc, dist = np.array([1.0, 0.0, 0.5]), np.array([2.0, 4.0, 3.0])
    np.testing.assert_allclose(gnn.hybrid_scores(unc, dist, alpha=0.0), unc)
    np.testing.assert_allclose(gnn.hybrid_scores(unc, dist, alpha=1.0), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(gnn.hybrid_scores(unc, dist, alpha=0.5), [0.5, 0.5, 0.5])


# ---------------------------------------------------------------------------- run


def test_planted_clusters_reach_95_percent_on_unlabeled_nodes(export, tmp_path):
    data = make_clusters()
    result = gnn.run_gnn(export, tmp_path / "gnn", plots=False, progress=False, budget=10)
    probs = np.load(tmp_path / "gnn" / "gnn_probs.npy")
    pool = ~data["labeled_mask"]
    assert np.mean(probs[pool].argmax(1) == data["labels"][pool]) >= 0.95
    assert result["accuracy"]["gnn_pool"] >= 0.95
    assert result["homophily"]["edge"] > 0.95


def test_pool_labels_are_never_used_for_training(tmp_path):
    data = make_clusters()
    hidden = dict(data, labels=np.where(data["labeled_mask"], data["labels"], -1))
    known = gnn.run_gnn(write_export(tmp_path / "a", data), tmp_path / "oa", plots=False, progress=False)
    unknown = gnn.run_gnn(write_export(tmp_path / "b", hidden), tmp_path / "ob", plots=False, progress=False)
    np.testing.assert_array_equal(known["indices"], unknown["indices"])
    np.testing.assert_array_equal(np.load(tmp_path / "oa" / "gnn_probs.npy"), np.load(tmp_path / "ob" / "gnn_probs.npy"))
    assert unknown["accuracy"]["gnn_pool"] is None


def test_same_seed_gives_same_indices(export, tmp_path):
    kwargs = dict(plots=False, progress=False, budget=15, mc_passes=5, score="mc_dropout")
    first = gnn.run_gnn(export, tmp_path / "one", random_state=3, **kwargs)
    second = gnn.run_gnn(export, tmp_path / "two", random_state=3, **kwargs)
    np.testing.assert_array_equal(first["indices"], second["indices"])
    np.testing.assert_array_equal(first["scores"], second["scores"])


@pytest.mark.parametrize("score", gnn.SCORES)
def test_every_score_selects_absolute_pool_indices(export, tmp_path, score):
    data = make_clusters()
    # 10 epochs: what is checked is how pool rows map to indices and rank, not how well the GNN learned.
    result = gnn.run_gnn(export, tmp_path / "gnn", score=score, mc_passes=4, budget=12, epochs=10, plots=False,
                         progress=False)
    pool_indices = data["indices"][~data["labeled_mask"]]
    assert result["indices"].dtype == np.int64
    assert len(set(result["indices"])) == 12
    assert set(result["indices"]) <= set(pool_indices)
    np.testing.assert_array_equal(result["pool_indices"], pool_indices)
    assert result["scores"].shape == (len(pool_indices),)
    # Ranked best first: the selected items carry the highest scores.
    chosen = result["scores"][np.searchsorted(pool_indices, result["indices"])]
    assert np.all(np.diff(chosen) <= 0)
    assert chosen.min() >= np.delete(result["scores"], np.searchsorted(pool_indices, result["indices"])).max()


def test_budget_equal_to_pool_selects_every_pool_item(export, tmp_path):
    data = make_clusters()
    result = gnn.run_gnn(export, tmp_path / "gnn", budget=185, epochs=5, plots=False, progress=False)
    assert sorted(result["indices"]) == sorted(data["indices"][~data["labeled_mask"]])


def test_budget_larger_than_pool_raises_and_writes_nothing(export, tmp_path):
    # One policy across the project (strategies, analyzer, GNN): never clip silently.
    with pytest.raises(ValueError, match=r"budget must be an integer between 1 and 185, got 186"):
        gnn.run_gnn(export, tmp_path / "gnn", budget=186, progress=False)
    assert not (tmp_path / "gnn").exists()


@pytest.mark.parametrize("param, value, message", [
    ("score", "bald", r"score must be one of \['hybrid', 'margin', 'entropy', 'disagreement', 'mc_dropout'\]"),
    ("alpha", 1.5, r"alpha must be a number in \[0.0, 1.0\], got 1.5"),
    ("budget", 0, r"budget must be an integer >= 1, got 0"),
    ("hidden", 2.5, r"hidden must be an integer >= 1, got 2.5"),
    ("mc_passes", -1, r"mc_passes must be an integer >= 0, got -1"),
    ("k_neighbors", 0, r"k_neighbors must be an integer >= 1, got 0"),
    ("random_state", -1, r"random_state must be an integer >= 0, got -1"),
    ("random_state", "0", r"random_state must be None, a non-negative int or a numpy RandomState, got '0'"),
    ("k", 10, r"the GNN has no option 'k'; allowed options are \['k_neighbors', "),
    ("seed", 0, r"the GNN has no option 'seed'"),
])
def test_bad_parameters_name_the_parameter(export, tmp_path, param, value, message):
    with pytest.raises(ValueError, match=message):
        gnn.run_gnn(export, tmp_path / "gnn", progress=False, **{param: value})


def test_mc_dropout_score_needs_passes(export, tmp_path):
    with pytest.raises(ValueError, match=r"score='mc_dropout' needs mc_passes >= 2, got 0"):
        gnn.run_gnn(export, tmp_path / "gnn", score="mc_dropout", progress=False)


# ------------------------------------------------------------- in-memory scoring


def test_score_pool_in_memory_matches_run_gnn_and_writes_nothing(export, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kwargs = dict(budget=12, random_state=5, score="disagreement", k_neighbors=6, epochs=60, progress=False)
    on_disk = gnn.run_gnn(export, tmp_path / "gnn", plots=False, **kwargs)
    in_memory = gnn.score_pool(gnn.check_export(**make_clusters()), **kwargs)
    np.testing.assert_array_equal(in_memory["indices"], on_disk["indices"])
    np.testing.assert_array_equal(in_memory["scores"], on_disk["scores"])
    np.testing.assert_array_equal(in_memory["probs"], np.load(tmp_path / "gnn" / "gnn_probs.npy"))
    rows = in_memory["selected_rows"]
    np.testing.assert_array_equal(make_clusters()["indices"][rows], in_memory["indices"])
    assert sorted(n for n in os.listdir(tmp_path) if not n.endswith(".lock")) == ["embeddings", "gnn"]


def test_score_pool_checks_the_export_it_is_given():
    data = make_clusters()
    data["labeled_mask"] = np.zeros_like(data["labeled_mask"])
    with pytest.raises(ValueError, match=r"no labeled nodes"):
        gnn.score_pool(data, budget=5, progress=False)


def test_score_pool_names_missing_arrays():
    data = make_clusters()
    del data["probs"]
    with pytest.raises(ValueError, match=r"export is missing probs"):
        gnn.score_pool(data, budget=5, progress=False)


def test_score_pool_budget_larger_than_pool_raises():
    with pytest.raises(ValueError, match=r"budget must be an integer between 1 and 185, got 500"):
        gnn.score_pool(make_clusters(), budget=500, progress=False)


# ------------------------------------------------- accuracy on rows not trained on


def base_knows_its_training_rows():
    """The planted export with a base model right on every labeled row (it trained on them)
    and on every fourth pool row only: a held-out comparison must show the pool figure."""
    data = make_clusters()
    n, c = data["probs"].shape
    right = data["labeled_mask"] | (np.arange(n) % 4 == 0)
    pred = np.where(right, data["labels"], (data["labels"] + 1) % c)
    probs = np.full((n, c), 0.1 / (c - 1), dtype=np.float32)
    probs[np.arange(n), pred] = 0.9
    pool = ~data["labeled_mask"]
    return dict(data, probs=probs), float(np.mean(right[pool]))


def test_accuracy_compares_both_models_on_pool_rows_neither_trained_on(tmp_path, capsys):
    from labelnext.gnn.__main__ import main

    data, base_pool = base_knows_its_training_rows()
    out = tmp_path / "gnn"
    assert main(["--embeddings-dir", str(write_export(tmp_path / "emb", data)), "--out-dir", str(out),
                 "--budget", "5", "--no-plots", "--quiet"]) == 0
    accuracy = json.loads((out / "summary.json").read_text())["accuracy"]
    assert accuracy["base_pool"] == pytest.approx(base_pool)
    assert accuracy["base_labeled_trained_on"] == 1.0
    assert "base_val" not in accuracy  # the base model trained on the GNN's validation rows
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (f"accuracy on the 185 pool rows with known labels (neither model trained on them): "
                        f"GNN {accuracy['gnn_pool']:.3f}, base model {base_pool:.3f}")


def test_without_pool_labels_each_figure_names_its_rows(tmp_path, capsys):
    from labelnext.gnn.__main__ import main

    data, _ = base_knows_its_training_rows()
    data["labels"] = np.where(data["labeled_mask"], data["labels"], -1)
    out = tmp_path / "gnn"
    assert main(["--embeddings-dir", str(write_export(tmp_path / "emb", data)), "--out-dir", str(out),
                 "--budget", "5", "--no-plots", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"]["gnn_pool"] is None and summary["accuracy"]["base_pool"] is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (f"no pool labels known, so no held-out comparison: GNN "
                        f"{summary['accuracy']['gnn_val']:.3f} on its {summary['training']['n_val']} held-out "
                        f"labeled rows (used for early stopping); base model 1.000 on the 15 labeled rows "
                        f"it trained on")


# ---------------------------------------------------------------------- bad input


def corrupt(case, data):
    """The export arrays for one kind of bad input, and the message it must produce."""
    data = dict(data)
    if case == "lengths":
        data["probs"] = data["probs"][:-1]
        return data, r"export arrays have different lengths"
    if case == "no_labeled":
        data["labeled_mask"] = np.zeros_like(data["labeled_mask"])
        return data, r"no labeled nodes"
    if case == "one_class":
        data["labeled_mask"] = data["labeled_mask"] & (data["labels"] == 0)
        return data, r"need at least 2 classes among the labeled nodes, got \[0\]"
    if case == "nan":
        data["embeddings"] = data["embeddings"].copy()
        data["embeddings"][4, 2] = np.nan
        data["embeddings"][9, 0] = np.inf
        return data, r"embeddings contain NaN or infinite values in 2 of 200 rows"
    raise AssertionError(case)


BAD_CASES = ["lengths", "no_labeled", "one_class", "nan"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_export_raises_and_leaves_out_dir_untouched(tmp_path, case):
    data, message = corrupt(case, make_clusters())
    folder = write_export(tmp_path / "embeddings", data)
    out = tmp_path / "gnn"
    out.mkdir()
    (out / "gnn_indices.npy").write_bytes(b"previous run")
    before, before_export = snapshot(out), snapshot(folder)
    with pytest.raises(ValueError, match=message):
        gnn.run_gnn(folder, out, progress=False)
    assert snapshot(out) == before
    assert snapshot(folder) == before_export


def test_k_neighbors_not_below_number_of_nodes_raises(export, tmp_path):
    with pytest.raises(ValueError, match=r"k_neighbors=200 must be smaller than the number of nodes \(200\)"):
        gnn.run_gnn(export, tmp_path / "gnn", k_neighbors=200, progress=False)


def test_missing_export_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"embeddings folder not found: .*run `python AL_cycle.py` first"):
        gnn.run_gnn(tmp_path / "nowhere", tmp_path / "gnn", progress=False)


def test_missing_file_is_named(export, tmp_path):
    (export / "labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"is missing labels.npy"):
        gnn.run_gnn(export, tmp_path / "gnn", progress=False)


def test_missing_indices_and_optional_metadata_keys_are_tolerated(tmp_path):
    data = make_clusters()
    del data["indices"]
    folder = write_export(tmp_path / "embeddings", data, metadata={"n_classes": 5})
    result = gnn.run_gnn(folder, tmp_path / "gnn", plots=False, progress=False, budget=5)
    assert set(result["indices"]) <= set(np.flatnonzero(~data["labeled_mask"]))
    assert result["data"]["dataset"] == "unknown"


# ---------------------------------------------------------------------------- CLI


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gnn", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_cli_on_tiny_export_writes_all_outputs(export, tmp_path, capsys):
    from labelnext.gnn.__main__ import main

    out = tmp_path / "gnn"
    # In-process (the command's main, as `python -m gnn` calls it; a process paid PyTorch's import): the
    # exit code and stderr of the process are test_cli_bad_input_is_one_line_and_exit_code_2's.
    code = main([str(a) for a in ("--embeddings-dir", export, "--out-dir", out, "--budget", 7, "--k", 5,
                                  "--epochs", 10)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "epoch" in stderr and "epoch" not in stdout  # training progress goes to stderr
    assert "selected 7 items" in stdout
    names = {"gnn_indices.npy", "gnn_scores.npy", "gnn_probs.npy", "summary.txt", "summary.json", "tsne.png",
             "uncertainty_distributions.png"}
    assert names <= set(os.listdir(out))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["params"]["k_neighbors"] == 5 and summary["selection"]["n_selected"] == 7
    data = make_clusters()
    indices = np.load(out / "gnn_indices.npy")
    assert indices.dtype == np.int64 and len(indices) == 7
    assert set(indices) <= set(data["indices"][~data["labeled_mask"]])
    assert np.load(out / "gnn_probs.npy").shape == (200, 5)
    assert "edge" in (out / "summary.txt").read_text()


def test_cli_bad_input_is_one_line_and_exit_code_2(export, tmp_path):
    out = tmp_path / "gnn"
    proc = run_cli("--embeddings-dir", export, "--out-dir", out, "--k", 500, "--quiet")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --k-neighbors 500 must be smaller than the number of nodes (200)"
    assert not out.exists()


def test_cli_help_lists_the_parameters():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for flag in ("--k-neighbors", "--k ", "--hidden", "--epochs", "--alpha", "--score", "--budget", "--mc-passes",
                 "--seed"):
        assert flag in proc.stdout


def test_gnn_never_imports_tensorflow():
    code = ("import sys; import labelnext.gnn, labelnext.gnn.graph, labelnext.gnn.model, labelnext.gnn.scores, "
            "labelnext.gnn.run, labelnext.gnn.figures, labelnext.gnn.__main__, benchmarks.gnn_speed; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cli_help_does_not_import_torch():
    code = ("import sys; from labelnext.gnn.__main__ import build_parser; build_parser().format_help(); "
            "assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cli_k_alias_and_k_neighbors_flag_are_one_option():
    from labelnext.gnn.__main__ import build_parser

    assert build_parser().parse_args(["--k", "7"]).k_neighbors == 7
    assert build_parser().parse_args(["--k-neighbors", "7"]).k_neighbors == 7


def test_speed_benchmark_reaches_planted_clusters():
    row = gnn_speed.bench_one(400, 8, n_classes=3, k_neighbors=5, epochs=60, spread=4.0, random_state=0)
    assert row["nodes"] == 400 and row["knn"] == "exact"
    assert row["pool_acc"] >= 0.95 and row["homophily"] >= 0.95
    # 8-d is below graph_dim: the exact full-width search, so every exact neighbour is in the graph.
    assert row["recall"] == 1.0


@pytest.mark.parametrize("graph_dim", [None, 2, 64])
def test_graph_neighbours_on_an_arc_are_the_nearest_angles(graph_dim):
    from labelnext.gnn.graph import graph_neighbours

    # Unit points on an arc (gaps 10, 15, 20, ... degrees) in a plane of 6-d space: the nearest
    # other point is the one across the smaller gap; the 2 leading components span the plane.
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 2)))[0]
    angles = np.radians([0, 10, 25, 45, 70, 100, 135])
    x = (np.stack([np.cos(angles), np.sin(angles)], axis=1) @ basis.T).astype(np.float32)
    neighbours = graph_neighbours(x, 1, graph_dim=graph_dim, random_state=0)
    np.testing.assert_array_equal(neighbours[:, 0], [1, 0, 1, 2, 3, 4, 5])


def test_graph_dim_is_checked():
    from labelnext.gnn.graph import graph_neighbours

    with pytest.raises(ValueError, match="graph_dim"):
        graph_neighbours(np.eye(4, dtype=np.float32), 1, graph_dim=0)


@pytest.mark.parametrize("case", BAD_CASES + ["k", "missing"])
def test_cli_main_reports_each_bad_input_in_one_line(tmp_path, capsys, case):
    from labelnext.gnn.__main__ import main

    folder, args = tmp_path / "embeddings", []
    if case == "k":
        write_export(folder, make_clusters())
        args = ["--k-neighbors", "200"]
    elif case != "missing":
        write_export(folder, corrupt(case, make_clusters())[0])
    out = tmp_path / "gnn"
    assert main(["--embeddings-dir", str(folder), "--out-dir", str(out), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_an_empty_npy_in_the_export_is_one_line(export, tmp_path, capsys):
    from labelnext.gnn.__main__ import main

    # In-process, as test_cli_main_reports_each_bad_input_in_one_line; the subprocess's exit code and
    # stderr are test_cli_bad_input_is_one_line_and_exit_code_2's.
    (Path(export) / "probs.npy").write_bytes(b"")
    assert main(["--embeddings-dir", str(export), "--out-dir", str(tmp_path / "gnn"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot read probs.npy" in err and "Traceback" not in err


def test_a_full_disk_leaves_the_previous_gnn_results_whole(export, tmp_path, monkeypatch):
    import errno

    from labelnext.io import files as results_io

    out = tmp_path / "gnn"
    gnn.run_gnn(export, out, budget=5, epochs=5, plots=False, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(*args, **kwargs):  # the disk fills up after the indices are written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results_io, "save_json", full)
    with pytest.raises(OSError, match="No space left"):
        gnn.run_gnn(export, out, budget=7, epochs=5, plots=False, progress=False, random_state=3)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # new indices never beside the old summary


# ---------------------------------------------------------------------- training


def _train_evaluating_separately(model, x, adj_t, y, train_rows, val_rows, epochs, patience):
    """The plain loop (a training forward, then a full evaluation forward per epoch)."""
    import torch.nn.functional as F

    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    best_loss, best_epoch, best_state, epoch = float("inf"), 0, None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        optimizer.zero_grad()
        F.cross_entropy(model(x, adj_t)[train_rows], y[train_rows]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            monitor = float(F.cross_entropy(model(x, adj_t)[val_rows], y[val_rows]))
        if monitor < best_loss - 1e-4:
            best_loss, best_epoch = monitor, epoch
            best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
        if epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    return epoch, best_epoch, best_loss


@pytest.mark.parametrize("epochs, patience", [(60, 3), (7, 50)])
def test_train_sharing_the_first_layer_matches_evaluating_separately(epochs, patience):
    from labelnext.gnn.graph import build_graph, to_adjacency
    from labelnext.gnn.model import build_model, split_labeled, train

    data = make_clusters(separation=1.0)
    n, dim = data["embeddings"].shape
    adj_t = to_adjacency(build_graph(data["embeddings"], 5, random_state=0), n)
    x, y = torch.from_numpy(data["embeddings"]), torch.from_numpy(data["labels"])
    tr, va = (torch.from_numpy(r) for r in split_labeled(np.arange(n), data["labels"], random_state=0))
    runs = []
    for fit in ("shared", "separate"):
        torch.manual_seed(0)
        model = build_model(dim, 8, 5)
        if fit == "shared":
            calls = []
            model.conv1.register_forward_hook(lambda *_: calls.append(1))
            h = train(model, x, adj_t, y, tr, va, epochs=epochs, patience=patience, progress=False)
            summary = (h["epochs_run"], h["best_epoch"], h["best_val_loss"])
            # One first layer per epoch (plus the last evaluation), not two.
            assert len(calls) == h["epochs_run"] + 1
        else:
            summary = _train_evaluating_separately(model, x, adj_t, y, tr, va, epochs, patience)
        runs.append((summary, [t.clone() for t in model.state_dict().values()]))
    (shared, w_shared), (separate, w_separate) = runs
    assert shared == separate
    assert all(torch.equal(a, b) for a, b in zip(w_shared, w_separate))
    # The first case stops early, the second runs every epoch: both branches are covered.
    assert (shared[0] < epochs) == (patience == 3)
