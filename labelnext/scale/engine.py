"""The three analyses and their intersection on a Dask cluster (``dask.distributed``).

The pool stays on disk (a ``.npy`` or a folder of shards, :mod:`shards`) where every
worker can read it; the work is cut into row ranges, one task per range per stage,
and a task reads its range block by block. Stages:

1. statistics: each range returns float64 sums of the standardisation's blocks (ranges
   start at multiples of its block size), added on the client in order: the same mean
   and std as :func:`knn.standardization_stats`, bit for bit;
2. KMeans and the novelty plan. ``kmeans='client'`` (default): ``AL_functions.fit_kmeans``
   on the client, on a lazy view of the pool whose rows are fetched from the workers (its
   100k-row sample reaches the client): the very centres of :func:`AL_functions.analyze`.
   ``kmeans='workers'``: Lloyd's algorithm on a 100k-row sample that the workers read and
   keep (:mod:`kmeans_sharded`: each step broadcasts the centres, the workers return
   per-centre sums and counts, the client adds them; seeded by k-means++ on 12,288
   gathered rows): as low an objective, but another local optimum, so another diversity
   mask (selection Jaccard 0.12 against ``analyze`` measured at 1M x 576, 0.71 at 100k x 32). The novelty search is planned by
   :class:`knn.BlockSearcher` on the labeled rows (IVF cells and calibration sample
   included) and broadcast to every worker;
3. scoring, per range: uncertainty scores, distance to the nearest centre, mean distance
   to the ``k`` nearest labeled items;
4. selection. ``ranks='exact'``: the per-item scores (4 numbers per item) are gathered
   and the masks, ranks and intersection are computed by :mod:`AL_functions` itself: with
   ``kmeans='client'`` the selection is identical to :func:`AL_functions.analyze`; with
   ``kmeans='workers'`` only the centres differ (another KMeans fit of the same objective),
   so the diversity mask and the selection are approximate. ``ranks='sketch'``: scores
   stay on the workers; global histograms give each score's percentile threshold and
   rank, each range returns its own best ``budget`` items and the client merges them
   (a global top-k merge): approximate, and nothing per item reaches the client.
"""
import time

import numpy as np
from sklearn.utils import check_random_state

from labelnext import heuristics as alf
from labelnext import knn
from labelnext.scale import shards
from labelnext.utils.checks import check_choice, check_int, check_mask, chunks
from labelnext.utils.extras import require
from labelnext.scale.kmeans import kmeans_on_workers, sample_on_workers, task_rows

RANKS = ("exact", "sketch")
# Where the KMeans runs: Lloyd steps reduced across the workers, or fit_kmeans on the client.
KMEANS_PLACES = ("client", "workers")
# Bins of the global histograms ('sketch'): ranks and thresholds are interpolated within a bin.
SKETCH_BINS = 1 << 16
# Default rows per task: this many standardisation blocks (111k rows at 576 features).
BLOCKS_PER_TASK = 64


# --------------------------------------------------------------------------- worker tasks
def _pool_view(path, mean, std, start, labeled):
    """Standardised pool rows of the range starting at ``start`` whose labeled mask is
    ``labeled`` (lazy), and their global row numbers."""
    rows = start + np.flatnonzero(~labeled)
    return knn.StandardizedView(shards.open_rows(path), mean, std, rows=rows), rows


def task_sums(path, start, stop, block_rows):
    """Float64 sums and sums of squares of each standardisation block of [start, stop)."""
    x = shards.open_rows(path)
    sums, sqs = [], []
    for s, e in chunks(stop - start, block_rows):
        total, total_sq = knn.block_sums(x[start + s:start + e])
        sums.append(total)
        sqs.append(total_sq)
    sums, sqs = np.stack(sums), np.stack(sqs)
    if not (np.isfinite(sums).all() and np.isfinite(sqs).all()):
        raise ValueError(f"embeddings contain NaN or infinite values in rows {start}-{stop - 1}")
    return sums, sqs


def task_score(emb_path, probs_path, mean, std, start, stop, labeled, centers, searcher, method):
    """Per pool item of [start, stop): uncertainty scores, distance to the nearest centre, novelty."""
    view, rows = _pool_view(emb_path, mean, std, start, labeled)
    probs = alf.check_probs(shards.open_rows(probs_path)[rows], name=f"probs rows {start}-{stop - 1}")
    out = {"n": rows.size}
    if method == "combined":
        out["entropy"], out["margin"] = alf.entropy_scores(probs), alf.margin_scores(probs)
    else:
        out["uncertainty"] = alf.uncertainty_scores(probs, method)
    _, out["diversity"] = knn.assign_to_centers(view, centers)
    dist, _ = searcher(view)
    out["novelty"] = dist.mean(axis=1)
    return out


def task_size(scores):
    """Pool items of one range."""
    return scores["n"]


def task_range(scores, names):
    """(min, max) of each named score of one range."""
    return {m: (float(scores[m].min()), float(scores[m].max())) if scores[m].size else (np.inf, -np.inf) for m in names}


def task_histogram(scores, edges):
    """Counts of each score in its global bins."""
    return {m: np.histogram(scores[m], bins=e)[0] for m, e in edges.items()}


def task_uncertainty_sketch(scores, sketch):
    """'combined' uncertainty from sketched ranks of entropy and margin (kept on the worker)."""
    if "uncertainty" not in scores:
        scores = dict(scores, uncertainty=(_cdf(sketch["entropy"], scores["entropy"]) +
                                           _cdf(sketch["margin"], scores["margin"])) / 2.0)
    return scores


def task_top(scores, sketch, thresholds, offset, budget, seed):
    """This range's best ``budget`` items: (pool positions, in-all-masks flag, combined score, tiebreak)."""
    n = scores["n"]
    both = np.ones(n, dtype=bool)
    for name, t in thresholds.items():
        if name == "uncertainty" and "entropy" in scores:
            both &= (scores["entropy"] >= t["entropy"]) | (scores["margin"] >= t["margin"])
        else:
            both &= scores[name] >= t[name]
    combined = np.mean([_cdf(sketch[m], scores[m]) for m in ("uncertainty", "diversity", "novelty")], axis=0)
    tiebreak = np.random.default_rng(seed).random(n)
    order = np.lexsort((tiebreak, -combined, ~both))[:budget]
    return offset + order, both[order], combined[order], tiebreak[order], int(both.sum())


# --------------------------------------------------------------------------- sketches
def _sketch(edges, counts):
    """Histogram -> (edges, cumulative counts before each bin, counts, n)."""
    counts = np.asarray(counts, dtype=np.float64)
    return edges, np.concatenate([[0.0], np.cumsum(counts)]), counts, counts.sum()


def _cdf(sketch, values):
    """Approximate rank_normalize: (items below + half the ties) / (n - 1), interpolated in a bin."""
    edges, cum, counts, n = sketch
    b = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, counts.size - 1)
    width = np.maximum(edges[b + 1] - edges[b], 1e-300)
    frac = np.clip((values - edges[b]) / width, 0.0, 1.0)
    return (cum[b] + frac * counts[b]) / max(n - 1.0, 1.0)


def _quantile(sketch, percentile):
    """Approximate np.percentile from a histogram (linear within the bin)."""
    edges, cum, counts, n = sketch
    target = percentile / 100.0 * (n - 1)
    b = int(np.clip(np.searchsorted(cum[1:], target, side="right"), 0, counts.size - 1))
    frac = 0.0 if counts[b] == 0 else np.clip((target - cum[b]) / counts[b], 0.0, 1.0)
    return float(edges[b] + frac * (edges[b + 1] - edges[b]))


# --------------------------------------------------------------------------- client side
class _ClusterRows:
    """Standardised pool rows fetched from the workers on demand: what fit_kmeans and the
    IVF calibration read (a sample), without the pool ever reaching the client."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, client, path, mean, std, rows, n_features, ranges):
        self.client, self.path, self.mean, self.std, self.rows = client, path, mean, std, rows
        self.ranges = ranges
        self.shape = (rows.size, n_features)

    def __len__(self):
        return self.shape[0]

    def check_finite(self, name="embeddings"):
        """Checked by the statistics stage (every sum finite)."""

    def __getitem__(self, key):
        idx = np.arange(self.shape[0])[key] if isinstance(key, slice) else np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        glob = self.rows[idx]
        order = np.argsort(glob, kind="stable")
        starts = np.array([s for s, _ in self.ranges])
        part = np.searchsorted(starts, glob[order], side="right") - 1
        futures, pieces = [], []
        for p in np.unique(part):
            sel = order[part == p]
            futures.append(self.client.submit(task_rows, self.path, self.mean, self.std, glob[sel], pure=False))
            pieces.append(sel)
        out = np.empty((idx.size, self.shape[1]), dtype=np.float32)
        for sel, block in zip(pieces, self.client.gather(futures)):
            out[sel] = block
        return out

    def __array__(self, dtype=None, copy=None):
        out = self[np.arange(self.shape[0])]
        return out if dtype is None else out.astype(dtype, copy=False)


def analyze_sharded(client, embeddings, probs, labeled_mask, params=None, budget=None, *, random_state=None,
                    ranks="exact", kmeans="client", rows_per_task=None, n_rows=None):
    """:func:`AL_functions.analyze` on a Dask cluster, the pool read from disk by the workers.

    Parameters
    ----------
    client : distributed.Client
    embeddings, probs : str or Path
        A ``.npy``, a ``.parquet`` or a folder of shards (:func:`shards.open_rows`) that
        every worker can read; ``embeddings`` of shape (n_samples, n_features), ``probs``
        of shape (n_samples, n_classes).
    labeled_mask : ndarray of shape (n_samples,), bool
    params, budget, random_state : as in :func:`AL_functions.analyze`
    ranks : {'exact', 'sketch'}
        ``exact``: the same selection as ``analyze`` (per-item scores gathered on the
        client); ``sketch``: histogram ranks and a global top-k merge (needs a budget).
    rows_per_task : int or None
        Rows per task, rounded down to a multiple of the standardisation block
        (default ``BLOCKS_PER_TASK`` blocks).
    n_rows : int or None
        Only the first ``n_rows`` rows of ``embeddings`` and ``probs`` are the items (a project's
        shards hold its test split's rows after the pool's); None: every row.

    Returns
    -------
    dict with ``uncertainty``, ``diversity``, ``novelty`` (``mask`` and ``scores`` over the
    pool, with ``ranks='exact'``; ``params``), ``intersection`` (``rows``: pool rows best
    first, ``info``), and ``engine``: ``seconds`` per stage, ``tasks``, ``workers``,
    ``knn`` (the backend and IVF plan), ``ranks``, ``kmeans`` (where it ran, and for
    ``workers`` its steps, sample rows and inertia).
    """
    # dask.distributed is the 'scale' extra; a client can only come from it, but say so plainly.
    wait = require("distributed", "scale", "the Dask engine").wait
    check_choice(ranks, "ranks", RANKS)
    check_choice(kmeans, "kmeans", KMEANS_PLACES)
    x_meta = shards.open_rows(embeddings)
    n, d = x_meta.shape
    if n_rows is not None:
        n = check_int(n_rows, "n_rows", low=1, high=n)
    p_meta = shards.open_rows(probs)
    if p_meta.shape[0] < n or (n_rows is None and p_meta.shape[0] != n):
        raise ValueError(f"probs has {p_meta.shape[0]} rows but embeddings has {n}")
    labeled_mask = check_mask(labeled_mask, n)
    if not labeled_mask.any():
        raise ValueError("labeled_mask selects no items: the labeled set is empty")
    params = alf.analysis_params(params)
    n_pool = int((~labeled_mask).sum())
    if budget is not None:
        check_int(budget, "budget", low=1, high=n_pool)
    if ranks == "sketch" and budget is None:
        raise ValueError("ranks='sketch' needs a budget (the global top-k merge returns budget items)")
    block = knn.stats_block_rows(d)
    per_task = BLOCKS_PER_TASK * block if rows_per_task is None else check_int(rows_per_task, "rows_per_task")
    per_task = max(block, per_task // block * block)
    ranges = list(chunks(n, per_task))
    seconds = {}

    t = time.perf_counter()
    parts = client.gather([client.submit(task_sums, embeddings, s, e, block, pure=False) for s, e in ranges])
    total, total_sq = np.zeros(d), np.zeros(d)
    for sums, sqs in parts:  # in row order, block by block: the single-machine additions
        for i in range(sums.shape[0]):
            total += sums[i]
            total_sq += sqs[i]
    mean, std = knn.stats_from_sums(total, total_sq, n)
    seconds["statistics"] = time.perf_counter() - t

    t = time.perf_counter()
    seed = random_state
    pool_rows = np.flatnonzero(~labeled_mask)
    pool = _ClusterRows(client, embeddings, mean, std, pool_rows, d, ranges)
    div, nov, unc = params["diversity"], params["novelty"], params["uncertainty"]
    check_int(div["n_clusters"], "n_clusters", low=1, high=n_pool)
    if kmeans == "client":
        centers, algorithm = alf.fit_kmeans(pool, div["n_clusters"], algorithm=div["algorithm"], random_state=seed)
        kmeans_info = {}
    else:
        rng = check_random_state(seed)  # one stream for the sample and the seeding
        parts = sample_on_workers(client, embeddings, mean, std, pool_rows, random_state=rng)
        centers, kmeans_info = kmeans_on_workers(client, parts, div["n_clusters"], random_state=rng)
        client.cancel(parts)
        algorithm = "lloyd-on-workers"
    seconds["kmeans"] = time.perf_counter() - t
    reference = _ClusterRows(client, embeddings, mean, std, np.flatnonzero(labeled_mask), d, ranges)
    check_int(nov["k_neighbors"], "k_neighbors", low=1, high=reference.shape[0])
    searcher = knn.BlockSearcher(pool, np.asarray(reference), nov["k_neighbors"], method=nov["method"], random_state=seed)
    seconds["plan"] = time.perf_counter() - t - seconds["kmeans"]

    t = time.perf_counter()
    [centers_f, searcher_f] = client.scatter([centers, searcher], broadcast=True)
    scored = [client.submit(task_score, embeddings, probs, mean, std, s, e, labeled_mask[s:e], centers_f, searcher_f,
                            unc["method"], pure=False) for s, e in ranges]
    wait(scored)
    seconds["scoring"] = time.perf_counter() - t

    t = time.perf_counter()
    params_run = {"uncertainty": dict(unc), "diversity": dict(div, algorithm=algorithm), "novelty": dict(nov)}
    if ranks == "exact":
        results = _select_exact(client.gather(scored), params_run, budget, seed)
    else:
        results = _select_sketch(client, scored, params_run, budget, seed)
    seconds["selection"] = time.perf_counter() - t
    results["engine"] = {"seconds": seconds, "tasks": len(ranges), "rows_per_task": per_task, "ranks": ranks,
                         "workers": len(client.scheduler_info().get("workers", {})),
                         "knn": {"method": searcher.method, **searcher.info},
                         "kmeans": {"where": kmeans, **kmeans_info}}
    return results


def _select_exact(parts, params, budget, seed):
    """Masks, ranks and intersection by AL_functions on the gathered scores: analyze()'s selection."""
    cat = {m: np.concatenate([p[m] for p in parts]) for m in parts[0] if m != "n"}
    unc = params["uncertainty"]
    t = unc["threshold_percentile"]
    if unc["method"] == "combined":  # what AL_functions.uncertainty_selection does from probs
        u_mask, u_scores = alf.combined_uncertainty(cat["entropy"], cat["margin"], t)
    else:
        u_mask, u_scores = alf.percentile_mask(cat["uncertainty"], t), cat["uncertainty"]
    results = {
        "uncertainty": {"mask": u_mask, "scores": u_scores, "params": params["uncertainty"]},
        "diversity": {"mask": alf.percentile_mask(cat["diversity"], params["diversity"]["distance_percentile"]),
                      "scores": cat["diversity"], "params": params["diversity"]},
        "novelty": {"mask": alf.percentile_mask(cat["novelty"], params["novelty"]["novelty_percentile"]),
                    "scores": cat["novelty"], "params": params["novelty"]},
    }
    rows, info = alf.intersection_selection({m: results[m]["mask"] for m in alf.ANALYSES},
                                            {m: results[m]["scores"] for m in alf.ANALYSES}, budget, random_state=seed)
    results["intersection"] = {"rows": rows, "info": info}
    return results


def _histograms(client, scored, names):
    """Global histogram sketch of each named score held by the ``scored`` futures."""
    lims = client.gather([client.submit(task_range, f, names, pure=False) for f in scored])
    edges = {}
    for m in names:
        lo, hi = min(r[m][0] for r in lims), max(r[m][1] for r in lims)
        hi = hi if hi > lo else lo + 1.0
        edges[m] = np.linspace(lo, np.nextafter(hi, np.inf), SKETCH_BINS + 1)
    counts = client.gather([client.submit(task_histogram, f, edges, pure=False) for f in scored])
    return {m: _sketch(edges[m], np.sum([c[m] for c in counts], axis=0)) for m in names}


def _select_sketch(client, scored, params, budget, seed):
    """Thresholds and ranks from global histograms; each range's top ``budget`` merged on the client."""
    combined_unc = params["uncertainty"]["method"] == "combined"
    first = ["entropy", "margin"] if combined_unc else ["uncertainty"]
    sketch = _histograms(client, scored, first + ["diversity", "novelty"])
    t = params["uncertainty"]["threshold_percentile"]
    thresholds = {"uncertainty": {m: _quantile(sketch[m], t) for m in first},
                  "diversity": {"diversity": _quantile(sketch["diversity"], params["diversity"]["distance_percentile"])},
                  "novelty": {"novelty": _quantile(sketch["novelty"], params["novelty"]["novelty_percentile"])}}
    if combined_unc:
        scored = [client.submit(task_uncertainty_sketch, f, sketch, pure=False) for f in scored]
        sketch.update(_histograms(client, scored, ["uncertainty"]))
    sizes = client.gather([client.submit(task_size, f, pure=False) for f in scored])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    seeds = np.random.SeedSequence(seed).spawn(len(scored))
    tops = client.gather([client.submit(task_top, f, sketch, thresholds, int(offsets[i]), budget, seeds[i], pure=False)
                          for i, f in enumerate(scored)])
    pos = np.concatenate([tp[0] for tp in tops])
    both = np.concatenate([tp[1] for tp in tops])
    comb = np.concatenate([tp[2] for tp in tops])
    tie = np.concatenate([tp[3] for tp in tops])
    order = np.lexsort((tie, -comb, ~both))[:budget]
    n_inter = sum(tp[4] for tp in tops)
    info = {"n_pool": int(offsets[-1]), "n_intersection": n_inter, "n_selected": budget,
            "n_filled": max(0, budget - n_inter), "filled": budget > n_inter,
            "thresholds": thresholds}
    return {m: {"params": params[m]} for m in alf.ANALYSES} | {"intersection": {"rows": pos[order].astype(np.int64), "info": info}}
