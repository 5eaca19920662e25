"""Speed of the GraphSAGE sidecar: graph build and training on a synthetic clustered pool.

    python -m benchmarks.gnn_speed --nodes 10000 100000 --dim 576

Prints graph-build and training seconds separately (plus prediction), with the
epochs run and the pool accuracy reached, so that "to convergence" can be checked, and
the graph's ``recall``: on 1,000 seeded nodes, the share of each node's exact full-width
cosine neighbours that are among its graph neighbours (``--graph-dim 0`` searches the
full width; the default searches the leading principal components, see
``gnn.graph.graph_neighbours``).
The pool is :func:`synthetic.make_pool` with one Gaussian cluster per class.
Nothing is written to disk.
"""
import argparse
import time


import numpy as np
import torch

from labelnext import knn
from labelnext.knn.backends import drop_self
from labelnext.utils import seeding
from labelnext.gnn.graph import build_graph, edge_homophily, to_adjacency
from labelnext.gnn.options import GRAPH_DIM
from labelnext.gnn.model import build_model, predict_proba, split_labeled, train
from benchmarks.synthetic import make_pool


RECALL_NODES = 1000


def graph_recall(features, adj_t, k_neighbors, *, n_nodes=RECALL_NODES, random_state=0):
    """Share of the exact full-width cosine ``k_neighbors`` of ``n_nodes`` seeded nodes
    that are among their neighbours in the graph (CSR ``adj_t``, both directions)."""
    n = features.shape[0]
    rows = np.sort(np.random.default_rng(random_state).choice(n, min(n, n_nodes), replace=False))
    normed = knn.l2_normalize(features)
    _, exact = knn.knn_search(normed[rows], normed, k_neighbors + 1, metric="cosine", method="exact")
    exact = drop_self(exact, exact.astype(np.float32), rows, k_neighbors)[0]
    crow, col = adj_t.crow_indices().numpy(), adj_t.col_indices().numpy()
    width = int(np.diff(crow).max())
    found = np.full((rows.size, width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        found[i, :crow[r + 1] - crow[r]] = col[crow[r]:crow[r + 1]]
    return knn.neighbour_recall(found, exact)


def bench_one(n, dim, *, n_classes=10, k_neighbors=10, graph_dim=GRAPH_DIM, hidden=64, epochs=200, patience=20,
              spread=0.2, labeled_fraction=0.05, random_state=0):
    """Time one graph build, one training run and one prediction.

    Parameters
    ----------
    n, dim, n_classes : int
        Nodes, embedding width and classes (one cluster per class).
    k_neighbors, hidden, epochs, patience : int
        As in :class:`gnn.GNNOptions`.
    graph_dim : int or None
        As in :class:`gnn.GNNOptions` (None: full width).
    spread : float
        Scale of the cluster centres against the unit noise (higher = easier).
    labeled_fraction : float
        Share of labeled nodes (at least two per class).
    random_state : int

    Returns
    -------
    row : dict
        ``nodes``, ``dim``, ``edges``, ``graph_s``, ``train_s``, ``epochs``,
        ``best_epoch``, ``predict_s``, ``pool_acc``, ``homophily``, ``knn`` (the
        nearest-neighbour backend the cost model picked), ``recall`` (:func:`graph_recall`).
    """
    n_labeled = max(2 * n_classes, int(labeled_fraction * n))
    embeddings, _, labels, mask = make_pool(n, dim, n_classes, n_labeled, n_centers=n_classes, spread=spread,
                                            random_state=random_state)
    seeding.seed_everything(random_state)

    start = time.perf_counter()
    features = knn.standardize(embeddings)
    edge_index = build_graph(features, k_neighbors, graph_dim=graph_dim, random_state=random_state)
    adj_t = to_adjacency(edge_index, n)
    graph_s = time.perf_counter() - start

    train_rows, val_rows = split_labeled(np.flatnonzero(mask), labels, random_state=random_state)
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
            "knn": knn.knn_method_for(n, n, dim if graph_dim is None else min(dim, graph_dim)),
            "recall": graph_recall(features, adj_t, k_neighbors, random_state=random_state)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gnn_speed", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=576)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--k-neighbors", "--k", dest="k_neighbors", type=int, default=10,
                        help="neighbours per node in the kNN graph (--k is an alias)")
    parser.add_argument("--graph-dim", type=int, default=GRAPH_DIM,
                        help="principal components the graph is searched in (0 = full width)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--spread", type=float, default=0.2, help="cluster-centre scale (higher = easier)")
    parser.add_argument("--labeled-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'nodes':>8} {'dim':>4} {'knn':>5} {'edges':>9} {'graph_s':>8} {'train_s':>8} {'epochs':>6} "
          f"{'best':>5} {'predict_s':>9} {'pool_acc':>8} {'homoph':>6} {'recall':>6}")
    for n in args.nodes:
        r = bench_one(n, args.dim, n_classes=args.classes, k_neighbors=args.k_neighbors,
                      graph_dim=args.graph_dim or None, hidden=args.hidden,
                      epochs=args.epochs, patience=args.patience, spread=args.spread,
                      labeled_fraction=args.labeled_fraction, random_state=args.seed)
        print(f"{r['nodes']:>8} {r['dim']:>4} {r['knn']:>5} {r['edges']:>9} {r['graph_s']:>8.2f} "
              f"{r['train_s']:>8.2f} {r['epochs']:>6} {r['best_epoch']:>5} {r['predict_s']:>9.2f} "
              f"{r['pool_acc']:>8.3f} {r['homophily']:>6.3f} {r['recall']:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
