"""Result files, figures and text reports, from plain records (dicts and arrays).

The analyzer decides WHAT was found; this module decides how it lands on disk and on
screen. Every function takes plain data, so a new output (a web page, a project round
folder) reuses it without an analyzer. Each file is written atomically
(:mod:`results_io`).

Layout of one analysis folder ``results_dir/<name>/``: ``<name>_indices.npy``
(absolute data set indices, best first), ``<name>_scores.npy`` (aligned),
``summary.json``, ``summary.txt``, ``top_images.png`` and per-analysis figures.
"""
import csv
from pathlib import Path

import numpy as np
from PIL import Image

import plots
from results_io import atomic_path, save_figure, save_json, save_npy, save_text, summary_text

# Items shown in an analysis' ``top_images.png``.
TOP_GRID = 32
LABELING_COLUMNS = ("index", "label", "predicted_class", "confidence", "image")


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


def grid_figure(grid, title):
    """Image grid captioned ``<class> <score>``.

    Parameters
    ----------
    grid : dict
        ``images`` ndarray of shape (k, h, w, 3), ``classes`` list of k class names
        ('?' for unknown), ``scores`` of shape (k,), ``source`` ('labels' or 'predictions').
    """
    caps = [f"{c} {s:.2f}" for c, s in zip(grid["classes"], grid["scores"])]
    return plots.image_grid(grid["images"], caps, title=f"{title} (class from {grid['source']}, score)")


def write_analysis(results_dir, record):
    """Write ``results_dir/<record['summary']['analysis']>/`` from one analysis record.

    Parameters
    ----------
    results_dir : str or Path
    record : dict
        ``summary`` : dict, JSON-able (``summary.json`` and ``summary.txt``);
        ``indices`` : ndarray of shape (n_selected,), absolute indices, best first;
        ``scores`` : ndarray of shape (n_selected,), aligned with ``indices``;
        optional ``histogram`` : ``{'scores': (n_pool,), 'threshold': float or None}``;
        optional ``grid`` : the top items' images (see :func:`grid_figure`);
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
    if record.get("representatives") is not None:
        save_npy(out / f"{name}_representatives.npy", np.asarray(record["representatives"], dtype=np.int64))
    save_npy(out / f"{name}_indices.npy", np.asarray(record["indices"], dtype=np.int64))
    save_npy(out / f"{name}_scores.npy", np.asarray(record["scores"], dtype=np.float32))
    save_json(out / "summary.json", summary)
    save_text(out / "summary.txt", analysis_summary_text(summary))
    if record.get("histogram") is not None:
        hist = record["histogram"]
        save_figure(out / "score_histogram.png", plots.score_histogram(
            hist["scores"], hist["threshold"], title=f"{name}: pool scores", xlabel=f"{name} score"))
    if record.get("grid") is not None:
        save_figure(out / "top_images.png", grid_figure(record["grid"], f"{name}: top selected"))
    if record.get("clusters") is not None:
        save_figure(out / "clusters_2d.png", plots.cluster_projection(**record["clusters"]))
    if record.get("overlap") is not None:
        save_figure(out / "overlap.png", plots.overlap_bars(**record["overlap"]))
    return out


def write_retrain(results_dir, report):
    """``results_dir/retrain/summary.{json,txt}`` from a retraining report (see ``analyzer.retrain``)."""
    out = Path(results_dir) / "retrain"
    save_json(out / "summary.json", report)
    save_text(out / "summary.txt", summary_text("retraining on the class-balanced selection", {
        "report": {k: v for k, v in report.items() if not isinstance(v, dict)},
        "added per class": report["added_per_class"],
    }))
    return out


# --------------------------------------------------------------------------- text reports
def _fmt(value):
    return "n/a" if value is None else f"{value:.3f}"


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
        lines.append(f"  retrained on {r['labeled_before']} + {r['added']} items ({r['steps']} steps, seed {r['seed']}): "
                     f"test accuracy {_fmt(r['accuracy_before'])} -> {_fmt(r['accuracy_after'])}, "
                     f"random selection of the same size {_fmt(r['accuracy_random'])}")
        lines.append(f"    macro-F1 {_fmt(r['macro_f1_before'])} -> {_fmt(r['macro_f1_after'])} "
                     f"(random {_fmt(r['macro_f1_random'])}); model: {r['model_path']}")
    return "\n".join(lines)


def intersection_note(info, budget):
    """What the intersection's summary says about an empty or filled selection (None otherwise)."""
    if info["n_intersection"] == 0:
        return "the intersection is empty" + (f"; filled with {info['n_filled']} items by combined rank" if info["n_filled"]
                                              else "; pass budget= to fill by combined rank")
    if info["filled"]:
        return f"intersection has {info['n_intersection']} items; filled up to the budget of {budget} by combined rank"
    return None


def job_report(summary, results_dir, seconds):
    """The main job's report: the analyzer's summary and where the results went."""
    return f"{summary}\n  results in {results_dir}/ ({seconds:.0f} s)"


# --------------------------------------------------------------------------- labeling sheet
def write_labeling_csv(path, indices, predicted_classes, confidences, *, image_paths=None, images=None):
    """A sheet ``index,label,predicted_class,confidence,image`` for a person to fill in.

    Parameters
    ----------
    path : str or Path
    indices : ndarray of shape (n,), absolute data set indices
    predicted_classes : list of n class names
    confidences : ndarray of shape (n,), the predicted class' probability
    image_paths : list of n str, optional
        The source file of each item; when absent, ``images`` are written as
        thumbnails ``<folder of path>/thumbnails/<index>.png``.
    images : ndarray of shape (n, h, w, 3), optional

    Returns
    -------
    path : Path
    """
    path = Path(path)
    thumbs = path.parent / "thumbnails"
    with atomic_path(path, ".csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LABELING_COLUMNS)
        for i, (a, cls, conf) in enumerate(zip(indices, predicted_classes, confidences)):
            if image_paths is not None:
                image = image_paths[i]
            elif images is not None:
                thumbs.mkdir(parents=True, exist_ok=True)
                image = str(thumbs / f"{a}.png")
                Image.fromarray(np.asarray(images[i], dtype=np.uint8)).save(image)
            else:
                image = ""
            w.writerow([int(a), "", cls, f"{conf:.4f}", image])
    return path


def read_labels_csv(path, class_names, allowed_indices):
    """Read the ``index,label`` rows a person filled in; empty labels are skipped.

    Parameters
    ----------
    path : str or Path
    class_names : list of str
        A label is a class name or a class id in ``[0, len(class_names))``.
    allowed_indices : array-like of int
        Absolute indices a label may be given to (the pool).

    Returns
    -------
    labels : dict of int -> int, absolute index -> class id (a later row for the
    same index wins)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"labels CSV {str(path)!r} does not exist")
    allowed = {int(a) for a in allowed_indices}
    name_to_id = {n: i for i, n in enumerate(class_names)}
    n_classes = len(class_names)
    labels = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"index", "label"} <= set(reader.fieldnames):
            raise ValueError(f"labels CSV {str(path)!r} needs the columns 'index' and 'label', got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            label = (row["label"] or "").strip()
            if not label:
                continue
            try:
                idx = int(row["index"])
            except ValueError:
                raise ValueError(f"labels CSV line {line}: index {row['index']!r} is not an integer") from None
            if idx not in allowed:
                raise ValueError(f"labels CSV line {line}: index {idx} is not in the pool (allowed: the pool's data set indices, see to_label.csv)")
            if label in name_to_id:
                labels[idx] = name_to_id[label]
            elif label.lstrip("-").isdigit() and 0 <= int(label) < n_classes:
                labels[idx] = int(label)
            else:
                raise ValueError(f"labels CSV line {line}: label {label!r} is not a class; allowed: {list(class_names)} or 0-{n_classes - 1}")
    return labels
