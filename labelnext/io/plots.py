"""Figures shared by the analyses. Each function returns a ``matplotlib.figure.Figure``;
``results_io.save_figure`` writes it atomically.

Figures are built outside pyplot's global state: no backend to select on import, no
figure to close, safe in a process that draws many of them.
"""
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state

# Scatter plots beyond this many points are unreadable and slow: subsample.
MAX_SCATTER_POINTS = 5000


def score_histogram(scores, threshold=None, *, kept=None, title, xlabel):
    """Histogram of scores: kept and not-kept items stacked in two colours.

    The threshold is drawn as a line only when it is what decided: when ``kept`` is
    exactly ``scores >= threshold``. A rule on other numbers (``combined`` uncertainty
    keeps items above a percentile of entropy OR of margin) has no one line on this
    axis, and a line would put a different number of items on its kept side.

    Parameters
    ----------
    scores : ndarray of shape (n,)
    threshold : float or None
    kept : ndarray of shape (n,), bool, optional
    """
    scores = np.asarray(scores, dtype=np.float64)
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    bins = np.histogram_bin_edges(scores, bins=50)
    if kept is None:
        ax.hist(scores, bins=bins, color="#4c72b0", alpha=0.85)
    else:
        kept = np.asarray(kept, dtype=bool)
        ax.hist([scores[~kept], scores[kept]], bins=bins, stacked=True, color=["#9aa9c4", "#c44e52"],
                label=[f"not kept ({int((~kept).sum())})", f"kept ({int(kept.sum())})"])
        if threshold is not None and not np.array_equal(kept, scores >= threshold):
            threshold = None
    if threshold is not None:
        ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3g}")
    if kept is not None or threshold is not None:
        ax.legend(fontsize=8)
    ax.set(title=title, xlabel=xlabel, ylabel="items")
    return fig


def image_grid(images, captions, *, title, ncols=8, marked=None):
    """A grid of images (uint8, (n, h, w, 3)) with one short caption each; ``marked`` items
    (n bools, e.g. fill items of the intersection) get a red frame."""
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig = Figure(figsize=(ncols * 1.3, nrows * 1.7 + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, img, cap) in enumerate(zip(axes.ravel(), images, captions)):
        ax.imshow(np.asarray(img, dtype=np.uint8), interpolation="nearest")
        ax.set_title(cap, fontsize=6)
        if marked is not None and marked[i]:
            h, w = np.shape(img)[:2]
            ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, edgecolor="red", linewidth=2))
    fig.suptitle(title if n else f"{title} (nothing selected)", fontsize=9)
    fig.tight_layout()
    return fig


def cluster_projection(embeddings, clusters, selected, representatives, *, title, random_state=0):
    """2-D PCA projection coloured by cluster; selected items and cluster representatives marked.

    Parameters
    ----------
    embeddings : ndarray of shape (n_samples, n_features), standardised
    clusters : ndarray of shape (n_samples,)
    selected : ndarray of shape (n_samples,), bool
    representatives : ndarray of shape (n_clusters,), rows (-1 = none)
    """
    n = embeddings.shape[0]
    rng = check_random_state(random_state)
    reps = representatives[representatives >= 0]
    rows = np.arange(n) if n <= MAX_SCATTER_POINTS else np.union1d(np.sort(rng.choice(n, MAX_SCATTER_POINTS, replace=False)), reps)
    xy = PCA(n_components=2, random_state=0).fit_transform(np.asarray(embeddings[rows], dtype=np.float32))
    pos = {r: i for i, r in enumerate(rows)}
    fig = Figure(figsize=(6.5, 5))
    ax = fig.subplots()
    ax.scatter(xy[:, 0], xy[:, 1], c=clusters[rows], cmap="tab20", s=6, alpha=0.6)
    sel = selected[rows]
    ax.scatter(xy[sel, 0], xy[sel, 1], facecolors="none", edgecolors="k", s=18, linewidths=0.5, label="selected (far from centroid)")
    rep_xy = xy[[pos[r] for r in reps]]
    ax.scatter(rep_xy[:, 0], rep_xy[:, 1], marker="*", c="red", s=90, label="cluster representative")
    ax.legend(loc="best", fontsize=8)
    ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
    return fig


def overlap_bars(counts, pairwise, n_intersection, *, title):
    """Bar chart: items kept by each analysis, each pair, and all of them."""
    labels = list(counts) + list(pairwise) + ["all"]
    values = list(counts.values()) + list(pairwise.values()) + [n_intersection]
    colors = ["#4c72b0"] * len(counts) + ["#8172b2"] * len(pairwise) + ["#c44e52"]
    fig = Figure(figsize=(max(5, len(labels) * 1.1), 3.6))
    ax = fig.subplots()
    bars = ax.bar(labels, values, color=colors)
    ax.bar_label(bars, fontsize=8)
    ax.set(title=title, ylabel="items")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    return fig


def learning_curves(curves, *, title, ylabel="test accuracy"):
    """Mean curve with a band (min-max across seeds) per strategy.

    Parameters
    ----------
    curves : dict of str -> (n_labeled, values) with values of shape (n_seeds, n_rounds)
    """
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, (x, values) in curves.items():
        values = np.asarray(values, dtype=np.float64)
        mean = values.mean(axis=0)
        (line,) = ax.plot(x, mean, marker="o", ms=3, label=name)
        if values.shape[0] > 1:
            ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15)
    ax.set(title=title, xlabel="labeled items", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def learning_curve_interval(n_labeled, accuracy, intervals, n_eval, *, title):
    """One project's accuracy per round with its 95% interval as error bars and the number of
    items each accuracy was measured on (a small evaluation set shows as a wide bar).

    Parameters
    ----------
    n_labeled : list of int
    accuracy : list of float
    intervals : list of [low, high] or None
    n_eval : list of int or None
    """
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    x, y = np.asarray(n_labeled, float), np.asarray(accuracy, float)
    low = np.array([y[i] - (c[0] if c else y[i]) for i, c in enumerate(intervals)])
    high = np.array([(c[1] if c else y[i]) - y[i] for i, c in enumerate(intervals)])
    ax.errorbar(x, y, yerr=[low, high], marker="o", ms=4, capsize=3)
    for xi, yi, n in zip(x, y, n_eval):
        if n:
            ax.annotate(f"n={n}", (xi, yi), textcoords="offset points", xytext=(4, -12), fontsize=7)
    ax.set(title=title, xlabel="labels trained on", ylabel="accuracy (95% interval)", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    return fig
