"""The run: check the options, train GraphSAGE on an export, rank the pool, write the outputs.

:func:`score_pool` works in memory on the dict that :func:`gnn.export.check_export` or
:func:`gnn.export.load_export` returns (the gnn strategy calls it without touching the
disk); :func:`run_gnn` is :func:`~gnn.export.load_export` + :func:`score_pool` +
figures + the files in ``results/gnn/``. Reads top to bottom: graph
(:mod:`gnn.graph`) -> model and training (:mod:`gnn.model`) -> scores
(:mod:`gnn.scores`) -> selection.

An oversized budget raises ``ValueError``, as in the strategies and the analyzer: a
caller that asked for 100 items and got 40 would compare unequal budgets.
"""
import dataclasses
import numbers
import os
import sys
import time
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.utils import check_random_state

from labelnext import heuristics as AL_functions
from labelnext.utils import checks
from labelnext import knn
from labelnext.io import files as results_io
from labelnext.utils import seeding
from labelnext.gnn import figures
from labelnext.gnn.export import check_export, load_export
from labelnext.gnn.graph import build_graph, edge_homophily, node_homophily, to_adjacency
from labelnext.gnn.model import build_model, predict_proba, split_labeled, train
from labelnext.gnn.options import GNNOptions
from labelnext.gnn.scores import entropy_uncertainty, mutual_information, pool_scores

SUMMARY_SECTIONS = ("data", "params", "graph", "homophily", "training", "accuracy", "uncertainty", "selection")
OUTPUT_FILES = ("gnn_indices.npy", "gnn_scores.npy", "gnn_probs.npy", "summary.txt", "summary.json")


def resolve_device(device):
    """``torch.device`` for ``None`` (CUDA when present, else CPU), ``'cpu'`` or ``'cuda[:i]'``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be None, 'cpu' or 'cuda[:i]', got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(resolved)!r} requested but CUDA is not available; use 'cpu'")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be None, 'cpu' or 'cuda[:i]', got {device!r}")
    return resolved


def int_seed(random_state):
    """The int that seeds Python, NumPy, torch and PyG for one run.

    An int is used as it is (so a seed gives the same indices as before); ``None``
    or a ``RandomState`` draws one, as ``sklearn.utils.check_random_state`` would.
    """
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return checks.check_int(random_state, "random_state", low=0)
    if random_state is None or isinstance(random_state, np.random.RandomState):
        return int(check_random_state(random_state).randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, a non-negative int or a numpy RandomState, got {random_state!r}")


def _check_fits(export, budget, options):
    """What depends on the export's size: k_neighbors < n and 1 <= budget <= n_pool."""
    n = len(export["embeddings"])
    if options.k_neighbors >= n:
        raise ValueError(f"k_neighbors={options.k_neighbors} must be smaller than the number of nodes ({n})")
    n_pool = int((~export["labeled_mask"]).sum())
    checks.check_int(budget, "budget", low=1, high=n_pool)


def _finite_or_none(section):
    """NaN / inf become None so that summary.json stays standard JSON."""
    return {key: None if isinstance(value, float) and not np.isfinite(value) else value
            for key, value in section.items()}


def _accuracy(pred, labels, rows):
    """Accuracy over ``rows`` whose label is known; None when there are none."""
    rows = rows[labels[rows] >= 0]
    return float(np.mean(pred[rows] == labels[rows])) if len(rows) else None


def _log(progress, message):
    if progress:
        print(f"gnn: {message}", file=sys.stderr)


def score_pool(export, *, budget, random_state=None, **options):
    """Train GraphSAGE on an export held in memory and rank its pool.

    Parameters
    ----------
    export : dict
        What :func:`gnn.export.check_export` or :func:`gnn.export.load_export`
        returns: ``embeddings`` (n, d), ``probs`` (n, c), ``labels`` (n,) with -1 for
        unknown, ``labeled_mask`` (n,), optional ``indices`` (n,) and ``metadata``.
        Checked again here. Pool labels, when known, feed diagnostics only.
    budget : int
        Pool items to select, ``1 <= budget <= n_pool``; larger raises ``ValueError``.
    random_state : int, RandomState or None, default=None
        Seeds Python, NumPy, torch and PyG (see :func:`int_seed`); also the split,
        the nearest-neighbour index and tie-breaking.
    **options
        The fields of :class:`GNNOptions` (``k_neighbors``, ``graph_dim``, ``hidden``,
        ``epochs``, ``patience``, ``dropout``, ``lr``, ``weight_decay``, ``alpha``, ``score``,
        ``mc_passes``, ``val_fraction``, ``device``, ``progress``).

    Returns
    -------
    result : dict
        The summary sections (``data``, ``params``, ``graph``, ``homophily``,
        ``training``, ``accuracy``, ``uncertainty``, ``selection``) plus
        ``indices`` (ndarray of shape (budget,) int64, absolute, best first),
        ``selected_rows`` (the same items as export rows), ``scores`` (ndarray of
        shape (n_pool,), pool rows in export order), ``pool_indices`` (ndarray of
        shape (n_pool,), absolute) and ``probs`` (ndarray of shape (n, c) float32,
        GNN probabilities of every row).

        ``accuracy`` is measured on rows each model did not train on:
        ``gnn_pool`` / ``base_pool`` on the pool rows with known labels
        (simulations; None otherwise), ``gnn_val`` on the GNN's held-out labeled
        rows (they steer early stopping). The base model trained on the labeled
        rows, so its figure there, ``base_labeled_trained_on``, is no held-out
        accuracy.
    """
    opts = checks.build_options(GNNOptions, "the GNN", options)
    seed = int_seed(random_state)
    checks.check_int(budget, "budget", low=1)
    if not isinstance(export, Mapping):
        raise ValueError(f"export must be the dict that gnn.check_export returns, got {type(export).__name__}")
    missing = [name for name in ("embeddings", "probs", "labels", "labeled_mask") if name not in export]
    if missing:
        raise ValueError(f"export is missing {', '.join(missing)}")
    export = check_export(export["embeddings"], export["probs"], export["labels"], export["labeled_mask"],
                          export.get("indices"), export.get("metadata"))
    _check_fits(export, budget, opts)
    return _fit_and_rank(export, budget, seed, opts)


def _fit_and_rank(export, budget, seed, opts):
    """:func:`score_pool` on a checked export and checked arguments."""
    device = resolve_device(opts.device)
    n, dim = export["embeddings"].shape
    seeding.seed_everything(seed)  # Python, NumPy, torch and PyG
    labels, mask, base_probs = export["labels"], export["labeled_mask"], export["probs"]
    n_classes = export["metadata"]["n_classes"]
    labeled_rows, pool_rows = np.flatnonzero(mask), np.flatnonzero(~mask)
    # Pool labels (simulations) feed diagnostics only; training sees labeled rows alone.
    train_labels = np.where(mask, labels, -1)

    start = time.perf_counter()
    features = knn.standardize(export["embeddings"])
    edge_index = build_graph(features, opts.k_neighbors, graph_dim=opts.graph_dim, random_state=seed)
    graph_seconds = time.perf_counter() - start
    _log(opts.progress, f"graph: {n} nodes, {edge_index.shape[1] // 2} undirected edges, "
                        f"built in {graph_seconds:.2f} s")

    train_rows, val_rows = split_labeled(labeled_rows, labels, val_fraction=opts.val_fraction, random_state=seed)
    x = torch.from_numpy(features).to(device)
    adj_t = to_adjacency(edge_index, n).to(device)
    y = torch.from_numpy(train_labels).to(device)
    model = build_model(dim, opts.hidden, n_classes, dropout=opts.dropout).to(device)
    history = train(model, x, adj_t, y, torch.from_numpy(train_rows).to(device),
                    torch.from_numpy(val_rows).to(device), epochs=opts.epochs, patience=opts.patience,
                    lr=opts.lr, weight_decay=opts.weight_decay, progress=opts.progress)

    start = time.perf_counter()
    gnn_probs = predict_proba(model, x, adj_t).astype(np.float32)
    pool_probs = gnn_probs[pool_rows]
    mc_probs = predict_proba(model, x, adj_t, mc_passes=opts.mc_passes)[:, pool_rows] if opts.mc_passes else None
    scores = pool_scores(opts.score, pool_probs, base_probs[pool_rows], mc_probs=mc_probs, features=features,
                         pool_rows=pool_rows, labeled_rows=labeled_rows, alpha=opts.alpha, random_state=seed)
    epistemic = None if mc_probs is None else mutual_information(mc_probs)
    selected_rows = pool_rows[AL_functions.select_top(scores, budget, random_state=seed)]
    selected = export["indices"][selected_rows]
    score_seconds = time.perf_counter() - start

    gnn_pred, base_pred = gnn_probs.argmax(1), base_probs.argmax(1)
    params = {name: value for name, value in dataclasses.asdict(opts).items() if name != "progress"}
    summary = {
        "data": {"dataset": export["metadata"]["dataset"], "n_nodes": n, "dim": dim, "n_classes": n_classes,
                 "n_labeled": len(labeled_rows), "n_pool": len(pool_rows),
                 "n_pool_known_labels": int((labels[pool_rows] >= 0).sum())},
        "params": {**params, "budget": budget, "random_state": seed, "device": str(device)},
        "graph": {"n_edges": int(edge_index.shape[1] // 2), "mean_degree": edge_index.shape[1] / n,
                  "seconds": graph_seconds},
        # Homophily over every known label (labeled set plus any known pool labels).
        "homophily": {"edge": edge_homophily(edge_index, labels), "node": node_homophily(edge_index, labels),
                      "edge_labeled_only": edge_homophily(edge_index, train_labels)},
        "training": {"n_train": len(train_rows), "n_val": len(val_rows), **history},
        # Each figure on rows that model did not train on: the base model trained on the
        # labeled rows, so only pool rows with known labels compare the two fairly.
        "accuracy": {"gnn_pool": _accuracy(gnn_pred, labels, pool_rows),
                     "base_pool": _accuracy(base_pred, labels, pool_rows),
                     "gnn_val": _accuracy(gnn_pred, labels, val_rows),
                     "base_labeled_trained_on": _accuracy(base_pred, labels, labeled_rows),
                     "pool_disagreement_rate": float(np.mean(gnn_pred[pool_rows] != base_pred[pool_rows]))},
        "uncertainty": {"gnn_entropy_mean": float(entropy_uncertainty(pool_probs).mean()),
                        "base_entropy_mean": float(entropy_uncertainty(base_probs[pool_rows]).mean()),
                        "mc_epistemic_mean": None if epistemic is None else float(epistemic.mean())},
        "selection": {"score": opts.score, "n_selected": len(selected), "seconds": score_seconds},
    }
    summary = {name: _finite_or_none(section) for name, section in summary.items()}
    return {**summary, "indices": selected, "selected_rows": selected_rows, "scores": scores,
            "pool_indices": export["indices"][pool_rows], "probs": gnn_probs}


def run_gnn(embeddings_dir="results/embeddings", out_dir="results/gnn", *, budget=100, random_state=0,
            plots=True, tsne_points=2000, **options):
    """Train GraphSAGE on the exported embeddings, rank the pool and write the results.

    Parameters
    ----------
    embeddings_dir : str, default='results/embeddings'
        Export written by ``AL_cycle.py`` (see :func:`gnn.export.load_export`).
    out_dir : str, default='results/gnn'
        Where ``gnn_indices.npy``, ``gnn_scores.npy``, ``gnn_probs.npy``,
        ``summary.txt``, ``summary.json`` and the figures go. Nothing is written
        until the whole run has succeeded.
    budget : int, default=100
        Items to select, ``1 <= budget <= n_pool``; larger raises ``ValueError``.
    random_state : int, RandomState or None, default=0
        As in :func:`score_pool`; also seeds the t-SNE figure.
    plots : bool, default=True
        Write ``tsne.png`` and ``uncertainty_distributions.png``.
    tsne_points : int, default=2000
        t-SNE runs on at most this many nodes (all selected ones included).
    **options
        The fields of :class:`GNNOptions`.

    Returns
    -------
    result : dict
        What :func:`score_pool` returns, with ``data.embeddings_dir`` and ``files``
        (the names written) added; the summary sections are ``summary.json``.
    """
    opts = checks.build_options(GNNOptions, "the GNN", options)
    seed = int_seed(random_state)
    checks.check_int(budget, "budget", low=1)
    checks.check_int(tsne_points, "tsne_points", low=10)
    export = load_export(embeddings_dir)
    _check_fits(export, budget, opts)
    result = _fit_and_rank(export, budget, seed, opts)
    result["data"] = {"dataset": result["data"]["dataset"], "embeddings_dir": os.fspath(embeddings_dir),
                      **result["data"]}

    # Figures are rendered before any write, so a plotting error leaves out_dir untouched.
    rendered = {}
    if plots:
        labels, pool_rows = export["labels"], np.flatnonzero(~export["labeled_mask"])
        classes = np.where(labels >= 0, labels, result["probs"].argmax(1))
        rendered["tsne.png"] = figures.tsne_figure(
            knn.standardize(export["embeddings"]), classes, np.flatnonzero(export["labeled_mask"]),
            result["selected_rows"], max_points=tsne_points, random_state=seed, known=labels >= 0)
        rendered["uncertainty_distributions.png"] = figures.uncertainty_figure(
            result["probs"][pool_rows], export["probs"][pool_rows])
    result["files"] = [*OUTPUT_FILES, *rendered]
    summary = {name: result[name] for name in (*SUMMARY_SECTIONS, "files")}

    # The folder is written as a unit: a full disk or a kill leaves the previous results whole.
    with results_io.staged_folder(out_dir) as tmp:
        results_io.save_npy(tmp / "gnn_indices.npy", result["indices"])
        results_io.save_npy(tmp / "gnn_scores.npy", result["scores"].astype(np.float32))
        results_io.save_npy(tmp / "gnn_probs.npy", result["probs"])
        for name, fig in rendered.items():
            results_io.save_figure(tmp / name, fig)
        results_io.save_json(tmp / "summary.json", summary)
        results_io.save_text(tmp / "summary.txt", results_io.summary_text(
            "GraphSAGE sidecar", {name: result[name] for name in SUMMARY_SECTIONS}))
    _log(opts.progress, f"selected {len(result['indices'])} of {len(result['scores'])} pool items "
                        f"by {opts.score!r}; wrote {out_dir}")
    return result
