"""Result files, figures and text reports, from plain records (dicts and arrays).

The analyzer decides WHAT was found; this module decides how it lands on disk and on
screen. Every function takes plain data, so a new output (a web page, a project round
folder) reuses it without an analyzer. Each analysis folder is written as a unit
(:func:`results_io.staged_folder`: staged, then swapped in, one writer at a time).

Layout of one analysis folder ``results_dir/<name>/``: ``<name>_indices.npy``
(absolute data set indices, best first), ``<name>_scores.npy`` (aligned),
``summary.json``, ``summary.txt``, the top items (``top_images.png`` for images,
``top_rows.csv`` for tables, ``top_texts.txt`` for text) and per-analysis figures.
"""
import csv
from pathlib import Path

import numpy as np

from labelnext.io import plots
from labelnext.io import sheets
from labelnext.utils.console import fmt_metric
from labelnext.io.files import (
    atomic_path,
    save_figure,
    save_json,
    save_npy,
    save_png,
    save_text,
    staged_folder,
    summary_text,
)

# Items shown in an analysis' top items (grid, table or snippets).
TOP_GRID = 32
LABELING_COLUMNS = sheets.CSV_COLUMNS
# Characters of a document shown per item in ``top_texts.txt``.
SNIPPET_CHARS = 300
# How progress lines describe each analysis' parameters.
DESCRIBE = {"uncertainty": "{method}, >= p{threshold_percentile:g}", "diversity": "{n_clusters} clusters, {algorithm}",
            "novelty": "k={k_neighbors}, >= p{novelty_percentile:g}"}
# What the intersection's summary.json holds besides the common entries.
INTERSECTION_SUMMARY = ("n_intersection", "n_filled", "filled", "pairwise", "class_balance", "note")


# --------------------------------------------------------------------------- analysis folders
def analysis_summary_text(summary):
    """``summary.txt`` of one analysis: scalars, parameters, counts and class distribution.

    Parameters
    ----------
    summary : dict
        What ``summary.json`` holds: ``analysis``, ``parameters``, ``counts``,
        ``class_distribution``, ``class_source`` and any scalar or list entries.
    """
    flat = {k: v for k, v in summary.items() if not isinstance(v, dict)}
    sections = {"run": flat, "parameters": summary["parameters"], "counts": summary["counts"],
                f"class distribution (from {summary['class_source']})": summary["class_distribution"]}
    return summary_text(f"{summary['analysis']} analysis", sections)


def _value_text(grid, i):
    """``0.93`` for a strategy's score, ``#3`` for a rank (strategies that return an order)."""
    return f"#{i + 1}" if grid.get("score_label", "score") == "rank" else f"{grid['scores'][i]:.3g}"


def grid_captions(grid):
    """One caption per top item: predicted class, the value shown, the true class (simulations),
    and ``fill`` for items that were not in the intersection."""
    true, fill = grid.get("true"), grid.get("fill")
    caps = []
    for i, pred in enumerate(grid["predicted"]):
        cap = f"{pred} {_value_text(grid, i)}"
        if true is not None:
            cap += f"\ntrue {true[i]}"
        if fill is not None and fill[i]:
            cap = "fill: " + cap
        caps.append(cap)
    return caps


def _grid_title(grid, title):
    what = "predicted class, " + ("rank" if grid.get("score_label") == "rank" else "score")
    if grid.get("true") is not None:
        what += "; true class (simulation: the data set's labels)"
    if grid.get("fill") is not None and np.any(grid["fill"]):
        what += "; red frame = fill (not in the intersection)"
    return f"{title} ({what})"


def grid_figure(grid, title):
    """Image grid of the top items (the ``image_grid`` writer of :data:`TOP_ITEM_WRITERS`).

    Parameters
    ----------
    grid : dict
        ``items`` ndarray of shape (k, h, w, 3); ``predicted`` list of k class names (what a
        person labeling sees); ``scores`` of shape (k,); ``score_label`` 'score' or 'rank';
        optional ``true`` (k class names, simulations only) and ``fill`` (k bools).
    """
    return plots.image_grid(grid["items"], grid_captions(grid), title=_grid_title(grid, title), marked=grid.get("fill"))


def top_rows_table(grid):
    """Rows of ``top_rows.csv`` for a table: rank, index, predicted (and true) class, value, fill,
    then every feature value."""
    names = grid.get("feature_names") or [f"x{j}" for j in range(np.shape(grid["items"])[1])]
    header = ["rank", "index", "predicted_class"] + (["true_class (simulation)"] if grid.get("true") is not None else [])
    header += [grid.get("score_label", "score"), "fill"] + list(names)
    rows = [header]
    for i, item in enumerate(grid["items"]):
        row = [i + 1, int(grid["indices"][i]), grid["predicted"][i]]
        row += [grid["true"][i]] if grid.get("true") is not None else []
        row += [_value_text(grid, i).lstrip("#"), bool(grid["fill"][i]) if grid.get("fill") is not None else False]
        rows.append(row + [f"{v:.6g}" for v in np.asarray(item, dtype=np.float64)])
    return rows


def top_texts(grid, title):
    """``top_texts.txt`` for text: one block per top item with the first characters of the document."""
    lines = [_grid_title(grid, title), ""]
    caps = grid_captions(grid)
    for i, text in enumerate(grid["items"]):
        snippet = " ".join(str(text).split())
        if len(snippet) > SNIPPET_CHARS:
            snippet = snippet[:SNIPPET_CHARS] + " ..."
        lines.append(f"#{i + 1}  index {int(grid['indices'][i])}  {caps[i].replace(chr(10), ', ')}")
        lines.append(f"    {snippet}")
    return "\n".join(lines) + "\n"


def _write_image_grid(folder, grid, title):
    save_figure(folder / "top_images.png", grid_figure(grid, title))
    return "top_images.png"


def _write_row_table(folder, grid, title):
    with atomic_path(folder / "top_rows.csv", ".csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([[sheets.neutralize_cell(c) if isinstance(c, str) else c for c in row]
                                 for row in top_rows_table(grid)])
    return "top_rows.csv"


def _write_text_snippets(folder, grid, title):
    save_text(folder / "top_texts.txt", top_texts(grid, title))
    return "top_texts.txt"


# Writer name (a kind's ``top_items``) -> fn(folder, grid, title) -> the file name written.
TOP_ITEM_WRITERS = {"image_grid": _write_image_grid, "row_table": _write_row_table,
                    "text_snippets": _write_text_snippets}


def write_top_items(folder, grid, title):
    """The top items in the form ``grid['writer']`` names (a data kind's ``top_items``, chosen by
    the caller, which knows the kind); returns the file name written."""
    writer = TOP_ITEM_WRITERS.get(grid.get("writer"))
    if writer is None:
        raise ValueError(f"top_items must be one of {list(TOP_ITEM_WRITERS)}, got {grid.get('writer')!r}")
    return writer(folder, grid, title)


def diversity_parts(res, pool_indices, pool_embeddings, random_state):
    """What diversity adds to its record: representatives (absolute indices), cluster sizes and
    the cluster projection's keywords, from :func:`AL_functions.run_analysis`'s result ``res``."""
    reps, n_clusters = res["representatives"], res["params"]["n_clusters"]
    rep_abs = pool_indices[reps[reps >= 0]]
    sizes = np.bincount(res["clusters"], minlength=n_clusters)
    return {"extra": {"representatives": rep_abs.tolist(), "cluster_sizes": sizes.tolist()}, "representatives": rep_abs,
            "clusters": {"embeddings": pool_embeddings, "clusters": res["clusters"], "selected": res["mask"],
                         "representatives": reps, "random_state": random_state,
                         "title": f"diversity: {n_clusters} clusters (PCA)"}}


def overlap_parts(info):
    """Keywords of :func:`plots.overlap_bars` from the intersection's info."""
    return {"counts": info["counts"], "pairwise": info["pairwise"], "n_intersection": info["n_intersection"],
            "title": "items kept per analysis and overlap"}


def items_kind(items):
    """'image' for (n, h, w, 3) arrays (or no items), 'tabular' for numeric (n, d), else 'text'."""
    if items is None or np.ndim(items) == 4:
        return "image"
    return "tabular" if np.ndim(items) == 2 and np.issubdtype(np.asarray(items[:1]).dtype, np.number) else "text"


def analysis_record(name, ranked_rows, scores, params, extra=None, *, pool, probs, items, top_items, feature_names, dataset,
                    model_path, timings, score_label="score", fill=None):
    """The record :func:`write_analysis` writes, from an analysis' ranked pool rows.

    The top items show the PREDICTED class (what a person labeling sees); the true class
    only where the data set knows pool labels (a simulation), labelled as such.

    Parameters
    ----------
    ranked_rows : ndarray of int, pool rows best first
    scores : ndarray aligned with ``ranked_rows`` (a rank 1..k when ``score_label='rank'``)
    pool : pool.Pool
        Gives the rows' data set indices and their classes (:meth:`pool.Pool.pool_labels`).
    probs : ndarray of shape (n_pool, n_classes)
    items : images, table rows or texts of the first :data:`TOP_GRID` items, or None
    top_items : str
        The writer of the top items (a data kind's ``top_items``: ``image_grid``, ``row_table``, ``text_snippets``).
    fill : ndarray of bool aligned with ``ranked_rows`` (intersection: added by rank), optional
    """
    absolute = pool.pool_indices[ranked_rows]
    class_ids, class_source = pool.pool_labels(probs)
    counts = np.bincount(class_ids[ranked_rows][class_ids[ranked_rows] >= 0], minlength=pool.n_classes)
    summary = {
        "analysis": name, "dataset": dataset, "model_path": model_path, "parameters": params,
        "counts": {"pool": int(pool.pool_mask.sum()), "labeled": int(pool.labeled_mask.sum()), "selected": int(len(ranked_rows))},
        "class_distribution": {n: int(c) for n, c in zip(pool.class_names, counts)},
        "class_source": class_source,
        "scores": "strategy's order (rank), not a score" if score_label == "rank" else f"{name} score",
        "timings": timings,
        **(extra or {}),
    }
    grid = None
    if items is not None:
        top = ranked_rows[:TOP_GRID]
        true = pool.labels[pool.pool_mask][top]
        grid = {"writer": top_items, "items": items, "indices": absolute[:TOP_GRID],
                "predicted": [pool.class_names[c] for c in probs[top].argmax(axis=1)],
                "true": [pool.class_names[c] if c >= 0 else "?" for c in true] if (true >= 0).any() else None,
                "scores": np.asarray(scores)[:TOP_GRID], "score_label": score_label,
                "fill": None if fill is None else np.asarray(fill)[:TOP_GRID], "feature_names": feature_names}
    return {"summary": summary, "indices": absolute, "scores": scores, "grid": grid}


def write_analysis(results_dir, record):
    """Write ``results_dir/<record['summary']['analysis']>/`` from one analysis record, as a unit.

    Parameters
    ----------
    results_dir : str or Path
    record : dict
        ``summary`` : dict, JSON-able (``summary.json`` and ``summary.txt``);
        ``indices`` : ndarray of shape (n_selected,), absolute indices, best first;
        ``scores`` : ndarray of shape (n_selected,), aligned with ``indices``;
        optional ``histogram`` : ``{'scores': (n_pool,), 'kept': (n_pool,) bool, 'threshold': float or None}``;
        optional ``grid`` : the top items (see :func:`grid_figure`, :func:`write_top_items`);
        optional ``representatives`` : ndarray of absolute indices (``<name>_representatives.npy``);
        optional ``clusters`` : keywords of :func:`plots.cluster_projection` (``clusters_2d.png``);
        optional ``overlap`` : keywords of :func:`plots.overlap_bars` (``overlap.png``).

    Returns
    -------
    out : Path, the analysis folder
    """
    summary = record["summary"]
    name = summary["analysis"]
    out = Path(results_dir) / name
    with staged_folder(out) as tmp:
        if record.get("representatives") is not None:
            save_npy(tmp / f"{name}_representatives.npy", np.asarray(record["representatives"], dtype=np.int64))
        save_npy(tmp / f"{name}_indices.npy", np.asarray(record["indices"], dtype=np.int64))
        save_npy(tmp / f"{name}_scores.npy", np.asarray(record["scores"], dtype=np.float32))
        save_json(tmp / "summary.json", summary)
        save_text(tmp / "summary.txt", analysis_summary_text(summary))
        if record.get("histogram") is not None:
            hist = record["histogram"]
            save_figure(tmp / "score_histogram.png", plots.score_histogram(
                hist["scores"], hist.get("threshold"), kept=hist.get("kept"), title=f"{name}: pool scores",
                xlabel=f"{name} score"))
        if record.get("grid") is not None:
            write_top_items(tmp, record["grid"], f"{name}: top selected")
        if record.get("clusters") is not None:
            save_figure(tmp / "clusters_2d.png", plots.cluster_projection(**record["clusters"]))
        if record.get("overlap") is not None:
            save_figure(tmp / "overlap.png", plots.overlap_bars(**record["overlap"]))
    return out


def write_retrain(results_dir, report):
    """``results_dir/retrain/summary.{json,txt}`` from a retraining report (see ``analyzer.retrain``)."""
    out = Path(results_dir) / "retrain"
    with staged_folder(out) as tmp:
        save_json(tmp / "summary.json", report)
        save_text(tmp / "summary.txt", summary_text("retraining on the class-balanced selection", {
            "report": {k: v for k, v in report.items() if not isinstance(v, dict)},
            "added per class": report["added_per_class"],
        }))
    return out


# --------------------------------------------------------------------------- text reports
def analyzer_report(record):
    """The short plain-text report of an analyzer's state (``get_summary``).

    Parameters
    ----------
    record : dict
        ``dataset`` str, ``n_labeled`` and ``n_pool`` int; ``analyses``: list of dicts
        with ``name``, ``n_kept``, ``params``, ``seconds``; ``intersection``: the
        intersection info (``n_intersection``, ``n_selected``, ``n_filled``) or None;
        ``balance``: :func:`AL_functions.class_balance` plus ``source`` and ``classes``,
        or None; ``target_per_class`` int; ``retrain``: the retraining report or None.

    Returns
    -------
    str
    """
    lines = [f"Active-learning analysis: {record['dataset']}, {record['n_labeled']} labeled, pool of {record['n_pool']} items"]
    for r in record["analyses"]:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        lines.append(f"  {r['name']:<12} kept {r['n_kept']:>7} ({params}; {r['seconds']:.2f} s)")
    info = record.get("intersection")
    if info is not None:
        line = f"  intersection {info['n_intersection']:>7} items in all analyses, {info['n_selected']} selected"
        if info["n_filled"]:
            line += f" ({info['n_filled']} filled by combined rank)"
        elif info["n_intersection"] == 0:
            line += " (empty: pass budget= to fill by combined rank)"
        lines.append(line)
        bal = record["balance"]
        lines.append(f"  class balance (target {record['target_per_class']} per class, from {bal['source']}): "
                     + ("met" if bal["met"] else f"short in {sum(1 for s in bal['shortfall'] if s)} classes"))
        for name, c, s in zip(bal["classes"], bal["counts"], bal["shortfall"]):
            lines.append(f"    {name:>12}: {c:>5}" + (f"  (short {s})" if s else ""))
    r = record.get("retrain")
    if r:
        lines.append(f"  retrained on {r['labeled_before']} + {r['added']} items ({retrain_steps(r)}, seed {r['seed']}): "
                     f"test accuracy {fmt_metric(r['accuracy_before'])} -> {fmt_metric(r['accuracy_after'])}, "
                     f"random selection of the same size {fmt_metric(r['accuracy_random'])}")
        lines.append(f"    macro-F1 {fmt_metric(r['macro_f1_before'])} -> {fmt_metric(r['macro_f1_after'])} "
                     f"(random {fmt_metric(r['macro_f1_random'])}); model: {r['model_path']}")
        line = comparison_line(r.get("comparison"))
        if line:
            lines.append(line)
    return "\n".join(lines)


def retrain_steps(r):
    """The saved fit's steps: the budget, and where early stopping ended it when it did."""
    trained = r.get("steps_trained")
    if trained is None or trained >= r["steps"]:
        return f"{r['steps']} steps"
    return f"{trained} of {r['steps']} steps, early-stopped"


def comparison_line(comparison):
    """The "AL vs random" line: mean and spread over seeds, or a plain warning for one seed."""
    if not comparison:
        return None
    n, mean = len(comparison["seeds"]), comparison["mean_difference"]
    if n == 1:
        return (f"    AL vs random: {mean:+.3f} test accuracy on one seed; one seed decides nothing "
                f"(run with --compare-seeds 3 or more)")
    per_seed = ", ".join(f"{d:+.3f}" for d in comparison["difference"])
    return (f"    AL vs random over {n} seeds: {mean:+.3f} +/- {comparison['std_difference']:.3f} test accuracy "
            f"(mean +/- sd of the difference; per seed {per_seed})")


def intersection_note(info, budget):
    """What the intersection's summary says about an empty or filled selection (None otherwise)."""
    if info["n_intersection"] == 0:
        return "the intersection is empty" + (f"; filled with {info['n_filled']} items by combined rank" if info["n_filled"]
                                              else "; pass budget= to fill by combined rank")
    if info["filled"]:
        return f"intersection has {info['n_intersection']} items; filled up to the budget of {budget} by combined rank"
    return None


def job_report(summary, results_dir, seconds, *, sheet=None, dataset="digits", fully_labeled=False):
    """The main job's report: the analyzer's summary, where the results went and what to run next.

    ``fully_labeled``: every item of ``dataset`` has a label, so a project on it is a simulation
    (``al init`` refuses one without ``--initial``)."""
    lines = [summary, f"  results in {results_dir}/ ({seconds:.0f} s)"]
    if sheet is not None:
        init = f"al init {dataset} --project myproj" + (" --initial 30" if fully_labeled else "")
        lines += [f"  next: label the selection in {sheet} (fill in 'label') and keep the labels in a project,",
                  f"        round after round: {init}, then al round / al label / al import (see docs/labeling.md)"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- labeling sheet
def write_labeling_csv(path, indices, predicted_classes, confidences, *, image_paths=None, images=None):
    """A sheet ``index,label,predicted_class,confidence,image`` for a person to fill in
    (the format of :func:`sheets.write_label_csv`).

    Parameters
    ----------
    path : str or Path
    indices : ndarray of shape (n,), absolute data set indices
    predicted_classes : list of n class names
    confidences : ndarray of shape (n,), the predicted class' probability
    image_paths : list of n str, optional
        The source file of each item; when absent, ``images`` are written as
        thumbnails ``<folder of path>/thumbnails/<index>.png`` (a folder written as a unit).
    images : ndarray of shape (n, h, w, 3), optional

    Returns
    -------
    path : Path
    """
    path = Path(path)
    thumbs = path.parent / "thumbnails"
    column = list(image_paths) if image_paths is not None else [""] * len(indices)
    if image_paths is None and images is not None:
        with staged_folder(thumbs) as tmp:
            for a, image in zip(indices, images):
                save_png(tmp / f"{int(a)}.png", image)
        column = [str(thumbs / f"{int(a)}.png") for a in indices]
    sheets.write_label_csv(path, ({"index": int(a), "predicted_class": cls, "confidence": float(conf), "image": img}
                                  for a, cls, conf, img in zip(indices, predicted_classes, confidences, column)))
    return path


def read_labels_csv(path, class_names, allowed_indices):
    """Read the ``index,label`` rows a person filled in (:func:`sheets.read_label_csv`: UTF-8 with
    or without BOM, ',' or ';', conflicting duplicates refused); empty labels are skipped.

    Parameters
    ----------
    path : str or Path
    class_names : list of str
        A label is a class name or a class id in ``[0, len(class_names))``.
    allowed_indices : array-like of int
        Absolute indices a label may be given to (the pool).

    Returns
    -------
    labels : dict of int -> int, absolute index -> class id
    """
    items, classes = sheets.read_label_csv(path, class_names)
    allowed = np.asarray(allowed_indices, dtype=np.int64)
    outside = items[~np.isin(items, allowed)]
    if outside.size:
        raise ValueError(f"labels CSV {str(path)!r}: index {int(outside[0])} is not in the pool "
                         f"({outside.size} such rows; allowed: the pool's data set indices, see to_label.csv)")
    return dict(zip(items.tolist(), classes.tolist()))
