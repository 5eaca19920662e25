"""``python -m gnn``: train GraphSAGE on the exported embeddings and rank the pool.

Thin: parse arguments, call :func:`gnn.run_gnn`, print where the results went and
how accurate each model is on rows it did not train on. ``--help`` answers before
torch is imported (``gnn`` loads it on first use). Bad input is one line on stderr
and exit code 2, never a traceback.
"""
import os
import sys

from labelnext import gnn
from labelnext.utils.console import ArgumentParser, fmt_metric, run_cli

# Python parameter -> the flag a user typed, for one-line errors.
FLAGS = {"k_neighbors": "--k-neighbors", "graph_dim": "--graph-dim", "random_state": "--seed",
         "mc_passes": "--mc-passes", "embeddings_dir": "--embeddings-dir", "out_dir": "--out-dir"}


def build_parser():
    parser = ArgumentParser(
        prog="python -m gnn",
        description="GraphSAGE sidecar: structure-aware uncertainty from a kNN graph of the embeddings "
                    "exported by `python AL_cycle.py`.",
    )
    parser.add_argument("--embeddings-dir", default="results/embeddings", help="export folder to read")
    parser.add_argument("--out-dir", default="results/gnn", help="folder for indices, scores and figures")
    parser.add_argument("--k-neighbors", "--k", dest="k_neighbors", type=int, default=10,
                        help="neighbours per node in the cosine kNN graph (--k is an alias)")
    parser.add_argument("--graph-dim", type=int, default=gnn.GNNOptions.graph_dim,
                        help="principal components the graph's neighbours are searched in (0 = full width)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units of the 2-layer GraphSAGE")
    parser.add_argument("--epochs", type=int, default=200, help="maximum training epochs")
    parser.add_argument("--patience", type=int, default=20, help="early-stopping patience (epochs)")
    parser.add_argument("--dropout", type=float, default=0.5, help="dropout between the two layers")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="hybrid score weight of the distance to the nearest labeled node")
    parser.add_argument("--score", default="hybrid",
                        help="hybrid, margin, entropy, disagreement or mc_dropout (needs --mc-passes >= 2)")
    parser.add_argument("--budget", type=int, default=100,
                        help="pool items to select (at most the pool size; larger is an error)")
    parser.add_argument("--mc-passes", type=int, default=0, help="MC-dropout passes (0 = off)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--device", default=None, help="cpu or cuda; None picks cuda when present")
    parser.add_argument("--no-plots", action="store_true", help="skip tsne.png and uncertainty_distributions.png")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv=None):
    """The command: errors (bad input, OS errors) are one line on stderr and exit code 2."""
    return run_cli(_run, argv, flags=FLAGS)


def _run(argv):
    args = build_parser().parse_args(argv)
    result = gnn.run_gnn(
            args.embeddings_dir, args.out_dir, k_neighbors=args.k_neighbors,
            graph_dim=args.graph_dim or None, hidden=args.hidden,
            epochs=args.epochs, patience=args.patience, dropout=args.dropout, lr=args.lr, alpha=args.alpha,
            score=args.score, budget=args.budget, mc_passes=args.mc_passes, random_state=args.seed,
            device=args.device, plots=not args.no_plots, progress=not args.quiet,
        )
    print(f"selected {len(result['indices'])} items by {args.score!r} -> "
          f"{os.path.join(args.out_dir, 'gnn_indices.npy')}")
    print(accuracy_line(result))
    print(f"edge homophily {fmt_metric(result['homophily']['edge'])} (over known labels)")
    return 0


def accuracy_line(result):
    """One line comparing GNN and base model, each on rows it did not train on, naming the rows.

    The base model trained on the labeled rows, so only pool rows with known labels
    (simulations) compare the two; without them, each figure says which rows it is on.
    """
    acc, data = result["accuracy"], result["data"]
    n_known = data["n_pool_known_labels"]
    if n_known:
        return (f"accuracy on the {n_known} pool rows with known labels (neither model trained on them): "
                f"GNN {fmt_metric(acc['gnn_pool'])}, base model {fmt_metric(acc['base_pool'])}")
    return (f"no pool labels known, so no held-out comparison: GNN {fmt_metric(acc['gnn_val'])} on its "
            f"{result['training']['n_val']} held-out labeled rows (used for early stopping); base model "
            f"{fmt_metric(acc['base_labeled_trained_on'])} on the {data['n_labeled']} labeled rows it trained on")


if __name__ == "__main__":
    sys.exit(main())

