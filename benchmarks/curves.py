"""The label-efficiency benchmark's results: ``curves.csv`` (appended as rounds finish,
resumed by (strategy, seed) pair) and the summary written from it.

``curves.csv`` has one row per (strategy, seed, round) with the columns of :data:`COLUMNS`;
``run.json`` beside it holds the arguments that change the numbers, and a rerun into the
same folder is refused when they differ.
"""
import csv
import os
from pathlib import Path

import numpy as np

import plots
from results_io import atomic_path, load_json, save_figure, save_json, save_text

COLUMNS = ("strategy", "seed", "round", "n_labeled", "accuracy", "macro_f1", "select_seconds", "train_seconds")
_INTS = ("seed", "round", "n_labeled")
_FLOATS = ("accuracy", "macro_f1", "select_seconds", "train_seconds")


# --------------------------------------------------------------------------- curves.csv
def _typed(row):
    out = dict(row)
    for key in _INTS:
        out[key] = int(out[key])
    for key in _FLOATS:
        out[key] = float(out[key])
    return out


def read_curves(path):
    """Every row of ``path`` with ints and floats parsed; [] when the file does not exist."""
    if not Path(path).exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [_typed(r) for r in csv.DictReader(f)]


def _format(row):
    return {k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in COLUMNS}


def write_curves(path, rows):
    """Rewrite the whole file atomically (used when partial pairs are dropped)."""
    with atomic_path(path, ".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            for row in rows:
                w.writerow(_format(row))


def append_curve(path, row):
    """Append one row (header first if the file is new) and flush it to disk: a crash loses at most this row."""
    new = not Path(path).exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerow(_format(row))
        f.flush()
        os.fsync(f.fileno())


def finished_pairs(rows, rounds):
    """(strategy, seed) pairs with every round 0..rounds present."""
    seen = {}
    for r in rows:
        seen.setdefault((r["strategy"], r["seed"]), set()).add(r["round"])
    return {pair for pair, got in seen.items() if got >= set(range(rounds + 1))}


def prepare_resume(out, run_args, key_defaults=None):
    """Check ``run.json`` against ``run_args``, drop partial pairs from ``curves.csv``.

    Parameters
    ----------
    out : Path
        The output folder (created when missing).
    run_args : dict
        The arguments that change the numbers, with ``rounds`` among them.
    key_defaults : dict, optional
        Values that keys added after an earlier run was made compare equal to.

    Returns
    -------
    done : set of (strategy, seed)
        Pairs already finished.
    """
    key_defaults = key_defaults or {}
    curves, meta = out / "curves.csv", out / "run.json"
    if curves.exists():
        if not meta.exists():
            raise ValueError(f"{curves} exists without run.json: pass another --out or remove it")
        old = load_json(meta)
        diff = [f"{k}: {old.get(k, key_defaults.get(k))!r} then, {v!r} now" for k, v in run_args.items()
                if old.get(k, key_defaults.get(k)) != v]
        if diff:
            raise ValueError(f"{curves} was made with different arguments ({'; '.join(diff)}): "
                             f"pass another --out, or the same arguments to resume")
    out.mkdir(parents=True, exist_ok=True)
    save_json(meta, run_args)
    rows = read_curves(curves)
    done = finished_pairs(rows, run_args["rounds"])
    kept = [r for r in rows if (r["strategy"], r["seed"]) in done and r["round"] <= run_args["rounds"]]
    if len(kept) != len(rows):
        write_curves(curves, kept)
    return done


# --------------------------------------------------------------------------- summary
def area_under_curve(n_labeled, values):
    """Trapezoid area under values vs labels, divided by the label range (a mean accuracy)."""
    n = np.asarray(n_labeled, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(n) < 2 or n[-1] == n[0]:
        return float(v.mean())
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(n)) / (n[-1] - n[0]))


def curves_by_pair(rows):
    """(strategy, seed) -> that pair's rows in round order."""
    pairs = {}
    for r in sorted(rows, key=lambda r: (r["strategy"], r["seed"], r["round"])):
        pairs.setdefault((r["strategy"], r["seed"]), []).append(r)
    return pairs


def summarize(rows, strategies, seeds, rounds):
    """Per strategy: AUC mean/std, final accuracy, seeds beating random, labels to reach random's final."""
    pairs = {k: v for k, v in curves_by_pair(rows).items() if len(v) == rounds + 1}
    out = {}
    for name in strategies:
        got = [s for s in seeds if (name, s) in pairs]
        if not got:
            continue
        n = np.array([r["n_labeled"] for r in pairs[(name, got[0])]])
        acc = np.array([[r["accuracy"] for r in pairs[(name, s)]] for s in got])
        f1 = np.array([[r["macro_f1"] for r in pairs[(name, s)]] for s in got])
        aucs = {s: area_under_curve(n, a) for s, a in zip(got, acc)}
        sel = np.array([[r["select_seconds"] for r in pairs[(name, s)][1:]] for s in got])
        trn = np.array([[r["train_seconds"] for r in pairs[(name, s)][1:]] for s in got])
        out[name] = {
            "seeds": got,
            "n_labeled": n.tolist(),
            "mean_accuracy": acc.mean(axis=0).tolist(),
            "auc_mean": float(np.mean(list(aucs.values()))),
            "auc_std": float(np.std(list(aucs.values()))),
            "auc_per_seed": {str(s): v for s, v in aucs.items()},
            "auc_macro_f1_mean": float(np.mean([area_under_curve(n, v) for v in f1])),
            "final_accuracy_mean": float(acc[:, -1].mean()),
            "final_accuracy_std": float(acc[:, -1].std()),
            "final_macro_f1_mean": float(f1[:, -1].mean()),
            "select_seconds_per_round": float(sel.mean()) if sel.size else 0.0,
            "train_seconds_per_round": float(trn.mean()) if trn.size else 0.0,
        }
    for ref in ("random", "modal_entropy"):
        if ref not in out:
            continue
        base = out[ref]
        for name, s in out.items():
            common = [x for x in s["seeds"] if x in base["seeds"]]
            deltas = [s["auc_per_seed"][str(x)] - base["auc_per_seed"][str(x)] for x in common]
            s[f"auc_minus_{ref}"] = float(np.mean(deltas)) if deltas else None
            if ref == "random":
                s["seeds_beating_random"] = int(sum(d > 0 for d in deltas))
                s["seeds_compared"] = len(common)
                target = base["mean_accuracy"][-1]
                reached = [nl for nl, a in zip(s["n_labeled"], s["mean_accuracy"]) if a >= target]
                s["random_final_accuracy"] = target
                s["labels_to_reach_random_final"] = int(reached[0]) if reached else None
                s["fraction_of_random_labels"] = (round(reached[0] / base["n_labeled"][-1], 3) if reached else None)
    return out


def summary_table(summary):
    """The summary as a Markdown table, one row per strategy."""
    head = ("| strategy | AUC mean ± std | Δ AUC vs random | final acc | seeds > random | labels to reach random's final "
            "(share of random's) | select s/round |")
    lines = [head, "|" + "---|" * 7]
    for name, s in summary.items():
        reach = s.get("labels_to_reach_random_final")
        reach_txt = "—" if "labels_to_reach_random_final" not in s else (
            "not reached" if reach is None else f"{reach} ({s['fraction_of_random_labels']:.0%})")
        delta = s.get("auc_minus_random")
        lines.append(
            f"| {name} | {s['auc_mean']:.4f} ± {s['auc_std']:.4f} | "
            f"{'—' if delta is None else f'{delta:+.4f}'} | {s['final_accuracy_mean']:.4f} | "
            f"{s.get('seeds_beating_random', '—')}/{s.get('seeds_compared', '—')} | {reach_txt} | "
            f"{s['select_seconds_per_round']:.2f} |")
    return "\n".join(lines)


def write_outputs(out, rows, strategies, seeds, run_args, wall_seconds):
    """``learning_curves.png``, ``summary.json`` and ``summary.txt`` from the finished pairs; returns the summary."""
    summary = summarize(rows, strategies, seeds, run_args["rounds"])
    if not summary:
        return summary
    pairs = curves_by_pair(rows)
    curves = {}
    for name, s in summary.items():
        curves[name] = (s["n_labeled"], [[r["accuracy"] for r in pairs[(name, x)]] for x in s["seeds"]])
    title = f"{run_args['dataset']}, {run_args['model']}: test accuracy (mean, band = min-max over {len(seeds)} seeds)"
    save_figure(out / "learning_curves.png", plots.learning_curves(curves, title=title))
    save_json(out / "summary.json", {"args": run_args, "seeds": list(seeds), "wall_seconds_this_run": wall_seconds,
                                     "strategies": summary})
    text = (f"Label-efficiency benchmark: {run_args['dataset']}, model {run_args['model']}, "
            f"{run_args['initial']} initial labels + {run_args['rounds']} rounds x {run_args['budget']}, "
            f"seeds {list(seeds)}, {run_args['steps']} steps per fit\n"
            f"AUC = area under test accuracy vs labels / label range. Wall time of this invocation: "
            f"{wall_seconds:.0f} s\n\n" + summary_table(summary) + "\n")
    save_text(out / "summary.txt", text)
    return summary
