"""Speed benchmark: graph build and GraphSAGE training on synthetic clustered embeddings.

    python -m gnn.bench --nodes 10000 100000 --dim 576

Prints graph-build and training seconds separately (plus prediction), with the
epochs run and the accuracy reached, so that "to convergence" can be checked.
Nothing is written to disk.
"""
import argparse
import time

import numpy as np
import torch

import knn
import seeding
from gnn.sage import (
    build_graph,
    build_model,
    edge_homophily,
    predict_proba,
    split_labeled,
    to_adjacency,
    train,
)


def make_clustered(n, dim, n_classes, *, spread=0.2, labeled_fraction=0.05, random_state=0):
    """Gaussian clusters: unit noise around centres drawn with scale ``spread``.

    Returns
    -------
    embeddings : ndarray of shape (n, dim) float32
    labels : ndarray of shape (n,) int64
    labeled_mask : ndarray of shape (n,) bool
    """
    rng = np.random.default_rng(random_state)
    labels = rng.integers(0, n_classes, n)
    centres = rng.normal(scale=spread, size=(n_classes, dim)).astype(np.float32)
    embeddings = rng.standard_normal((n, dim), dtype=np.float32)
    embeddings += centres[labels]
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, max(2 * n_classes, int(labeled_fraction * n)), replace=False)] = True
    return embeddings, labels.astype(np.int64), mask


def bench_one(n, dim, *, n_classes=10, k=10, hidden=64, epochs=200, patience=20, spread=0.2,
              labeled_fraction=0.05, seed=0):
    """Time one graph build and one training run; returns a dict of seconds and accuracies."""
    embeddings, labels, mask = make_clustered(n, dim, n_classes, spread=spread,
                                              labeled_fraction=labeled_fraction, random_state=seed)
    seeding.seed_everything(seed)

    start = time.perf_counter()
    features = knn.standardize(embeddings)
    edge_index = build_graph(features, k, random_state=seed)
    adj_t = to_adjacency(edge_index, n)
    graph_s = time.perf_counter() - start

    labeled_rows = np.flatnonzero(mask)
    train_rows, val_rows = split_labeled(labeled_rows, labels, random_state=seed)
    x = torch.from_numpy(features)
    y = torch.from_numpy(np.where(mask, labels, -1))
    model = build_model(dim, hidden, n_classes)
    start = time.perf_counter()
    history = train(model, x, adj_t, y, torch.from_numpy(train_rows), torch.from_numpy(val_rows),
                    epochs=epochs, patience=patience, progress=False)
    train_s = time.perf_counter() - start

    start = time.perf_counter()
    pred = predict_proba(model, x, adj_t).argmax(1)
    predict_s = time.perf_counter() - start
    pool = ~mask
    return {"nodes": n, "dim": dim, "edges": edge_index.shape[1] // 2, "graph_s": graph_s,
            "train_s": train_s, "epochs": history["epochs_run"], "best_epoch": history["best_epoch"],
            "predict_s": predict_s, "pool_acc": float(np.mean(pred[pool] == labels[pool])),
            "homophily": edge_homophily(edge_index, labels),
            "knn": knn.knn_method_for(n, n, dim)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gnn.bench", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=576)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--spread", type=float, default=0.2, help="cluster-centre scale (higher = easier)")
    parser.add_argument("--labeled-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    header = (f"{'nodes':>8} {'dim':>4} {'knn':>5} {'edges':>9} {'graph_s':>8} {'train_s':>8} {'epochs':>6} "
              f"{'best':>5} {'predict_s':>9} {'pool_acc':>8} {'homoph':>6}")
    print(header)
    for n in args.nodes:
        r = bench_one(n, args.dim, n_classes=args.classes, k=args.k, hidden=args.hidden, epochs=args.epochs,
                      patience=args.patience, spread=args.spread, labeled_fraction=args.labeled_fraction,
                      seed=args.seed)
        print(f"{r['nodes']:>8} {r['dim']:>4} {r['knn']:>5} {r['edges']:>9} {r['graph_s']:>8.2f} "
              f"{r['train_s']:>8.2f} {r['epochs']:>6} {r['best_epoch']:>5} {r['predict_s']:>9.2f} "
              f"{r['pool_acc']:>8.3f} {r['homophily']:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
