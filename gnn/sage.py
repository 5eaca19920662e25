"""GraphSAGE sidecar: structure-aware uncertainty from a kNN graph of exported embeddings.

Reads top to bottom like PyG's ``examples/reddit.py``: load the export -> build the
graph -> build the model -> train -> ``@torch.no_grad()`` predict -> score -> write.
Everything is a function; nothing lives at module level except imports and constants.

The Keras side and this module meet only through the files in ``results/embeddings/``
(written by ``AL_cycle.py``), so TensorFlow is never imported here.
"""
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
import torch_geometric
from sklearn.utils import check_random_state
from torch_geometric.nn import SAGEConv
from torch_geometric.utils import remove_self_loops, to_torch_csr_tensor, to_undirected

import AL_functions
import checks
import knn
import results_io
import seeding
from gnn.export import EXPORT_FILES, check_export, load_export  # noqa: F401  (re-exported by gnn)

SCORES = ("hybrid", "margin", "entropy", "disagreement", "mc_dropout")


# -------------------------------------------------------------------------- graph


def build_graph(features, k=10, *, random_state=None):
    """Symmetric cosine kNN graph without self-loops or duplicate edges.

    Parameters
    ----------
    features : ndarray of shape (n, d)
        Standardised embeddings (``knn.standardize``); rows are L2-normalised here
        so that cosine distance is what ranks neighbours.
    k : int, default=10
        Neighbours per node before symmetrisation, ``1 <= k < n``.
    random_state : int or None
        Passed to the nearest-neighbour index (hnswlib for large inputs).

    Returns
    -------
    edge_index : LongTensor of shape (2, n_edges)
        Both directions of every undirected edge, coalesced (sorted, unique).
    """
    n = len(features)
    checks.check_int(k, "k", low=1)
    if k >= n:
        raise ValueError(f"k={k} must be smaller than the number of nodes ({n})")
    # The project's one nearest-neighbour index: exact blocks when small, hnswlib when large.
    normed = knn.l2_normalize(features)
    _, neighbours = knn.knn_search(normed, normed, k, metric="cosine", exclude_self=True,
                                            random_state=random_state)
    src = np.repeat(np.arange(n, dtype=np.int64), neighbours.shape[1])
    dst = np.asarray(neighbours, dtype=np.int64).ravel()
    keep = dst >= 0  # an approximate index may pad missing neighbours with -1
    edge_index = torch.from_numpy(np.stack([src[keep], dst[keep]]))
    # Duplicate embeddings can still return a node as its own neighbour.
    edge_index, _ = remove_self_loops(edge_index)
    return to_undirected(edge_index, num_nodes=n)


def to_adjacency(edge_index, n_nodes):
    """Sparse CSR ``adj_t`` for message passing (~9x faster than ``edge_index`` on CPU).

    Parameters
    ----------
    edge_index : LongTensor of shape (2, n_edges)
    n_nodes : int

    Returns
    -------
    adj_t : torch.sparse_csr Tensor of shape (n_nodes, n_nodes)
        Row ``i`` lists the sources of messages into node ``i``.
    """
    with warnings.catch_warnings():
        # torch flags sparse CSR as "beta" and notes skipped invariant checks: noise here,
        # since the indices come straight from a coalesced edge_index.
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
        return to_torch_csr_tensor(edge_index.flip(0), size=(n_nodes, n_nodes))


def edge_homophily(edge_index, labels):
    """Share of edges joining two nodes of the same class, over known labels.

    Parameters
    ----------
    edge_index : array-like of shape (2, n_edges)
    labels : ndarray of shape (n,)
        Class per node, -1 where unknown; edges touching an unknown node are ignored.

    Returns
    -------
    homophily : float
        In [0, 1]; NaN when no edge joins two known nodes.
    """
    src, dst = np.asarray(edge_index, dtype=np.int64)
    y = np.asarray(labels)
    known = (y[src] >= 0) & (y[dst] >= 0)
    if not known.any():
        return float("nan")
    return float(np.mean(y[src[known]] == y[dst[known]]))


def node_homophily(edge_index, labels):
    """Mean over nodes with degree > 0 of the share of same-class neighbours.

    Only known labels count: edges touching a node labelled -1 are dropped first,
    and degree is taken on what remains.

    Parameters
    ----------
    edge_index : array-like of shape (2, n_edges)
        Directed edges ``src -> dst``; the share is computed per ``dst`` node, so pass
        both directions for an undirected graph.
    labels : ndarray of shape (n,)

    Returns
    -------
    homophily : float
        In [0, 1]; NaN when no node has a known neighbour.
    """
    src, dst = np.asarray(edge_index, dtype=np.int64)
    y = np.asarray(labels)
    known = (y[src] >= 0) & (y[dst] >= 0)
    src, dst = src[known], dst[known]
    degree = np.bincount(dst, minlength=len(y))
    same = np.bincount(dst, weights=(y[src] == y[dst]).astype(float), minlength=len(y))
    has = degree > 0
    if not has.any():
        return float("nan")
    return float(np.mean(same[has] / degree[has]))


# -------------------------------------------------------------------------- model


class CachedSAGEConv(SAGEConv):
    """``SAGEConv`` that computes the neighbour mean of a fixed input only once.

    In transductive training the first layer always sees the same node features, and
    its d-wide sparse product dominates an epoch (about 1.3 s of 1.7 s per step at
    100k nodes x 576-d on 2 cores). Like ``GCNConv(cached=True)``, the result is kept
    while the same ``adj_t`` and unmodified input come back; an input that needs
    gradients is never cached.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cache = None

    def message_and_aggregate(self, adj_t, x):
        src = x[0]
        if src.requires_grad:
            return super().message_and_aggregate(adj_t, x)
        cache = self._cache
        if cache is None or cache[0] is not adj_t or cache[1] is not src or cache[2] != src._version:
            self._cache = cache = (adj_t, src, src._version, super().message_and_aggregate(adj_t, x))
        return cache[3]


class SAGE(torch.nn.Module):
    """Two-layer GraphSAGE (mean aggregation), ReLU and dropout between the layers.

    Parameters
    ----------
    in_channels : int
        Embedding dimension d.
    hidden : int
        Hidden units.
    n_classes : int
        Output logits.
    dropout : float, default=0.5
        Also what MC dropout samples at prediction time.
    """

    def __init__(self, in_channels, hidden, n_classes, dropout=0.5):
        super().__init__()
        self.conv1 = CachedSAGEConv(in_channels, hidden)
        self.conv2 = SAGEConv(hidden, n_classes)
        self.dropout = dropout

    def forward(self, x, adj_t):
        """Logits of shape (n, n_classes) from features (n, d) and CSR ``adj_t`` (n, n)."""
        x = self.conv1(x, adj_t).relu()
        x = F.dropout(x, p=self.dropout, training=self.training)
        return self.conv2(x, adj_t)


def build_model(in_channels, hidden, n_classes, *, dropout=0.5):
    """The :class:`SAGE` model; see there for parameters.

    Returns
    -------
    model : SAGE
    """
    return SAGE(in_channels, hidden, n_classes, dropout=dropout)


def split_labeled(labeled_rows, labels, *, val_fraction=0.2, random_state=None):
    """Stratified split of the labeled rows into training and validation rows.

    Each class keeps at least one training row; a class with one labeled row gives
    none to validation, so tiny labeled sets may have an empty validation split.

    Parameters
    ----------
    labeled_rows : ndarray of shape (n_labeled,)
    labels : ndarray of shape (n,)
    val_fraction : float, default=0.2
    random_state : int, RandomState or None

    Returns
    -------
    train_rows, val_rows : ndarray of int64
    """
    rng = check_random_state(random_state)
    train, val = [], []
    for c in np.unique(labels[labeled_rows]):
        rows = rng.permutation(labeled_rows[labels[labeled_rows] == c])
        n_val = min(int(round(val_fraction * len(rows))), len(rows) - 1)
        val.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def train(model, x, adj_t, y, train_rows, val_rows, *, epochs=200, patience=20, lr=0.01,
          weight_decay=5e-4, progress=True, log_every=10):
    """Full-batch transductive training with early stopping on validation loss.

    The weights of the best validation epoch are restored at the end. With an empty
    validation split the training loss is monitored instead.

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (n, d)
    adj_t : sparse CSR Tensor of shape (n, n)
    y : LongTensor of shape (n,)
        Only ``y[train_rows]`` and ``y[val_rows]`` are read.
    train_rows, val_rows : LongTensor
    epochs, patience : int
    lr, weight_decay : float
    progress : bool
        Print ``epoch, loss, val loss, val acc`` to stderr every ``log_every`` epochs.

    Returns
    -------
    history : dict
        ``epochs_run``, ``best_epoch``, ``best_val_loss``, ``stopped_early``, ``seconds``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    has_val = len(val_rows) > 0
    best_loss, best_epoch, best_state = float("inf"), 0, None
    start = time.perf_counter()
    epoch = 0
    for epoch in range(1, epochs + 1):
        model.train()
        optimizer.zero_grad()
        out = model(x, adj_t)
        loss = F.cross_entropy(out[train_rows], y[train_rows])
        loss.backward()
        optimizer.step()

        model.eval()
        with torch.no_grad():
            out = model(x, adj_t)
            rows = val_rows if has_val else train_rows
            monitor = float(F.cross_entropy(out[rows], y[rows]))
            val_acc = float((out[rows].argmax(1) == y[rows]).float().mean())
        if monitor < best_loss - 1e-4:
            best_loss, best_epoch = monitor, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if progress and (epoch % log_every == 0 or epoch == 1):
            print(f"gnn: epoch {epoch:4d}  loss {loss.item():.4f}  "
                  f"{'val' if has_val else 'train'}_loss {monitor:.4f}  "
                  f"{'val' if has_val else 'train'}_acc {val_acc:.3f}", file=sys.stderr)
        if epoch - best_epoch >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - start
    if progress:
        print(f"gnn: stopped at epoch {epoch}, best epoch {best_epoch} "
              f"({'val' if has_val else 'train'} loss {best_loss:.4f}), {seconds:.1f} s", file=sys.stderr)
    return {"epochs_run": epoch, "best_epoch": best_epoch, "best_val_loss": best_loss,
            "monitored": "val_loss" if has_val else "train_loss",
            "stopped_early": epoch < epochs, "seconds": seconds}


@torch.no_grad()
def predict_proba(model, x, adj_t, *, mc_passes=0):
    """Class probabilities for every node.

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (n, d)
    adj_t : sparse CSR Tensor of shape (n, n)
    mc_passes : int, default=0
        0 for one deterministic pass (dropout off); otherwise the number of
        stochastic passes with dropout on (MC dropout).

    Returns
    -------
    probs : ndarray of shape (n, c), or (mc_passes, n, c) when ``mc_passes > 0``
    """
    if mc_passes == 0:
        model.eval()
        return model(x, adj_t).softmax(-1).cpu().numpy()
    model.train()  # dropout on; the model has no batch norm whose statistics could move
    try:
        return np.stack([model(x, adj_t).softmax(-1).cpu().numpy() for _ in range(mc_passes)])
    finally:
        model.eval()


# ------------------------------------------------------------------------- scores


def entropy_uncertainty(probs):
    """Predictive entropy divided by log(c), so it lies in [0, 1] like the margin.

    Parameters
    ----------
    probs : ndarray of shape (n, c)

    Returns
    -------
    scores : ndarray of shape (n,) float64
    """
    probs = np.asarray(probs)
    return AL_functions.entropy_scores(probs).astype(np.float64) / np.log(probs.shape[1])


def disagreement_scores(gnn_probs, base_probs):
    """Jensen-Shannon divergence between GNN and base-model predictions, in [0, 1].

    Continuous rather than a 0/1 "argmax differs" flag, so it can rank a batch.

    Parameters
    ----------
    gnn_probs, base_probs : ndarray of shape (n, c)

    Returns
    -------
    scores : ndarray of shape (n,)
        JS divergence in bits (0 = identical, 1 = disjoint support).
    """
    p = np.clip(np.asarray(gnn_probs, dtype=np.float64), 1e-12, 1.0)
    q = np.clip(np.asarray(base_probs, dtype=np.float64), 1e-12, 1.0)
    m = 0.5 * (p + q)
    js = 0.5 * (p * np.log2(p / m)).sum(axis=1) + 0.5 * (q * np.log2(q / m)).sum(axis=1)
    return np.clip(js, 0.0, 1.0)


def mutual_information(mc_probs):
    """Epistemic uncertainty (BALD) from MC-dropout passes, divided by log(c).

    Parameters
    ----------
    mc_probs : ndarray of shape (passes, n, c)

    Returns
    -------
    scores : ndarray of shape (n,)
        H(mean p) - mean H(p), >= 0.

    References
    ----------
    Gal, Islam & Ghahramani, "Deep Bayesian Active Learning with Image Data", ICML 2017.
    """
    mean_entropy = np.mean([entropy_uncertainty(p) for p in mc_probs], axis=0)
    return np.maximum(entropy_uncertainty(np.mean(mc_probs, axis=0)) - mean_entropy, 0.0)


def hybrid_scores(uncertainty, distance, alpha=0.5):
    """``(1 - alpha) * uncertainty + alpha * distance`` with distance min-max scaled.

    Parameters
    ----------
    uncertainty : ndarray of shape (n,)
        GNN uncertainty in [0, 1].
    distance : ndarray of shape (n,)
        Distance of each pool node to its nearest labeled node.
    alpha : float in [0, 1]

    Returns
    -------
    scores : ndarray of shape (n,)
    """
    d = np.asarray(distance, dtype=np.float64)
    span = d.max() - d.min() if d.size else 0.0
    d = (d - d.min()) / span if span > 0 else np.zeros_like(d)
    return (1.0 - alpha) * np.asarray(uncertainty, dtype=np.float64) + alpha * d


def pool_scores(score, pool_probs, base_probs, *, mc_probs=None, features=None, pool_rows=None,
                labeled_rows=None, alpha=0.5, random_state=None):
    """One score per pool node; higher = more worth labeling.

    Parameters
    ----------
    score : {'hybrid', 'margin', 'entropy', 'disagreement', 'mc_dropout'}
    pool_probs : ndarray of shape (n_pool, c)
        GNN probabilities (dropout off).
    base_probs : ndarray of shape (n_pool, c)
        Base-model probabilities, for ``'disagreement'``.
    mc_probs : ndarray of shape (passes, n_pool, c), optional
        MC-dropout probabilities, for ``'mc_dropout'``.
    features : ndarray of shape (n, d), optional
        Standardised embeddings of all nodes, for ``'hybrid'``.
    pool_rows, labeled_rows : ndarray of int, optional
        Rows of ``features``, for ``'hybrid'``.
    alpha : float in [0, 1]
    random_state : int or None
        Seeds the nearest-labeled-node search (hnswlib for large inputs).

    Returns
    -------
    scores : ndarray of shape (n_pool,) float64
    """
    if score == "hybrid":
        normed = knn.l2_normalize(features)
        dist, _ = knn.knn_search(normed[pool_rows], normed[labeled_rows], 1, metric="cosine",
                                          random_state=random_state)
        return hybrid_scores(entropy_uncertainty(pool_probs), dist[:, 0], alpha)
    if score == "margin":
        return AL_functions.margin_scores(pool_probs).astype(np.float64)
    if score == "entropy":
        return entropy_uncertainty(pool_probs)
    if score == "disagreement":
        return disagreement_scores(pool_probs, base_probs)
    if score == "mc_dropout":
        return mutual_information(mc_probs)
    raise ValueError(f"score must be one of {list(SCORES)}, got {score!r}")


# ---------------------------------------------------------------------------- run


def _check_float(name, value, low, high, *, low_open=False, high_open=False):
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value > low if low_open else value >= low)
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high is None else "]"
        raise ValueError(f"{name} must be a number in {lo}{low}, {'inf' if high is None else high}{hi}, got {value!r}")


def _check_params(k, hidden, epochs, patience, dropout, lr, alpha, score, budget, mc_passes, seed, device):
    checks.check_int(k, "k", low=1)
    checks.check_int(hidden, "hidden", low=1)
    checks.check_int(epochs, "epochs", low=1)
    checks.check_int(patience, "patience", low=1)
    _check_float("dropout", dropout, 0.0, 1.0, high_open=True)
    _check_float("lr", lr, 0.0, None, low_open=True)
    _check_float("alpha", alpha, 0.0, 1.0)
    if score not in SCORES:
        raise ValueError(f"score must be one of {list(SCORES)}, got {score!r}")
    checks.check_int(budget, "budget", low=1)
    checks.check_int(mc_passes, "mc_passes", low=0)
    if score == "mc_dropout" and mc_passes < 2:
        raise ValueError(f"score='mc_dropout' needs mc_passes >= 2, got {mc_passes}")
    if mc_passes and dropout == 0:
        raise ValueError("mc_passes > 0 needs dropout > 0 (MC dropout samples the dropout masks)")
    checks.check_int(seed, "seed", low=0)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be None, 'cpu' or 'cuda[:i]', got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} requested but CUDA is not available; use 'cpu'")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be None, 'cpu' or 'cuda[:i]', got {device!r}")
    return device


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


def run_gnn(embeddings_dir="results/embeddings", out_dir="results/gnn", *, k=10, hidden=64, epochs=200,
            patience=20, dropout=0.5, lr=0.01, alpha=0.5, score="hybrid", budget=100, mc_passes=0,
            seed=0, device=None, plots=True, progress=True, val_fraction=0.2, weight_decay=5e-4,
            tsne_points=2000):
    """Train GraphSAGE on the exported embeddings and rank the pool.

    Parameters
    ----------
    embeddings_dir : str, default='results/embeddings'
        Export written by ``AL_cycle.py`` (see :func:`load_export`).
    out_dir : str, default='results/gnn'
        Where ``gnn_indices.npy``, ``gnn_scores.npy``, ``gnn_probs.npy``,
        ``summary.txt``, ``summary.json`` and the figures go. Nothing is written
        until the whole run has succeeded.
    k : int, default=10
        Neighbours per node in the cosine kNN graph.
    hidden : int, default=64
        Hidden units of the 2-layer GraphSAGE.
    epochs, patience : int, default=200, 20
        Epoch cap and early-stopping patience on validation loss.
    dropout, lr, weight_decay : float
        Regularisation and Adam settings.
    alpha : float in [0, 1], default=0.5
        Weight of the distance to the nearest labeled node in ``score='hybrid'``.
    score : {'hybrid', 'margin', 'entropy', 'disagreement', 'mc_dropout'}, default='hybrid'
        ``hybrid`` = (1 - alpha) * GNN entropy + alpha * scaled distance to the
        nearest labeled node; ``margin`` / ``entropy`` of the GNN prediction (both
        scaled to [0, 1]); ``disagreement`` = Jensen-Shannon divergence between the
        GNN and the base model; ``mc_dropout`` = mutual information over
        ``mc_passes`` dropout passes.
    budget : int, default=100
        Items to select; clipped to the pool size (recorded in the summary).
    mc_passes : int, default=0
        MC-dropout passes; > 0 adds the mean epistemic uncertainty to the summary.
    seed : int, default=0
        Seeds Python, NumPy, torch and PyG; also the split and tie-breaking.
    device : str or None
        None = CUDA when present, else CPU.
    plots : bool, default=True
        Write ``tsne.png`` and ``uncertainty_distributions.png``.
    progress : bool, default=True
        Report stages and training progress on stderr.
    val_fraction : float, default=0.2
        Share of each class's labeled nodes held out for early stopping.
    tsne_points : int, default=2000
        t-SNE runs on at most this many nodes (all selected ones included).

    Returns
    -------
    result : dict
        The summary written to ``summary.json`` plus ``indices`` (ndarray of shape
        (n_selected,) int64, absolute, best first), ``scores`` (ndarray of shape
        (n_pool,), aligned with the pool rows in export order) and ``pool_indices``
        (ndarray of shape (n_pool,), the absolute index of each pool row).
    """
    device = _check_params(k, hidden, epochs, patience, dropout, lr, alpha, score, budget, mc_passes,
                           seed, device)
    _check_float("val_fraction", val_fraction, 0.0, 1.0, high_open=True)
    _check_float("weight_decay", weight_decay, 0.0, None)
    checks.check_int(tsne_points, "tsne_points", low=10)
    data = load_export(embeddings_dir)
    n, dim = data["embeddings"].shape
    if k >= n:
        raise ValueError(f"k={k} must be smaller than the number of nodes ({n})")
    seeding.seed_everything(seed)
    torch_geometric.seed_everything(seed)
    labels, mask, base_probs = data["labels"], data["labeled_mask"], data["probs"]
    n_classes = data["metadata"]["n_classes"]
    labeled_rows, pool_rows = np.flatnonzero(mask), np.flatnonzero(~mask)
    # Pool labels (simulations) feed diagnostics only; training sees labeled rows alone.
    train_labels = np.where(mask, labels, -1)

    start = time.perf_counter()
    features = knn.standardize(data["embeddings"])
    edge_index = build_graph(features, k, random_state=seed)
    graph_seconds = time.perf_counter() - start
    _log(progress, f"graph: {n} nodes, {edge_index.shape[1] // 2} undirected edges, "
                   f"built in {graph_seconds:.2f} s")

    train_rows, val_rows = split_labeled(labeled_rows, labels, val_fraction=val_fraction, random_state=seed)
    x = torch.from_numpy(features).to(device)
    adj_t = to_adjacency(edge_index, n).to(device)
    y = torch.from_numpy(train_labels).to(device)
    model = build_model(dim, hidden, n_classes, dropout=dropout).to(device)
    history = train(model, x, adj_t, y, torch.from_numpy(train_rows).to(device),
                    torch.from_numpy(val_rows).to(device), epochs=epochs, patience=patience, lr=lr,
                    weight_decay=weight_decay, progress=progress)

    start = time.perf_counter()
    gnn_probs = predict_proba(model, x, adj_t).astype(np.float32)
    pool_probs = gnn_probs[pool_rows]
    mc_probs = predict_proba(model, x, adj_t, mc_passes=mc_passes)[:, pool_rows] if mc_passes else None
    scores = pool_scores(score, pool_probs, base_probs[pool_rows], mc_probs=mc_probs,
                         features=features, pool_rows=pool_rows, labeled_rows=labeled_rows, alpha=alpha,
                         random_state=seed)
    epistemic = None if mc_probs is None else mutual_information(mc_probs)
    # An oversized budget is clipped to the pool (and flagged in the summary), so the
    # default budget works on small demo pools.
    positions = AL_functions.select_top(scores, min(budget, len(pool_rows)), random_state=seed)
    selected_rows = pool_rows[positions]
    selected = data["indices"][selected_rows]
    score_seconds = time.perf_counter() - start

    gnn_pred, base_pred = gnn_probs.argmax(1), base_probs.argmax(1)
    summary = {
        "data": {"dataset": data["metadata"]["dataset"], "embeddings_dir": os.fspath(embeddings_dir),
                 "n_nodes": n, "dim": dim, "n_classes": n_classes, "n_labeled": len(labeled_rows),
                 "n_pool": len(pool_rows), "n_pool_known_labels": int((labels[pool_rows] >= 0).sum())},
        "params": {"k": k, "hidden": hidden, "epochs": epochs, "patience": patience, "dropout": dropout,
                   "lr": lr, "weight_decay": weight_decay, "alpha": alpha, "score": score,
                   "budget": budget, "mc_passes": mc_passes, "seed": seed, "device": str(device),
                   "val_fraction": val_fraction},
        "graph": {"n_edges": int(edge_index.shape[1] // 2), "mean_degree": edge_index.shape[1] / n,
                  "seconds": graph_seconds},
        # Homophily over every known label (labeled set plus any known pool labels).
        "homophily": {"edge": edge_homophily(edge_index, labels), "node": node_homophily(edge_index, labels),
                      "edge_labeled_only": edge_homophily(edge_index, train_labels)},
        "training": {"n_train": len(train_rows), "n_val": len(val_rows), **history},
        "accuracy": {"gnn_val": _accuracy(gnn_pred, labels, val_rows),
                     "base_val": _accuracy(base_pred, labels, val_rows),
                     "gnn_pool": _accuracy(gnn_pred, labels, pool_rows),
                     "base_pool": _accuracy(base_pred, labels, pool_rows),
                     "pool_disagreement_rate": float(np.mean(gnn_pred[pool_rows] != base_pred[pool_rows]))},
        "uncertainty": {"gnn_entropy_mean": float(entropy_uncertainty(pool_probs).mean()),
                        "base_entropy_mean": float(entropy_uncertainty(base_probs[pool_rows]).mean()),
                        "mc_epistemic_mean": None if epistemic is None else float(epistemic.mean())},
        "selection": {"score": score, "n_selected": len(selected), "budget_clipped": len(selected) < budget,
                      "seconds": score_seconds},
        "files": ["gnn_indices.npy", "gnn_scores.npy", "gnn_probs.npy", "summary.txt", "summary.json"],
    }

    summary = {name: _finite_or_none(section) if isinstance(section, dict) else section
               for name, section in summary.items()}

    # Figures are rendered before any write, so a plotting error leaves out_dir untouched.
    figures = {}
    if plots:
        from gnn import figures as gnn_figures  # matplotlib / t-SNE only when asked for

        figures["tsne.png"] = gnn_figures.tsne_figure(
            features, np.where(labels >= 0, labels, gnn_pred), labeled_rows, selected_rows,
            max_points=tsne_points, random_state=seed, known=labels >= 0)
        figures["uncertainty_distributions.png"] = gnn_figures.uncertainty_figure(
            pool_probs, base_probs[pool_rows])
        summary["files"] += list(figures)

    results_io.save_npy(os.path.join(out_dir, "gnn_indices.npy"), selected)
    results_io.save_npy(os.path.join(out_dir, "gnn_scores.npy"), scores.astype(np.float32))
    results_io.save_npy(os.path.join(out_dir, "gnn_probs.npy"), gnn_probs)
    for name, fig in figures.items():
        results_io.save_figure(os.path.join(out_dir, name), fig)
    results_io.save_json(os.path.join(out_dir, "summary.json"), summary)
    results_io.save_text(os.path.join(out_dir, "summary.txt"), results_io.summary_text(
        "GraphSAGE sidecar", {name: section for name, section in summary.items() if isinstance(section, dict)}))
    _log(progress, f"selected {len(selected)} of {len(pool_rows)} pool items by {score!r}; wrote {out_dir}")
    return {**summary, "indices": selected, "scores": scores, "pool_indices": data["indices"][pool_rows]}
