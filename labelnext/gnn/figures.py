"""Figures for the GraphSAGE sidecar (matplotlib, no pyplot state; saved by results_io)."""
import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.utils import check_random_state

from labelnext import heuristics as AL_functions


def _sample_rows(n, priority, max_points, rng):
    """Up to ``max_points`` rows: ``priority`` rows first (in order), then random others."""
    priority = np.unique(np.asarray(priority, dtype=np.int64))[:max_points]
    rest = np.setdiff1d(np.arange(n), priority)
    extra = rng.choice(rest, min(len(rest), max_points - len(priority)), replace=False)
    return np.sort(np.concatenate([priority, extra]).astype(np.int64))


def tsne_figure(features, classes, labeled_rows, selected_rows, *, max_points=2000, random_state=None,
                known=None):
    """t-SNE of the embeddings coloured by class, labeled and selected items marked.

    t-SNE is quadratic-ish in the number of points, so it runs on a sample: every
    selected row, then labeled rows, then random pool rows, up to ``max_points``.

    Parameters
    ----------
    features : ndarray of shape (n, d)
        Standardised embeddings.
    classes : ndarray of shape (n,)
        Colour per node (known label, else the GNN prediction).
    labeled_rows, selected_rows : ndarray of int
        Rows (not dataset indices) of the labeled and the selected nodes.
    max_points : int, default=2000
    random_state : int or None
    known : ndarray of shape (n,) bool, optional
        Nodes whose colour is a known label; the others are drawn fainter.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    rng = check_random_state(random_state)
    n = len(features)
    known = np.ones(n, dtype=bool) if known is None else np.asarray(known)
    rows = _sample_rows(n, np.concatenate([selected_rows, rng.permutation(labeled_rows)]), max_points, rng)
    x = features[rows]
    m = len(rows)
    x = PCA(n_components=min(50, m, x.shape[1]), random_state=rng.randint(2**31 - 1)).fit_transform(x)
    xy = TSNE(n_components=2, perplexity=float(max(1.0, min(30.0, (m - 1) / 3))), init="pca",
              learning_rate="auto", random_state=rng.randint(2**31 - 1)).fit_transform(x)

    fig = Figure(figsize=(8, 7))
    ax = fig.subplots()
    cmap = "tab10" if classes.max() < 10 else "tab20"
    colour = classes[rows]
    vmax = max(int(classes.max()), 1)
    for is_known, alpha in ((False, 0.25), (True, 0.8)):
        sel = known[rows] == is_known
        ax.scatter(xy[sel, 0], xy[sel, 1], c=colour[sel], cmap=cmap, vmin=0, vmax=vmax, s=8, alpha=alpha,
                   linewidths=0)
    lab = np.isin(rows, labeled_rows)
    ax.scatter(xy[lab, 0], xy[lab, 1], facecolors="none", edgecolors="black", s=30, linewidths=0.8,
               label=f"labeled ({int(lab.sum())} shown)")
    chosen = np.isin(rows, selected_rows)
    ax.scatter(xy[chosen, 0], xy[chosen, 1], marker="x", c="red", s=40, linewidths=1.2,
               label=f"selected by GNN ({int(chosen.sum())})")
    ax.set_title(f"t-SNE of {m} of {n} embeddings\ncolour = class (known label; faint = GNN prediction)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8)
    return fig


def uncertainty_figure(gnn_probs, base_probs):
    """Histograms of GNN vs base-model uncertainty (normalised entropy and margin) on the pool.

    Parameters
    ----------
    gnn_probs, base_probs : ndarray of shape (n_pool, c)

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    c = gnn_probs.shape[1]
    measures = {
        "entropy / log(c)": (AL_functions.entropy_scores(gnn_probs) / np.log(c),
                             AL_functions.entropy_scores(base_probs) / np.log(c)),
        "margin uncertainty (1 - top1 + top2)": (AL_functions.margin_scores(gnn_probs),
                                                 AL_functions.margin_scores(base_probs)),
    }
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    bins = np.linspace(0, 1, 31)
    for ax, (name, (gnn, base)) in zip(axes, measures.items()):
        ax.hist(base, bins=bins, alpha=0.55, label=f"base model (mean {base.mean():.3f})")
        ax.hist(gnn, bins=bins, alpha=0.55, label=f"GraphSAGE (mean {gnn.mean():.3f})")
        ax.set_xlabel(name)
        ax.set_ylabel("pool items")
        ax.legend(fontsize=8)
    fig.suptitle(f"Uncertainty on {len(gnn_probs)} pool items: GNN vs base model")
    return fig
